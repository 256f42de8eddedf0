package feed

import (
	"errors"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/httpx"
	"github.com/partyline/partyline/realtime/wire"
)

// profileJSON is the body of GET /v1/users/{id}.
type profileJSON struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	Followers int64     `json:"followers"`
	Following int64     `json:"following"`
	// Clips counts the clips the viewer may see: all of them for the user
	// themself, public ready clips for everyone else.
	Clips int64 `json:"clips"`
	// Followed is whether the viewer follows the user.
	Followed bool `json:"followed"`
}

// followJSON is one entry of a followers or following list: the other user
// and when the edge was made.
type followJSON struct {
	User       string    `json:"user"`
	FollowedAt time.Time `json:"followed_at"`
}

type followsPageJSON struct {
	Items      []followJSON `json:"items"`
	NextCursor string       `json:"next_cursor"`
}

// MountUsers adds the social graph's routes to r, the /v1 router, behind a
// middleware that puts the user in the context (auth.WithUser):
//
//	GET    /users/{id}             profile: counts and whether you follow them
//	PUT    /users/{id}/follow      follow (idempotent) -> 204
//	DELETE /users/{id}/follow      unfollow (idempotent) -> 204
//	GET    /users/{id}/followers   ?cursor=&limit=  newest edge first
//	GET    /users/{id}/following   ?cursor=&limit=  newest edge first
//
// The routes are added as patterns rather than mounted as one subrouter
// because /users/{id} is shared: clips adds /users/{id}/clips beside them.
// Following yourself is 400, an unknown user 404, a malformed id 400.
func (f *Service) MountUsers(r chi.Router) {
	r.Get("/users/{id}", withTarget(f.handleProfile))
	r.Put("/users/{id}/follow", withTarget(f.handleFollow))
	r.Delete("/users/{id}/follow", withTarget(f.handleUnfollow))
	r.Get("/users/{id}/followers", withTarget(f.handleFollowers))
	r.Get("/users/{id}/following", withTarget(f.handleFollowingList))
}

// targetHandler serves a users route for the viewer v about the user id.
type targetHandler func(w http.ResponseWriter, r *http.Request, v, id string)

// withTarget is the one preamble of the users routes: it answers 401
// without a user and 400 for a malformed {id}, then calls h.
func withTarget(h targetHandler) http.HandlerFunc {
	return httpx.SignedIn(func(w http.ResponseWriter, r *http.Request, v string) {
		id := chi.URLParam(r, "id")
		if !wire.ValidID(id) {
			httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "user id must match [A-Za-z0-9_-]{1,64}"))
			return
		}
		h(w, r, v, id)
	})
}

// userError is storeError for a read or write about the user id, which
// answers a missing user as one.
func userError(op, id string, err error) error {
	if errors.Is(err, partyline.ErrNotFound) {
		err = partyline.Errorf(partyline.ErrNotFound, "no user %s", id)
	}
	return storeError(op, err)
}

func (f *Service) handleProfile(w http.ResponseWriter, r *http.Request, v, id string) {
	p, err := f.store.Profile(r.Context(), id, v)
	if err != nil {
		httpx.Error(w, r, userError("profile", id, err))
		return
	}
	httpx.JSON(w, r, http.StatusOK, profileJSON{
		ID: p.ID, CreatedAt: p.CreatedAt.UTC(), Followers: p.Followers, Following: p.Following,
		Clips: p.Clips, Followed: p.Followed,
	})
}

func (f *Service) handleFollow(w http.ResponseWriter, r *http.Request, v, id string) {
	if v == id {
		httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "you cannot follow yourself"))
		return
	}
	if _, err := f.store.Follow(r.Context(), v, id); err != nil {
		httpx.Error(w, r, userError("follow", id, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *Service) handleUnfollow(w http.ResponseWriter, r *http.Request, v, id string) {
	removed, err := f.store.Unfollow(r.Context(), v, id)
	if err != nil {
		httpx.Error(w, r, storeError("unfollow", err))
		return
	}
	if !removed {
		// Idempotent for a user who exists; an unknown one is 404.
		if err := f.userExists(r, id, v); err != nil {
			httpx.Error(w, r, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *Service) userExists(r *http.Request, id, v string) error {
	if _, err := f.store.Profile(r.Context(), id, v); err != nil {
		return userError("profile", id, err)
	}
	return nil
}

func (f *Service) handleFollowers(w http.ResponseWriter, r *http.Request, v, id string) {
	f.serveFollows(w, r, v, id, true)
}

func (f *Service) handleFollowingList(w http.ResponseWriter, r *http.Request, v, id string) {
	f.serveFollows(w, r, v, id, false)
}

func (f *Service) serveFollows(w http.ResponseWriter, r *http.Request, v, id string, followers bool) {
	cursor, limit, err := pageParams(r, 200)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	list, other := f.store.Following, func(fl Follow) string { return fl.Followee }
	if followers {
		list, other = f.store.Followers, func(fl Follow) string { return fl.Follower }
	}
	fs, next, err := list(r.Context(), id, cursor, limit)
	if err != nil {
		httpx.Error(w, r, listError("follows", err))
		return
	}
	if len(fs) == 0 && cursor == "" {
		// An empty first page: tell a user with no edges from an unknown one.
		if err := f.userExists(r, id, v); err != nil {
			httpx.Error(w, r, err)
			return
		}
	}
	out := followsPageJSON{Items: make([]followJSON, len(fs)), NextCursor: next}
	for i, fl := range fs {
		out.Items[i] = followJSON{User: other(fl), FollowedAt: fl.CreatedAt.UTC()}
	}
	httpx.JSON(w, r, http.StatusOK, out)
}
