package chat

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/oklog/ulid/v2"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/internal/httpx"
	"github.com/partyline/partyline/realtime/wire"
)

// maxRoomName is the longest room name, in characters.
const maxRoomName = 100

type roomJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Visibility Visibility `json:"visibility"`
	Owner      string     `json:"owner"`
	CreatedAt  time.Time  `json:"created_at"`
}

func toRoomJSON(r Room) roomJSON {
	return roomJSON{ID: r.ID, Name: r.Name, Visibility: r.Visibility, Owner: r.Owner, CreatedAt: r.CreatedAt.UTC()}
}

type memberJSON struct {
	Room     string    `json:"room"`
	User     string    `json:"user"`
	Role     Role      `json:"role"`
	JoinedAt time.Time `json:"joined_at"`
}

func toMemberJSON(m Member) memberJSON {
	return memberJSON{Room: m.RoomID, User: m.UserID, Role: m.Role, JoinedAt: m.JoinedAt.UTC()}
}

// roomDetailJSON is the body of GET /v1/rooms/{id}.
type roomDetailJSON struct {
	roomJSON
	Members []memberJSON `json:"members"`
}

type createRoomRequest struct {
	Name       string     `json:"name"`
	Visibility Visibility `json:"visibility"`
}

type myRoomJSON struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Visibility  Visibility `json:"visibility"`
	Owner       string     `json:"owner"`
	Role        Role       `json:"role"`
	Unread      int        `json:"unread"`
	LastMessage *msgJSON   `json:"last_message"`
	CreatedAt   time.Time  `json:"created_at"`
}

// RoomRoutes returns the rooms API, which the caller mounts at /v1/rooms
// behind a middleware that puts the user in the context (auth.WithUser):
//
//	POST   /                      create a room: {"name","visibility"} -> 201 room
//	GET    /{id}                  the room and its members
//	PUT    /{id}/members/{user}   add a member (owner only) -> 200 member
//	DELETE /{id}/members/{user}   remove a member (owner, or the member) -> 204
//	GET    /{id}/messages         history: ?before=<msg id>&limit=N
//
// A private room is invisible to non-members: they get 404, as for a room
// that does not exist. Errors are problem+json.
func (c *Service) RoomRoutes() http.Handler {
	r := httpx.NewRouter()
	r.Post("/", httpx.SignedIn(c.handleCreateRoom))
	r.Get("/{id}", c.withRoom(c.handleGetRoom))
	r.Put("/{id}/members/{user}", c.withRoom(c.handlePutMember))
	r.Delete("/{id}/members/{user}", c.withRoom(c.handleDeleteMember))
	r.Get("/{id}/messages", c.withRoom(c.handleRoomMessages))
	return r
}

// roomHandler serves a route of the room {id}, which withRoom resolved
// for the user u.
type roomHandler func(w http.ResponseWriter, r *http.Request, room Room, u string)

// withRoom is the one preamble of the routes of a room: it answers 401
// without a user and 404 for a room that does not exist or that the user
// may not see, then calls h.
func (c *Service) withRoom(h roomHandler) http.HandlerFunc {
	return httpx.SignedIn(func(w http.ResponseWriter, r *http.Request, u string) {
		room, err := c.visibleRoom(r.Context(), u, chi.URLParam(r, "id"))
		if err != nil {
			httpx.Error(w, r, err)
			return
		}
		h(w, r, room, u)
	})
}

// memberParam returns the {user} of a members route, checked to be a
// well-formed user id.
func memberParam(r *http.Request) (string, error) {
	target := chi.URLParam(r, "user")
	if !wire.ValidID(target) {
		return "", partyline.Errorf(partyline.ErrInvalid, "user id must match [A-Za-z0-9_-]{1,64}")
	}
	return target, nil
}

// visibleRoom returns the room when user may see it: a member, or anyone
// for a public room.
func (c *Service) visibleRoom(ctx context.Context, user, id string) (Room, error) {
	room, member, err := c.roomOf(ctx, id, user)
	if err != nil {
		return Room{}, err
	}
	if !member && room.Visibility != Public {
		return Room{}, partyline.Errorf(partyline.ErrNotFound, "no such room")
	}
	return room, nil
}

func (c *Service) handleCreateRoom(w http.ResponseWriter, r *http.Request, owner string) {
	var req createRoomRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		httpx.Error(w, r, err)
		return
	}
	name := strings.TrimSpace(req.Name)
	if n := utf8.RuneCountInString(name); n == 0 || n > maxRoomName {
		httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "name must be 1 to %d characters", maxRoomName))
		return
	}
	if strings.IndexFunc(name, unicode.IsControl) >= 0 || !utf8.ValidString(name) {
		httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "name must be printable text"))
		return
	}
	switch req.Visibility {
	case "":
		req.Visibility = Private
	case Public, Private:
	default:
		httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "visibility must be public or private"))
		return
	}
	room := Room{
		ID:         "r_" + strings.ToLower(ulid.Make().String()),
		Name:       name,
		Visibility: req.Visibility,
		Owner:      owner,
		CreatedAt:  time.Now().UTC().Truncate(time.Millisecond),
	}
	if err := c.store.CreateRoom(r.Context(), room); err != nil {
		httpx.Error(w, r, &depError{op: "create room", err: err})
		return
	}
	httpx.JSON(w, r, http.StatusCreated, toRoomJSON(room))
}

func (c *Service) handleGetRoom(w http.ResponseWriter, r *http.Request, room Room, _ string) {
	members, err := c.store.Members(r.Context(), room.ID)
	if err != nil {
		httpx.Error(w, r, &depError{op: "members of room " + room.ID, err: err})
		return
	}
	out := roomDetailJSON{roomJSON: toRoomJSON(room), Members: make([]memberJSON, len(members))}
	for i, m := range members {
		out.Members[i] = toMemberJSON(m)
	}
	httpx.JSON(w, r, http.StatusOK, out)
}

// handlePutMember adds a member. It is idempotent: an existing member,
// the owner included, is answered as they are, with their role unchanged.
func (c *Service) handlePutMember(w http.ResponseWriter, r *http.Request, room Room, u string) {
	if room.Owner != u {
		httpx.Error(w, r, partyline.Errorf(partyline.ErrForbidden, "only the room's owner adds members"))
		return
	}
	target, err := memberParam(r)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	m, err := c.store.GetMember(r.Context(), room.ID, target)
	if errors.Is(err, partyline.ErrNotFound) {
		if err = c.store.PutMember(r.Context(), room.ID, target, RoleMember); err == nil {
			m, err = c.store.GetMember(r.Context(), room.ID, target)
		}
	}
	if err != nil {
		if errors.Is(err, partyline.ErrNotFound) {
			err = partyline.Errorf(partyline.ErrNotFound, "no such room")
		} else {
			err = &depError{op: "add member to room " + room.ID, err: err}
		}
		httpx.Error(w, r, err)
		return
	}
	httpx.JSON(w, r, http.StatusOK, toMemberJSON(m))
}

// handleDeleteMember removes a member: the owner removes anyone but
// themselves (a room keeps its owner), and a member may remove themselves.
func (c *Service) handleDeleteMember(w http.ResponseWriter, r *http.Request, room Room, u string) {
	target, err := memberParam(r)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	switch {
	case target == room.Owner && u == room.Owner:
		httpx.Error(w, r, partyline.Errorf(partyline.ErrConflict, "the owner cannot leave their room"))
		return
	case u != room.Owner && u != target:
		httpx.Error(w, r, partyline.Errorf(partyline.ErrForbidden, "only the room's owner removes other members"))
		return
	}
	if err := c.store.RemoveMember(r.Context(), room.ID, target); err != nil {
		if errors.Is(err, partyline.ErrNotFound) {
			err = partyline.Errorf(partyline.ErrNotFound, "%s is not a member of room %s", target, room.ID)
		} else {
			err = &depError{op: "remove member from room " + room.ID, err: err}
		}
		httpx.Error(w, r, err)
		return
	}
	c.endSubscriptions(r.Context(), target, "room:"+room.ID)
	w.WriteHeader(http.StatusNoContent)
}

// handleRoomMessages is history over REST: ?before=<msg id> (or cursor=,
// its alias) and ?limit=N, with next_cursor set when more remain.
func (c *Service) handleRoomMessages(w http.ResponseWriter, r *http.Request, room Room, _ string) {
	q := r.URL.Query()
	before := q.Get("before")
	if before == "" {
		before = q.Get("cursor")
	}
	limit := 0
	if s := q.Get("limit"); s != "" {
		var err error
		if limit, err = strconv.Atoi(s); err != nil {
			httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "limit must be an integer"))
			return
		}
	}
	out, err := c.history(r.Context(), wire.NSRoom+":"+room.ID, before, limit)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	if out.More && len(out.Messages) > 0 {
		out.NextCursor = out.Messages[len(out.Messages)-1].ID
	}
	httpx.JSON(w, r, http.StatusOK, out)
}

// HandleMyRooms serves GET /v1/me/rooms: the rooms the authenticated user
// is a member of, newest activity first, each with the user's role, their
// unread count and the newest message (null when none).
func (c *Service) HandleMyRooms(w http.ResponseWriter, r *http.Request) {
	u, err := auth.RequireUserID(r.Context())
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	rooms, err := c.store.UserRooms(r.Context(), u)
	if err != nil {
		httpx.Error(w, r, &depError{op: "rooms of " + u, err: err})
		return
	}
	out := make([]myRoomJSON, len(rooms))
	for i, s := range rooms {
		out[i] = myRoomJSON{
			ID:         s.ID,
			Name:       s.Name,
			Visibility: s.Visibility,
			Owner:      s.Owner,
			Role:       s.Role,
			Unread:     s.Unread,
			CreatedAt:  s.CreatedAt.UTC(),
		}
		if s.LastMessage != nil {
			m := toMsgJSON(*s.LastMessage)
			out[i].LastMessage = &m
		}
	}
	httpx.JSON(w, r, http.StatusOK, map[string][]myRoomJSON{"rooms": out})
}
