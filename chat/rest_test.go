package chat_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/partyline/partyline/internal/server/servertest"
)

var roomID = regexp.MustCompile(`^r_[A-Za-z0-9_-]{1,62}$`)

func TestCreateRoom(t *testing.T) {
	s := newStack(t, nil)
	before := time.Now().Add(-time.Second)
	b := s.wantStatus(http.StatusCreated, "POST", "/v1/rooms", "u_ann", map[string]string{"name": "  squad  "})
	got := servertest.Decode[roomJSON](t, b)
	if !roomID.MatchString(got.ID) {
		t.Errorf("room id %q does not match %v", got.ID, roomID)
	}
	want := roomJSON{ID: got.ID, Name: "squad", Visibility: "private", Owner: "u_ann", CreatedAt: got.CreatedAt}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("created room (-want +got):\n%s", diff)
	}
	if got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("created_at %v, want about now", got.CreatedAt)
	}
	pub := servertest.Decode[roomJSON](t, s.wantStatus(http.StatusCreated, "POST", "/v1/rooms", "u_ann",
		map[string]string{"name": strings.Repeat("é", 100), "visibility": "public"}))
	if pub.Visibility != "public" || pub.ID == got.ID {
		t.Errorf("second room %+v, want a new public room", pub)
	}

	bad := []struct {
		name   string
		user   string
		body   any
		status int
	}{
		{"no user", "", map[string]string{"name": "x"}, http.StatusUnauthorized},
		{"unknown field", "u_ann", map[string]string{"name": "x", "topic": "y"}, http.StatusBadRequest},
		{"not JSON", "u_ann", "{", http.StatusBadRequest},
		{"no body", "u_ann", nil, http.StatusBadRequest},
		{"empty name", "u_ann", map[string]string{"name": "   "}, http.StatusBadRequest},
		{"long name", "u_ann", map[string]string{"name": strings.Repeat("x", 101)}, http.StatusBadRequest},
		{"control characters", "u_ann", map[string]string{"name": "a\u0000b"}, http.StatusBadRequest},
		{"bad visibility", "u_ann", map[string]string{"name": "x", "visibility": "secret"}, http.StatusBadRequest},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			s.wantStatus(tt.status, "POST", "/v1/rooms", tt.user, tt.body)
		})
	}
}

type roomDetail struct {
	roomJSON
	Members []struct {
		Room     string    `json:"room"`
		User     string    `json:"user"`
		Role     string    `json:"role"`
		JoinedAt time.Time `json:"joined_at"`
	} `json:"members"`
}

func (d roomDetail) users() []string {
	var out []string
	for _, m := range d.Members {
		out = append(out, m.User+"/"+m.Role)
	}
	return out
}

func TestGetRoomAndMembers(t *testing.T) {
	s := newStack(t, nil)
	priv := s.createRoom("u_ann", "squad", "private")
	pub := s.createRoom("u_ann", "lobby", "public")

	d := servertest.Decode[roomDetail](t, s.wantStatus(http.StatusOK, "GET", "/v1/rooms/"+priv, "u_ann", nil))
	if d.ID != priv || d.Name != "squad" || d.Owner != "u_ann" {
		t.Errorf("room %+v, want squad", d.roomJSON)
	}
	if diff := cmp.Diff([]string{"u_ann/owner"}, d.users()); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	// Private rooms do not leak: a non-member gets what a missing room gets.
	s.wantStatus(http.StatusNotFound, "GET", "/v1/rooms/"+priv, "u_cat", nil)
	s.wantStatus(http.StatusNotFound, "GET", "/v1/rooms/r_missing", "u_ann", nil)
	s.wantStatus(http.StatusNotFound, "GET", "/v1/rooms/bad.id", "u_ann", nil)
	s.wantStatus(http.StatusOK, "GET", "/v1/rooms/"+pub, "u_cat", nil)
	s.wantStatus(http.StatusUnauthorized, "GET", "/v1/rooms/"+pub, "", nil)
	s.wantStatus(http.StatusMethodNotAllowed, "PATCH", "/v1/rooms/"+pub, "u_ann", nil)

	// Adding members: owner only, idempotent, the owner keeps their role.
	m := s.wantStatus(http.StatusOK, "PUT", "/v1/rooms/"+priv+"/members/u_bob", "u_ann", nil)
	first := servertest.Decode[map[string]any](t, m)
	if first["room"] != priv || first["user"] != "u_bob" || first["role"] != "member" || first["joined_at"] == nil {
		t.Errorf("member %s, want bob as a member of %s", m, priv)
	}
	again := servertest.Decode[map[string]any](t, s.wantStatus(http.StatusOK, "PUT", "/v1/rooms/"+priv+"/members/u_bob", "u_ann", nil))
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("second PUT changed the member (-first +again):\n%s", diff)
	}
	s.wantStatus(http.StatusOK, "PUT", "/v1/rooms/"+priv+"/members/u_ann", "u_ann", nil)
	s.wantStatus(http.StatusOK, "PUT", "/v1/rooms/"+priv+"/members/u_cat", "u_ann", nil)
	d = servertest.Decode[roomDetail](t, s.wantStatus(http.StatusOK, "GET", "/v1/rooms/"+priv, "u_bob", nil))
	if diff := cmp.Diff([]string{"u_ann/owner", "u_bob/member", "u_cat/member"}, d.users()); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}

	errs := []struct {
		name, method, path, user string
		status                   int
	}{
		{"add by a member", "PUT", "/v1/rooms/" + priv + "/members/u_dan", "u_bob", http.StatusForbidden},
		{"add to a public room by a non-member", "PUT", "/v1/rooms/" + pub + "/members/u_dan", "u_dan", http.StatusForbidden},
		{"add to a private room by a non-member", "PUT", "/v1/rooms/" + priv + "/members/u_dan", "u_dan", http.StatusNotFound},
		{"add a bad user id", "PUT", "/v1/rooms/" + priv + "/members/u.dan", "u_ann", http.StatusBadRequest},
		{"add to a missing room", "PUT", "/v1/rooms/r_missing/members/u_dan", "u_ann", http.StatusNotFound},
		{"remove another member as a member", "DELETE", "/v1/rooms/" + priv + "/members/u_cat", "u_bob", http.StatusForbidden},
		{"remove the owner as a member", "DELETE", "/v1/rooms/" + priv + "/members/u_ann", "u_bob", http.StatusForbidden},
		{"the owner leaves", "DELETE", "/v1/rooms/" + priv + "/members/u_ann", "u_ann", http.StatusConflict},
		{"remove a non-member", "DELETE", "/v1/rooms/" + priv + "/members/u_dan", "u_ann", http.StatusNotFound},
		{"remove a bad user id", "DELETE", "/v1/rooms/" + priv + "/members/u.dan", "u_ann", http.StatusBadRequest},
		{"remove from a private room as a non-member", "DELETE", "/v1/rooms/" + priv + "/members/u_dan", "u_dan", http.StatusNotFound},
		{"leave a public room never joined", "DELETE", "/v1/rooms/" + pub + "/members/u_dan", "u_dan", http.StatusNotFound},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			s.wantStatus(tt.status, tt.method, tt.path, tt.user, nil)
		})
	}

	// The owner removes a member, and a member leaves.
	s.wantStatus(http.StatusNoContent, "DELETE", "/v1/rooms/"+priv+"/members/u_bob", "u_ann", nil)
	s.wantStatus(http.StatusNoContent, "DELETE", "/v1/rooms/"+priv+"/members/u_cat", "u_cat", nil)
	s.wantStatus(http.StatusNotFound, "GET", "/v1/rooms/"+priv, "u_cat", nil)
	d = servertest.Decode[roomDetail](t, s.wantStatus(http.StatusOK, "GET", "/v1/rooms/"+priv, "u_ann", nil))
	if diff := cmp.Diff([]string{"u_ann/owner"}, d.users()); diff != "" {
		t.Errorf("members after removals (-want +got):\n%s", diff)
	}
	// A removed member can no longer use the room's channel.
	bob := s.dial("u_bob")
	bob.WantError("forbidden", map[string]any{"type": "sub", "channel": "room:" + priv})
}

func TestRoomMessages(t *testing.T) {
	s := newStack(t, nil)
	priv := s.createRoom("u_ann", "squad", "private")
	pub := s.createRoom("u_ann", "lobby", "public")
	ann := s.dial("u_ann")
	var sent []string
	for _, w := range []string{"one", "two", "three"} {
		sent = append(sent, ann.pub("room:"+priv, text(w)).MsgID)
	}
	ann.pub("room:"+pub, text("hello"))

	path := "/v1/rooms/" + priv + "/messages"
	page := servertest.Decode[historyReply](t, s.wantStatus(http.StatusOK, "GET", path+"?limit=2", "u_ann", nil))
	if diff := cmp.Diff([]string{sent[2], sent[1]}, ids(page.Messages)); diff != "" || !page.More || page.NextCursor != sent[1] {
		t.Errorf("first page more %v cursor %q (want %q); ids (-want +got):\n%s", page.More, page.NextCursor, sent[1], diff)
	}
	page = servertest.Decode[historyReply](t, s.wantStatus(http.StatusOK, "GET", path+"?limit=2&before="+page.NextCursor, "u_ann", nil))
	if diff := cmp.Diff([]string{sent[0]}, ids(page.Messages)); diff != "" || page.More || page.NextCursor != "" {
		t.Errorf("second page more %v cursor %q; ids (-want +got):\n%s", page.More, page.NextCursor, diff)
	}
	page = servertest.Decode[historyReply](t, s.wantStatus(http.StatusOK, "GET", path+"?cursor="+sent[1], "u_ann", nil))
	if diff := cmp.Diff([]string{sent[0]}, ids(page.Messages)); diff != "" {
		t.Errorf("page by cursor (-want +got):\n%s", diff)
	}
	if m := page.Messages[0]; m.Type != "msg" || m.Channel != "room:"+priv || m.Kind != "message" || m.From != "u_ann" ||
		string(m.Data) != `{"text":"one"}` || m.Offset == 0 || m.Epoch == "" {
		t.Errorf("REST message %+v, want a full msg object", m)
	}
	page = servertest.Decode[historyReply](t, s.wantStatus(http.StatusOK, "GET", "/v1/rooms/"+pub+"/messages", "u_cat", nil))
	if len(page.Messages) != 1 {
		t.Errorf("public room messages for a non-member: %d, want 1", len(page.Messages))
	}

	s.wantStatus(http.StatusBadRequest, "GET", path+"?limit=abc", "u_ann", nil)
	s.wantStatus(http.StatusBadRequest, "GET", path+"?limit=-1", "u_ann", nil)
	s.wantStatus(http.StatusBadRequest, "GET", path+"?before=no.such", "u_ann", nil)
	s.wantStatus(http.StatusNotFound, "GET", path, "u_cat", nil)
	s.wantStatus(http.StatusNotFound, "GET", "/v1/rooms/r_missing/messages", "u_ann", nil)
	s.wantStatus(http.StatusUnauthorized, "GET", path, "", nil)
}
