package chat_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/internal/server/servertest"
	"github.com/partyline/partyline/realtime/wire"
)

func TestHistoryPaging(t *testing.T) {
	s := newStack(t, nil)
	room := s.createRoom("u_ann", "squad", "private")
	ch := "room:" + room
	ann := s.dial("u_ann")
	start := ann.sub(ch)
	var sent []pubReply
	for _, w := range []string{"one", "two", "three", "four", "five"} {
		sent = append(sent, ann.pub(ch, text(w)))
	}
	newest := func(i ...int) []string {
		out := []string{}
		for _, k := range i {
			out = append(out, sent[k].MsgID)
		}
		return out
	}

	pages := []struct {
		before string
		limit  int
		want   []string
		more   bool
	}{
		{"", 2, newest(4, 3), true},
		{sent[3].MsgID, 2, newest(2, 1), true},
		{sent[1].MsgID, 2, newest(0), false},
		{"", 0, newest(4, 3, 2, 1, 0), false},
		{"", 500, newest(4, 3, 2, 1, 0), false}, // clamped to 200
		{sent[0].MsgID, 0, newest(), false},
	}
	for _, p := range pages {
		h := ann.history(ch, p.before, p.limit)
		if diff := cmp.Diff(p.want, ids(h.Messages)); diff != "" || h.More != p.more {
			t.Errorf("history before %q limit %d: more %v, want %v; ids (-want +got):\n%s", p.before, p.limit, h.More, p.more, diff)
		}
	}

	// Every message is a full msg object with its stream position.
	h := ann.history(ch, "", 1)
	got := h.Messages[0]
	want := msgJSON{Type: "msg", Channel: ch, Offset: sent[4].Offset, Epoch: start.Epoch, ID: sent[4].MsgID,
		Kind: "message", From: "u_ann", TS: got.TS, Data: []byte(`{"text":"five"}`)}
	if diff := cmp.Diff(want, got); diff != "" || got.TS == 0 {
		t.Errorf("history msg (-want +got):\n%s", diff)
	}
	stored, err := s.db.GetMessage(context.Background(), got.ID)
	if err != nil || stored.CreatedAt.UnixMilli() != got.TS {
		t.Errorf("history ts %d, want the creation time %v (err %v)", got.TS, stored.CreatedAt, err)
	}
	empty := ann.OK(map[string]any{"type": "history", "channel": "dm:u_ann:u_bob"})
	if want := `"messages":[],"more":false}`; string(empty.Raw[len(empty.Raw)-len(want):]) != want {
		t.Errorf("empty history %s, want an empty list", empty.Raw)
	}

	cat := s.dial("u_cat")
	errs := []struct {
		name string
		c    *client
		req  map[string]any
		code string
	}{
		{"negative limit", ann, map[string]any{"channel": ch, "limit": -1}, wire.CodeBadRequest},
		{"bad before", ann, map[string]any{"channel": ch, "before": "no such!"}, wire.CodeBadRequest},
		{"stream-only channel", ann, map[string]any{"channel": "user:u_ann"}, wire.CodeBadRequest},
		{"bad channel", ann, map[string]any{"channel": "room"}, wire.CodeBadRequest},
		{"missing room", ann, map[string]any{"channel": "room:r_missing"}, wire.CodeNotFound},
		{"private non-member", cat, map[string]any{"channel": ch}, wire.CodeForbidden},
		{"dm of others", cat, map[string]any{"channel": "dm:u_ann:u_bob"}, wire.CodeForbidden},
		{"dm unsorted", ann, map[string]any{"channel": "dm:u_bob:u_ann"}, wire.CodeBadRequest},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			tt.req["type"] = "history"
			tt.c.WantError(tt.code, tt.req)
		})
	}
}

// TestPublicRoomReaders checks that anyone reads a public room's history
// without joining it, and joins it by subscribing.
func TestPublicRoomReaders(t *testing.T) {
	s := newStack(t, nil)
	pub := s.createRoom("u_ann", "lobby", "public")
	priv := s.createRoom("u_ann", "secret", "private")
	ann, cat := s.dial("u_ann"), s.dial("u_cat")
	m := ann.pub("room:"+pub, text("welcome"))
	ctx := context.Background()

	h := cat.history("room:"+pub, "", 0)
	if diff := cmp.Diff([]string{m.MsgID}, ids(h.Messages)); diff != "" {
		t.Errorf("public history (-want +got):\n%s", diff)
	}
	if _, err := s.db.GetMember(ctx, pub, "u_cat"); !errors.Is(err, partyline.ErrNotFound) {
		t.Errorf("reading history made cat a member (err %v)", err)
	}
	// A non-member publishes nothing, even in a public room.
	cat.WantError(wire.CodeForbidden, map[string]any{"type": "pub", "channel": "room:" + pub, "data": text("hi")})

	// Public rooms are joined by subscribing.
	cat.sub("room:" + pub)
	mem, err := s.db.GetMember(ctx, pub, "u_cat")
	if err != nil || mem.Role != chat.RoleMember {
		t.Fatalf("after subscribing, cat's membership is %+v (err %v), want a member", mem, err)
	}
	r := cat.pub("room:"+pub, text("hi all"))
	cat.waitMsg("room:"+pub, r.Offset)
	// Subscribing again keeps the membership as it is.
	cat.sub("room:" + pub)

	// A private room stays closed.
	cat.WantError(wire.CodeForbidden, map[string]any{"type": "sub", "channel": "room:" + priv})
	cat.WantError(wire.CodeForbidden, map[string]any{"type": "presence", "channel": "room:" + priv})
	if _, err := s.db.GetMember(ctx, priv, "u_cat"); !errors.Is(err, partyline.ErrNotFound) {
		t.Errorf("a refused subscribe made cat a member (err %v)", err)
	}
	cat.WantError(wire.CodeNotFound, map[string]any{"type": "sub", "channel": "room:r_missing"})
	cat.WantError(wire.CodeNotFound, map[string]any{"type": "sub", "channel": "room:bad.id"})

	rooms := servertest.Decode[myRooms](t, s.wantStatus(http.StatusOK, "GET", "/v1/me/rooms", "u_cat", nil))
	if len(rooms.Rooms) != 1 || rooms.Rooms[0].ID != pub || rooms.Rooms[0].Role != "member" {
		t.Errorf("cat's rooms %+v, want the public room as a member", rooms.Rooms)
	}
}

func TestDMAuthorization(t *testing.T) {
	s := newStack(t, nil)
	ann, bob, cat := s.dial("u_ann"), s.dial("u_bob"), s.dial("u_cat")
	tests := []struct {
		c    *client
		ch   string
		code string // "" for ok
	}{
		{ann, "dm:u_ann:u_bob", ""},
		{bob, "dm:u_ann:u_bob", ""},
		{cat, "dm:u_ann:u_bob", wire.CodeForbidden},
		{ann, "dm:u_bob:u_ann", wire.CodeBadRequest},
		{ann, "dm:u_ann:u_ann", wire.CodeBadRequest},
		{ann, "dm:u_ann", wire.CodeBadRequest},
		{ann, "dm:u_ann:u_bob:u_cat", wire.CodeBadRequest},
		{ann, "dm:u_ann:u.bob", wire.CodeBadRequest},
	}
	for _, tt := range tests {
		req := map[string]any{"type": "sub", "channel": tt.ch}
		if tt.code == "" {
			tt.c.OK(req)
		} else {
			tt.c.WantError(tt.code, req)
		}
	}
	r := bob.pub("dm:u_ann:u_bob", text("psst"))
	got := ann.waitMsg("dm:u_ann:u_bob", r.Offset)
	if got.From != "u_bob" || got.MsgID != r.MsgID {
		t.Errorf("ann got %s, want bob's message", got.Raw)
	}
}

type myRooms struct {
	Rooms []struct {
		ID          string   `json:"id"`
		Name        string   `json:"name"`
		Visibility  string   `json:"visibility"`
		Owner       string   `json:"owner"`
		Role        string   `json:"role"`
		Unread      int      `json:"unread"`
		LastMessage *msgJSON `json:"last_message"`
		CreatedAt   string   `json:"created_at"`
	} `json:"rooms"`
}

func TestReadMarkersAndMyRooms(t *testing.T) {
	s := newStack(t, nil)
	room := s.createRoom("u_ann", "squad", "private", "u_bob")
	quiet := s.createRoom("u_ann", "quiet", "public")
	other := s.createRoom("u_cat", "other", "private")
	ch := "room:" + room
	ann, bob, cat := s.dial("u_ann"), s.dial("u_bob"), s.dial("u_cat")
	start := ann.sub(ch)
	m1 := ann.pub(ch, text("one"))
	ann.pub(ch, text("two"))
	m3 := ann.pub(ch, text("three"))
	elsewhere := cat.pub("room:"+other, text("not here"))

	unread := func(user string) map[string]int {
		t.Helper()
		rooms := servertest.Decode[myRooms](t, s.wantStatus(http.StatusOK, "GET", "/v1/me/rooms", user, nil))
		out := map[string]int{}
		for _, r := range rooms.Rooms {
			out[r.ID] = r.Unread
		}
		return out
	}

	rooms := servertest.Decode[myRooms](t, s.wantStatus(http.StatusOK, "GET", "/v1/me/rooms", "u_bob", nil))
	if len(rooms.Rooms) != 1 {
		t.Fatalf("bob's rooms %+v, want one", rooms.Rooms)
	}
	r := rooms.Rooms[0]
	if r.ID != room || r.Name != "squad" || r.Visibility != "private" || r.Owner != "u_ann" || r.Role != "member" ||
		r.Unread != 3 || r.CreatedAt == "" {
		t.Errorf("bob's room %+v, want squad, a member with 3 unread", r)
	}
	wantLast := &msgJSON{Type: "msg", Channel: ch, Offset: m3.Offset, Epoch: start.Epoch, ID: m3.MsgID,
		Kind: "message", From: "u_ann", Data: []byte(`{"text":"three"}`)}
	if r.LastMessage != nil {
		wantLast.TS = r.LastMessage.TS
	}
	if diff := cmp.Diff(wantLast, r.LastMessage); diff != "" {
		t.Errorf("last_message (-want +got):\n%s", diff)
	}
	// The owner's own messages are never unread; a room with no message has a null last_message.
	if diff := cmp.Diff(map[string]int{room: 0, quiet: 0}, unread("u_ann")); diff != "" {
		t.Errorf("ann's unread (-want +got):\n%s", diff)
	}
	annRooms := servertest.Decode[myRooms](t, s.wantStatus(http.StatusOK, "GET", "/v1/me/rooms", "u_ann", nil))
	for _, r := range annRooms.Rooms {
		if r.ID == quiet && r.LastMessage != nil {
			t.Errorf("quiet room's last_message %+v, want null", r.LastMessage)
		}
	}

	read := bob.OK(map[string]any{"type": "read", "channel": ch, "msg_id": m1.MsgID})
	if want := `{"type":"ok","id":` + string(read.RawID) + `}`; string(read.Raw) != want {
		t.Errorf("read reply %s, want %s", read.Raw, want)
	}
	if got := unread("u_bob")[room]; got != 2 {
		t.Errorf("after reading the first message bob has %d unread, want 2", got)
	}
	bob.OK(map[string]any{"type": "read", "channel": ch, "msg_id": m3.MsgID})
	bob.OK(map[string]any{"type": "read", "channel": ch, "msg_id": m1.MsgID}) // never moves back
	if got := unread("u_bob")[room]; got != 0 {
		t.Errorf("after reading everything bob has %d unread, want 0", got)
	}
	m4 := ann.pub(ch, text("four"))
	if got := unread("u_bob")[room]; got != 1 {
		t.Errorf("after a new message bob has %d unread, want 1", got)
	}

	// Read markers work in dms, which have no membership.
	dm := ann.pub("dm:u_ann:u_bob", text("dm"))
	bob.OK(map[string]any{"type": "read", "channel": "dm:u_ann:u_bob", "msg_id": dm.MsgID})

	errs := []struct {
		name string
		c    *client
		req  map[string]any
		code string
	}{
		{"no msg_id", bob, map[string]any{"channel": ch}, wire.CodeBadRequest},
		{"unknown message", bob, map[string]any{"channel": ch, "msg_id": "01JD8X0000000000000000000"}, wire.CodeNotFound},
		{"message of another channel", bob, map[string]any{"channel": ch, "msg_id": elsewhere.MsgID}, wire.CodeNotFound},
		{"dm message in the room", bob, map[string]any{"channel": ch, "msg_id": dm.MsgID}, wire.CodeNotFound},
		{"private non-member", cat, map[string]any{"channel": ch, "msg_id": m4.MsgID}, wire.CodeForbidden},
		{"dm of others", cat, map[string]any{"channel": "dm:u_ann:u_bob", "msg_id": dm.MsgID}, wire.CodeForbidden},
		{"missing room", bob, map[string]any{"channel": "room:r_missing", "msg_id": m4.MsgID}, wire.CodeNotFound},
		{"stream-only channel", bob, map[string]any{"channel": "broadcast:x", "msg_id": m4.MsgID}, wire.CodeBadRequest},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			tt.req["type"] = "read"
			tt.c.WantError(tt.code, tt.req)
		})
	}

	s.wantStatus(http.StatusUnauthorized, "GET", "/v1/me/rooms", "", nil)
	empty := s.wantStatus(http.StatusOK, "GET", "/v1/me/rooms", "u_nobody", nil)
	if string(empty) != "{\"rooms\":[]}\n" {
		t.Errorf("rooms of a user with none: %s, want an empty list", empty)
	}
}
