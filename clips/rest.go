package clips

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/oklog/ulid/v2"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/internal/httpx"
	"github.com/partyline/partyline/realtime/wire"
)

// Routes returns the clips API, which the caller mounts at /v1/clips
// behind a middleware that puts the user in the context when a valid
// bearer token is present and lets anonymous requests through (an invalid
// token is still 401). Writes answer 401 to anonymous callers; reads serve
// public and unlisted clips to anyone. The media upload,
// PUT /v1/clips/{id}/media, is HandleUpload: it streams up to
// MaxUploadBytes, so it is mounted outside the 1 MiB JSON body limit.
//
//	POST   /                          create a clip -> 201 clip (uploading)
//	GET    /{id}                      the clip
//	PATCH  /{id}                      edit title, tags, visibility (owner)
//	DELETE /{id}                      delete clip and media (owner) -> 204
//	GET    /{id}/media                the media: Range, ETag, nosniff
//	GET    /{id}/thumbnail            the JPEG thumbnail
//	PUT    /{id}/like                 like (idempotent)
//	DELETE /{id}/like                 unlike (idempotent)
//	POST   /{id}/views                record a view {"watched_ms"} -> 204
//	GET    /{id}/comments             comments, oldest first: ?cursor=&limit=
//	POST   /{id}/comments             comment {"body"} -> 201
//	DELETE /{id}/comments/{comment}   delete (author or clip owner) -> 204
//
// A clip the caller may not see, or may not change, is 404 exactly like a
// clip that does not exist. Errors are problem+json.
func (s *Service) Routes() http.Handler {
	r := httpx.NewRouter()
	r.Post("/", httpx.SignedIn(s.handleCreate))
	r.Get("/{id}", s.withClip(forAnyone, nil, s.handleGet))
	r.Patch("/{id}", s.withClip(forOwner, nil, s.handlePatch))
	r.Delete("/{id}", s.withClip(forOwner, nil, s.handleDelete))
	r.Get("/{id}/media", s.withClip(forAnyone, nil, s.handleMedia))
	r.Get("/{id}/thumbnail", s.withClip(forAnyone, nil, s.handleThumbnail))
	r.Put("/{id}/like", s.withClip(forUser, s.likes, s.handleLike))
	r.Delete("/{id}/like", s.withClip(forUser, s.likes, s.handleUnlike))
	r.Post("/{id}/views", s.withClip(forUser, nil, s.handleView))
	r.Get("/{id}/comments", s.withClip(forAnyone, nil, s.handleComments))
	r.Post("/{id}/comments", s.withClip(forUser, s.comments, s.handleAddComment))
	r.Delete("/{id}/comments/{comment}", s.withClip(forUser, nil, s.handleDeleteComment))
	return r
}

// access is who may use a clip route.
type access int

const (
	forAnyone access = iota // anyone who may see the clip, anonymous callers too
	forUser                 // a signed-in user who may see the clip
	forOwner                // the clip's owner
)

// clipHandler serves a route of the clip {id}, which withClip resolved.
// user is the caller, "" when anonymous.
type clipHandler func(w http.ResponseWriter, r *http.Request, c Clip, user string)

// withClip is the one preamble of the routes of a clip. In this order, it
// answers 401 to an anonymous caller unless a is forAnyone, takes a token of
// lim when lim is not nil (429), and resolves {id} to a clip the caller may
// see, or owns when a is forOwner (404 alike for a clip that does not exist and
// one they may not see or change). Then it calls h.
func (s *Service) withClip(a access, lim *limiter, h clipHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, user, err := s.resolveClip(w, r, a, lim)
		if err != nil {
			httpx.Error(w, r, err)
			return
		}
		h(w, r, c, user)
	}
}

func (s *Service) resolveClip(w http.ResponseWriter, r *http.Request, a access, lim *limiter) (Clip, string, error) {
	id := chi.URLParam(r, "id")
	if a == forAnyone {
		user := auth.UserID(r.Context())
		c, err := s.viewable(r.Context(), id, user)
		return c, user, err
	}
	user, err := auth.RequireUserID(r.Context())
	if err != nil {
		return Clip{}, "", err
	}
	if lim != nil {
		if err := lim.allow(w, user); err != nil {
			return Clip{}, "", err
		}
	}
	if a == forOwner {
		c, err := s.owned(r.Context(), id, user)
		return c, user, err
	}
	c, err := s.viewable(r.Context(), id, user)
	return c, user, err
}

type createRequest struct {
	Title      string   `json:"title"`
	Game       string   `json:"game"`
	Tags       []string `json:"tags"`
	Visibility string   `json:"visibility"`
}

func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request, user string) {
	var req createRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		httpx.Error(w, r, err)
		return
	}
	c, err := newClip(user, req)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	if err := s.uploads.allow(w, user); err != nil {
		httpx.Error(w, r, err)
		return
	}
	if err := s.store.CreateClip(r.Context(), c); err != nil {
		httpx.Error(w, r, depError("create clip", err))
		return
	}
	w.Header().Set("Location", clipPath(c.ID))
	httpx.JSON(w, r, http.StatusCreated, ToResource(c))
}

// newClip checks a create request and returns the clip to store.
func newClip(owner string, req createRequest) (Clip, error) {
	title, err := cleanTitle(req.Title)
	if err != nil {
		return Clip{}, err
	}
	if err := checkGame(req.Game); err != nil {
		return Clip{}, err
	}
	tags, err := cleanTags(req.Tags)
	if err != nil {
		return Clip{}, err
	}
	if req.Visibility == "" {
		req.Visibility = Public
	}
	if err := checkVisibility(req.Visibility); err != nil {
		return Clip{}, err
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	return Clip{
		ID: newClipID(), Owner: owner, Title: title, Game: req.Game, Tags: tags,
		Visibility: req.Visibility, Status: StatusUploading, CreatedAt: now, UpdatedAt: now,
	}, nil
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request, c Clip, _ string) {
	httpx.JSON(w, r, http.StatusOK, ToResource(c))
}

type patchRequest struct {
	Title      *string   `json:"title"`
	Tags       *[]string `json:"tags"`
	Visibility *string   `json:"visibility"`
}

func (s *Service) handlePatch(w http.ResponseWriter, r *http.Request, c Clip, _ string) {
	var req patchRequest
	err := httpx.DecodeJSON(r, &req)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	if req.Title != nil {
		if c.Title, err = cleanTitle(*req.Title); err != nil {
			httpx.Error(w, r, err)
			return
		}
	}
	if req.Tags != nil {
		if c.Tags, err = cleanTags(*req.Tags); err != nil {
			httpx.Error(w, r, err)
			return
		}
	}
	if req.Visibility != nil {
		if err := checkVisibility(*req.Visibility); err != nil {
			httpx.Error(w, r, err)
			return
		}
		c.Visibility = *req.Visibility
	}
	c.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	if err := s.store.EditClip(r.Context(), c); err != nil {
		httpx.Error(w, r, notFoundOr(err, "edit clip "+c.ID))
		return
	}
	if c, err = s.store.GetClip(r.Context(), c.ID); err != nil {
		httpx.Error(w, r, notFoundOr(err, "get clip "+c.ID))
		return
	}
	httpx.JSON(w, r, http.StatusOK, ToResource(c))
}

// notFoundOr turns a store's not-found into errNoClip and anything else
// into a dependency error.
func notFoundOr(err error, op string) error {
	if errors.Is(err, partyline.ErrNotFound) {
		return errNoClip
	}
	return depError(op, err)
}

func (s *Service) handleDelete(w http.ResponseWriter, r *http.Request, c Clip, _ string) {
	if err := s.store.DeleteClip(r.Context(), c.ID); err != nil {
		httpx.Error(w, r, notFoundOr(err, "delete clip "+c.ID))
		return
	}
	// The row is gone, so the blobs are unreachable; a failed delete only
	// leaves garbage behind, which is logged.
	s.deleteBlobs(context.WithoutCancel(r.Context()), c.MediaKey, c.ThumbnailKey)
	s.tusForget(c.ID)
	w.WriteHeader(http.StatusNoContent)
}

// deleteBlobs removes the blobs of keys, skipping empty ones.
func (s *Service) deleteBlobs(ctx context.Context, keys ...string) {
	for _, k := range keys {
		if k == "" {
			continue
		}
		if err := s.blobs.Delete(ctx, k); err != nil {
			s.log.Warn("deleting a clip blob failed", "key", k, "err", err)
		}
	}
}

type likeJSON struct {
	Liked     bool  `json:"liked"`
	LikeCount int64 `json:"like_count"`
}

func (s *Service) handleLike(w http.ResponseWriter, r *http.Request, c Clip, user string) {
	s.like(w, r, c, user, true)
}

func (s *Service) handleUnlike(w http.ResponseWriter, r *http.Request, c Clip, user string) {
	s.like(w, r, c, user, false)
}

// like sets or clears the caller's like. Both are idempotent and answer
// the state and the count.
func (s *Service) like(w http.ResponseWriter, r *http.Request, c Clip, user string, on bool) {
	set := s.store.Unlike
	if on {
		set = s.store.Like
	}
	changed, err := set(r.Context(), c.ID, user)
	if err != nil {
		httpx.Error(w, r, notFoundOr(err, "like clip "+c.ID))
		return
	}
	if changed {
		s.stats.mark(c.ID)
		if on {
			// Feed ranking learns from likes as events too.
			ev := Event{ClipID: c.ID, UserID: user, Kind: EventLike, At: time.Now().UTC()}
			if err := s.store.RecordEvent(r.Context(), ev); err != nil {
				if !errors.Is(err, partyline.ErrNotFound) {
					s.log.Warn("recording a like event failed", "clip", c.ID, "err", err)
				}
			} else {
				s.opts.Observer.Observe(ev)
			}
		}
	}
	if c, err = s.store.GetClip(r.Context(), c.ID); err != nil {
		httpx.Error(w, r, notFoundOr(err, "get clip "+c.ID))
		return
	}
	httpx.JSON(w, r, http.StatusOK, likeJSON{Liked: on, LikeCount: c.Likes})
}

type viewRequest struct {
	WatchedMS *int64 `json:"watched_ms"`
}

// maxWatchedMS bounds a view's watched time: a day.
const maxWatchedMS = 24 * 60 * 60 * 1000

func (s *Service) handleView(w http.ResponseWriter, r *http.Request, c Clip, user string) {
	var req viewRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		httpx.Error(w, r, err)
		return
	}
	if req.WatchedMS == nil || *req.WatchedMS < 0 || *req.WatchedMS > maxWatchedMS {
		httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "watched_ms must be 0 to %d", maxWatchedMS))
		return
	}
	ev := Event{ClipID: c.ID, UserID: user, Kind: EventView, WatchedMS: *req.WatchedMS, At: time.Now().UTC()}
	if err := s.store.RecordEvent(r.Context(), ev); err != nil {
		httpx.Error(w, r, notFoundOr(err, "record view of clip "+c.ID))
		return
	}
	s.opts.Observer.Observe(ev)
	s.stats.mark(c.ID)
	w.WriteHeader(http.StatusNoContent)
}

type commentsJSON struct {
	Comments   []commentJSON `json:"comments"`
	NextCursor *string       `json:"next_cursor"`
}

func (s *Service) handleComments(w http.ResponseWriter, r *http.Request, c Clip, _ string) {
	cursor, limit, err := pageQuery(r)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	cs, next, err := s.store.ClipComments(r.Context(), c.ID, cursor, limit)
	if err != nil {
		httpx.Error(w, r, cursorErr(err, "comments of clip "+c.ID))
		return
	}
	out := commentsJSON{Comments: make([]commentJSON, len(cs)), NextCursor: nonZero(next)}
	for i, cm := range cs {
		out.Comments[i] = toCommentJSON(cm)
	}
	httpx.JSON(w, r, http.StatusOK, out)
}

// cursorErr answers a store's invalid-cursor error without its internals.
func cursorErr(err error, op string) error {
	if errors.Is(err, partyline.ErrInvalid) {
		return partyline.Errorf(partyline.ErrInvalid, "invalid cursor")
	}
	return depError(op, err)
}

type commentRequest struct {
	Body string `json:"body"`
}

func (s *Service) handleAddComment(w http.ResponseWriter, r *http.Request, c Clip, user string) {
	var req commentRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		httpx.Error(w, r, err)
		return
	}
	body := strings.TrimSpace(req.Body)
	if n := utf8.RuneCountInString(body); !utf8.ValidString(body) || n == 0 || n > maxCommentBody {
		httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "body must be 1 to %d characters", maxCommentBody))
		return
	}
	cm := Comment{ID: ulid.Make().String(), ClipID: c.ID, Author: user, Body: body,
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if err := s.store.AddComment(r.Context(), cm); err != nil {
		httpx.Error(w, r, notFoundOr(err, "comment on clip "+c.ID))
		return
	}
	s.opts.Observer.ObserveComment(cm)
	s.stats.mark(c.ID)
	httpx.JSON(w, r, http.StatusCreated, toCommentJSON(cm))
}

// handleDeleteComment deletes a comment for its author or the clip's
// owner; to anyone else it does not exist.
func (s *Service) handleDeleteComment(w http.ResponseWriter, r *http.Request, c Clip, user string) {
	noComment := partyline.Errorf(partyline.ErrNotFound, "no such comment")
	cm, err := s.store.GetComment(r.Context(), chi.URLParam(r, "comment"))
	switch {
	case errors.Is(err, partyline.ErrNotFound):
		err = noComment
	case err != nil:
		err = depError("get comment", err)
	case cm.ClipID != c.ID || (cm.Author != user && c.Owner != user):
		err = noComment
	}
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	if err := s.store.DeleteComment(r.Context(), cm.ID); err != nil {
		if errors.Is(err, partyline.ErrNotFound) {
			err = noComment
		} else {
			err = depError("delete comment", err)
		}
		httpx.Error(w, r, err)
		return
	}
	s.stats.mark(c.ID)
	w.WriteHeader(http.StatusNoContent)
}

type clipsJSON struct {
	Clips      []Resource `json:"clips"`
	NextCursor *string    `json:"next_cursor"`
}

// HandleUserClips serves GET /v1/users/{id}/clips?cursor=&limit=: the
// user's clips newest first. The owner sees all of their own; everyone
// else sees only public, ready clips (unlisted ones are never listed).
// Mount it behind the same optional authentication as Routes.
func (s *Service) HandleUserClips(w http.ResponseWriter, r *http.Request) {
	owner := chi.URLParam(r, "id")
	if !wire.ValidID(owner) {
		httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "user id must match [A-Za-z0-9_-]{1,64}"))
		return
	}
	cursor, limit, err := pageQuery(r)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	list := s.store.PublicUserClips
	if auth.UserID(r.Context()) == owner {
		list = s.store.UserClips
	}
	cs, next, err := list(r.Context(), owner, cursor, limit)
	if err != nil {
		httpx.Error(w, r, cursorErr(err, "clips of "+owner))
		return
	}
	out := clipsJSON{Clips: make([]Resource, len(cs)), NextCursor: nonZero(next)}
	for i, c := range cs {
		out.Clips[i] = ToResource(c)
	}
	httpx.JSON(w, r, http.StatusOK, out)
}
