package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/internal/server/servertest"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/wire"
)

func TestNewOptions(t *testing.T) {
	if _, err := chat.New(chat.Options{}); err == nil {
		t.Error("New without a Store: no error")
	}
}

// TestPubStoredAndFannedOut checks the message path: a pub is committed
// with its position before the ack, and another member's subscription gets
// it as a msg with every field set by the server.
func TestPubStoredAndFannedOut(t *testing.T) {
	s := newStack(t, nil)
	room := s.createRoom("u_ann", "squad", "private", "u_bob")
	ch := "room:" + room
	ann, bob := s.dial("u_ann"), s.dial("u_bob")
	start := bob.sub(ch)

	before := time.Now().UnixMilli()
	m := ann.OK(map[string]any{"type": "pub", "channel": ch, "data": json.RawMessage(`{ "text" : "gg" }`), "from": "u_mallory"})
	after := time.Now().UnixMilli()
	if want := `{"type":"ok","id":` + string(m.RawID) + `,"msg_id":`; !strings.HasPrefix(string(m.Raw), want) {
		t.Errorf("pub reply %s, want it to start with %s", m.Raw, want)
	}
	reply := servertest.Decode[pubReply](t, m.Raw)
	if reply.MsgID == "" || reply.Offset != start.Offset+1 {
		t.Fatalf("pub reply %+v, want a msg_id and offset %d", reply, start.Offset+1)
	}

	// The reply came after the commit: the store has the message and its position.
	stored, err := s.db.GetMessage(context.Background(), reply.MsgID)
	if err != nil {
		t.Fatalf("GetMessage after the ack: %v", err)
	}
	if stored.Channel != ch || stored.Author != "u_ann" || string(stored.Data) != `{"text":"gg"}` ||
		stored.Offset != reply.Offset || stored.Epoch != start.Epoch {
		t.Errorf("stored %+v, want channel %s, author u_ann, compacted data, position %s/%d",
			stored, ch, start.Epoch, reply.Offset)
	}

	got := bob.waitMsg(ch, reply.Offset)
	want := wire.Message{
		Type: wire.TypeMsg, Channel: ch, Offset: reply.Offset, Epoch: start.Epoch,
		MsgID: reply.MsgID, Kind: wire.KindMessage, From: "u_ann", Data: json.RawMessage(`{"text":"gg"}`),
	}
	if diff := cmp.Diff(want, got, cmpMsg); diff != "" {
		t.Errorf("bob's msg (-want +got):\n%s", diff)
	}
	if got.TS < before || got.TS > after {
		t.Errorf("msg ts %d, want within [%d, %d]", got.TS, before, after)
	}
}

// cmpMsg compares msgs without their raw bytes, id encodings and ts.
var cmpMsg = cmp.Options{
	cmp.FilterPath(func(p cmp.Path) bool {
		switch p.Last().String() {
		case ".Raw", ".RawID", ".TS":
			return true
		}
		return false
	}, cmp.Ignore()),
	cmp.Comparer(func(a, b json.RawMessage) bool { return string(a) == string(b) }),
}

func TestPubErrors(t *testing.T) {
	s := newStack(t, nil)
	room := s.createRoom("u_ann", "squad", "private")
	ch := "room:" + room
	ann, cat := s.dial("u_ann"), s.dial("u_cat")
	big := map[string]string{"text": strings.Repeat("x", chat.DefaultMaxMessageBytes)}

	tests := []struct {
		name string
		c    *client
		req  map[string]any
		code string
	}{
		{"user channel", ann, map[string]any{"channel": "user:u_ann", "data": text("hi")}, wire.CodeForbidden},
		{"status channel", ann, map[string]any{"channel": "status:u_ann", "data": text("hi")}, wire.CodeForbidden},
		{"broadcast channel", ann, map[string]any{"channel": "broadcast:finals", "data": text("hi")}, wire.CodeForbidden},
		{"clip channel", ann, map[string]any{"channel": "clip:c_1", "data": text("hi")}, wire.CodeForbidden},
		{"voice channel", ann, map[string]any{"channel": "voice:" + room, "data": text("hi")}, wire.CodeForbidden},
		{"no channel", ann, map[string]any{"data": text("hi")}, wire.CodeBadRequest},
		{"no namespace", ann, map[string]any{"channel": "room", "data": text("hi")}, wire.CodeBadRequest},
		{"unknown namespace", ann, map[string]any{"channel": "lobby:x", "data": text("hi")}, wire.CodeBadRequest},
		{"bad characters", ann, map[string]any{"channel": "room:a b", "data": text("hi")}, wire.CodeBadRequest},
		{"no such room", ann, map[string]any{"channel": "room:r_missing", "data": text("hi")}, wire.CodeNotFound},
		{"not a member", cat, map[string]any{"channel": ch, "data": text("hi")}, wire.CodeForbidden},
		{"no data", ann, map[string]any{"channel": ch}, wire.CodeBadRequest},
		{"null data", ann, map[string]any{"channel": ch, "data": nil}, wire.CodeBadRequest},
		{"string data", ann, map[string]any{"channel": ch, "data": "hi"}, wire.CodeBadRequest},
		{"array data", ann, map[string]any{"channel": ch, "data": []int{1}}, wire.CodeBadRequest},
		{"data too large", ann, map[string]any{"channel": ch, "data": big}, wire.CodeTooLarge},
		{"idem too long", ann, map[string]any{"channel": ch, "data": text("hi"), "idem": strings.Repeat("k", 65)}, wire.CodeBadRequest},
		{"idem characters", ann, map[string]any{"channel": ch, "data": text("hi"), "idem": "a b"}, wire.CodeBadRequest},
		{"dm of others", cat, map[string]any{"channel": "dm:u_ann:u_bob", "data": text("hi")}, wire.CodeForbidden},
		{"dm unsorted", ann, map[string]any{"channel": "dm:u_bob:u_ann", "data": text("hi")}, wire.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req["type"] = "pub"
			tt.c.WantError(tt.code, tt.req)
		})
	}

	// The largest data that fits is accepted.
	fits := `{"text":"` + strings.Repeat("x", chat.DefaultMaxMessageBytes-len(`{"text":""}`)) + `"}`
	ann.pub(ch, json.RawMessage(fits))
	if msgs, _, err := s.db.History(context.Background(), ch, "", 10); err != nil || len(msgs) != 1 {
		t.Errorf("history after the failed pubs: %d messages (err %v), want only the one that fit", len(msgs), err)
	}
}

func TestPubRateLimited(t *testing.T) {
	s := newStack(t, func(o *realtime.Options) { o.PublishRate = 1 }) // a burst of 2
	ann := s.dial("u_ann")
	ch := "dm:u_ann:u_bob"
	var ids []uint64
	for i := 0; i < 3; i++ {
		ids = append(ids, ann.Send(map[string]any{"type": "pub", "channel": ch, "data": text("spam")}))
	}
	var codes []string
	for _, id := range ids {
		m := ann.Reply(id)
		codes = append(codes, m.Type+":"+m.Code)
	}
	want := []string{"ok:", "ok:", "error:" + wire.CodeRateLimited}
	if diff := cmp.Diff(want, codes); diff != "" {
		t.Errorf("replies (-want +got):\n%s", diff)
	}
}

// TestIdempotentPub checks that a retry with the same idem returns the
// first msg_id and offset and publishes nothing new.
func TestIdempotentPub(t *testing.T) {
	s := newStack(t, nil)
	room := s.createRoom("u_ann", "squad", "private", "u_bob")
	ch := "room:" + room
	ann, bob := s.dial("u_ann"), s.dial("u_bob")
	bob.sub(ch)

	pub := func(data, idem string) wire.Message {
		return ann.Do(map[string]any{"type": "pub", "channel": ch, "data": text(data), "idem": idem})
	}
	first := servertest.Decode[pubReply](t, pub("gg", "k-1.a:b_c").Raw)
	retry := servertest.Decode[pubReply](t, pub("gg again", "k-1.a:b_c").Raw)
	if retry != first {
		t.Errorf("retry replied %+v, want the first reply %+v", retry, first)
	}
	bob.wantOnly(ann, ch, first.MsgID)
	stored, err := s.db.GetMessage(context.Background(), first.MsgID)
	if err != nil || string(stored.Data) != `{"text":"gg"}` {
		t.Errorf("stored %s (err %v), want the first data", stored.Data, err)
	}

	// Retries racing on two connections of one user publish once.
	ann2 := s.dial("u_ann")
	for i := range 5 {
		idem := fmt.Sprintf("race-%d", i)
		req := func() map[string]any {
			return map[string]any{"type": "pub", "channel": ch, "data": text(idem), "idem": idem}
		}
		id1, id2 := ann.Send(req()), ann2.Send(req())
		r1, r2 := servertest.Decode[pubReply](t, ann.Reply(id1).Raw), servertest.Decode[pubReply](t, ann2.Reply(id2).Raw)
		if r1 != r2 || r1.MsgID == "" {
			t.Errorf("racing retries replied %+v and %+v, want one message", r1, r2)
		}
	}
	marker := ann.pub(ch, text("marker 2"))
	bob.waitMsg(ch, marker.Offset)
	if n := len(bob.msgsOn(ch)); n != 2+5+1 {
		t.Errorf("bob got %d msgs, want %d: racing retries published twice", n, 2+5+1)
	}

	// The key belongs to the user: another channel may not reuse it.
	ann.WantError(wire.CodeConflict, map[string]any{"type": "pub", "channel": "dm:u_ann:u_bob", "data": text("x"), "idem": "k-1.a:b_c"})
	// Another user's key space is their own.
	bob.OK(map[string]any{"type": "pub", "channel": ch, "data": text("mine"), "idem": "k-1.a:b_c"})
}

// TestIdempotentRetryPublishes checks that a retry of a message whose
// publish failed after the commit publishes it then, once.
func TestIdempotentRetryPublishes(t *testing.T) {
	s := newStack(t, nil)
	flaky := s.flaky
	ch := "dm:u_ann:u_bob"
	ann, bob := s.dial("u_ann"), s.dial("u_bob")
	bob.sub(ch)

	req := map[string]any{"type": "pub", "channel": ch, "data": text("hello"), "idem": "retry-1"}
	flaky.fail.Store(true)
	ann.WantError(wire.CodeUnavailable, req)
	msgs, _, err := s.db.History(context.Background(), ch, "", 10)
	if err != nil || len(msgs) != 1 || msgs[0].Offset != 0 {
		t.Fatalf("after the failed publish the store has %+v (err %v), want one message without a position", msgs, err)
	}

	flaky.fail.Store(false)
	got := servertest.Decode[pubReply](t, ann.OK(req).Raw)
	if got.MsgID != msgs[0].ID || got.Offset == 0 {
		t.Fatalf("retry replied %+v, want msg_id %s and an offset", got, msgs[0].ID)
	}
	again := servertest.Decode[pubReply](t, ann.OK(req).Raw)
	if again != got {
		t.Errorf("second retry replied %+v, want %+v", again, got)
	}
	bob.wantOnly(ann, ch, got.MsgID)
	stored, err := s.db.GetMessage(context.Background(), got.MsgID)
	if err != nil || stored.Offset != got.Offset {
		t.Errorf("stored position %d (err %v), want %d", stored.Offset, err, got.Offset)
	}
}

// TestNewNeedsItsDependencies checks that chat is built whole: with no
// store or no gateway, New fails instead of building a chat that fails
// later.
func TestNewNeedsItsDependencies(t *testing.T) {
	s := newStack(t, nil)
	if _, err := chat.New(chat.Options{Gateway: s.node}); err == nil {
		t.Error("chat.New without a store succeeded")
	}
	if _, err := chat.New(chat.Options{Store: s.db}); err == nil {
		t.Error("chat.New without a gateway succeeded")
	}
}

// TestGatewayDown checks that a pub whose fan-out fails is answered
// unavailable, and that nothing is fanned out.
func TestGatewayDown(t *testing.T) {
	s := newStack(t, nil)
	ann, bob := s.dial("u_ann"), s.dial("u_bob")
	bob.sub("dm:u_ann:u_bob")
	s.flaky.fail.Store(true)
	ann.WantError(wire.CodeUnavailable, map[string]any{"type": "pub", "channel": "dm:u_ann:u_bob", "data": text("hi")})
	s.flaky.fail.Store(false)
	bob.wantOnly(ann, "dm:u_ann:u_bob")
}

func TestEditAndDelete(t *testing.T) {
	s := newStack(t, nil)
	room := s.createRoom("u_ann", "squad", "private", "u_bob", "u_cat")
	other := s.createRoom("u_ann", "other", "private")
	ch := "room:" + room
	ann, bob, cat := s.dial("u_ann"), s.dial("u_bob"), s.dial("u_cat")
	cat.sub(ch)

	m1 := ann.pub(ch, text("one"))
	m2 := ann.pub(ch, text("two"))
	m3 := bob.pub(ch, text("three"))
	m4 := bob.pub(ch, text("four"))
	m5 := bob.pub(ch, text("five"))

	// The author edits: a publication of its own, with the message's id.
	e := ann.OK(map[string]any{"type": "edit", "channel": ch, "msg_id": m1.MsgID, "data": text("one, edited")})
	edit := servertest.Decode[struct{ Offset uint64 }](t, e.Raw)
	if edit.Offset != m5.Offset+1 {
		t.Errorf("edit offset %d, want %d", edit.Offset, m5.Offset+1)
	}
	got := cat.waitMsg(ch, edit.Offset)
	want := wire.Message{Type: wire.TypeMsg, Channel: ch, Offset: edit.Offset, Epoch: got.Epoch,
		MsgID: m1.MsgID, Kind: wire.KindEdit, From: "u_ann", Data: json.RawMessage(`{"text":"one, edited"}`)}
	if diff := cmp.Diff(want, got, cmpMsg); diff != "" {
		t.Errorf("edit msg (-want +got):\n%s", diff)
	}

	// The room's owner deletes another member's message; a delete has no data.
	d := ann.OK(map[string]any{"type": "delete", "channel": ch, "msg_id": m3.MsgID})
	del := servertest.Decode[struct{ Offset uint64 }](t, d.Raw)
	got = cat.waitMsg(ch, del.Offset)
	want = wire.Message{Type: wire.TypeMsg, Channel: ch, Offset: del.Offset, Epoch: got.Epoch,
		MsgID: m3.MsgID, Kind: wire.KindDelete, From: "u_ann"}
	if diff := cmp.Diff(want, got, cmpMsg); diff != "" {
		t.Errorf("delete msg (-want +got):\n%s", diff)
	}
	// The author deletes their own.
	bob.OK(map[string]any{"type": "delete", "channel": ch, "msg_id": m4.MsgID})

	errs := []struct {
		name string
		c    *client
		req  map[string]any
		code string
	}{
		{"edit by another member", bob, map[string]any{"type": "edit", "channel": ch, "msg_id": m2.MsgID, "data": text("x")}, wire.CodeForbidden},
		{"edit by the owner", ann, map[string]any{"type": "edit", "channel": ch, "msg_id": m5.MsgID, "data": text("x")}, wire.CodeForbidden},
		{"edit a deleted message", bob, map[string]any{"type": "edit", "channel": ch, "msg_id": m3.MsgID, "data": text("x")}, wire.CodeNotFound},
		{"edit an unknown message", ann, map[string]any{"type": "edit", "channel": ch, "msg_id": "01JD8X0000000000000000000", "data": text("x")}, wire.CodeNotFound},
		{"edit in the wrong channel", ann, map[string]any{"type": "edit", "channel": "room:" + other, "msg_id": m2.MsgID, "data": text("x")}, wire.CodeNotFound},
		{"edit without msg_id", ann, map[string]any{"type": "edit", "channel": ch, "data": text("x")}, wire.CodeBadRequest},
		{"edit with a bad msg_id", ann, map[string]any{"type": "edit", "channel": ch, "msg_id": "no such!", "data": text("x")}, wire.CodeBadRequest},
		{"edit without data", ann, map[string]any{"type": "edit", "channel": ch, "msg_id": m2.MsgID}, wire.CodeBadRequest},
		{"edit on a server channel", ann, map[string]any{"type": "edit", "channel": "user:u_ann", "msg_id": m2.MsgID, "data": text("x")}, wire.CodeForbidden},
		{"edit by a non-member", s.dial("u_dan"), map[string]any{"type": "edit", "channel": ch, "msg_id": m2.MsgID, "data": text("x")}, wire.CodeForbidden},
		{"delete by another member", cat, map[string]any{"type": "delete", "channel": ch, "msg_id": m2.MsgID}, wire.CodeForbidden},
		{"delete twice", ann, map[string]any{"type": "delete", "channel": ch, "msg_id": m3.MsgID}, wire.CodeNotFound},
		{"delete without msg_id", ann, map[string]any{"type": "delete", "channel": ch}, wire.CodeBadRequest},
		{"delete in the wrong channel", ann, map[string]any{"type": "delete", "channel": "room:" + other, "msg_id": m2.MsgID}, wire.CodeNotFound},
		{"delete in a missing room", ann, map[string]any{"type": "delete", "channel": "room:r_missing", "msg_id": m2.MsgID}, wire.CodeNotFound},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) { tt.c.WantError(tt.code, tt.req) })
	}

	// History has the latest state: edited text, deleted messages left out.
	h := cat.history(ch, "", 0)
	if diff := cmp.Diff([]string{m5.MsgID, m2.MsgID, m1.MsgID}, ids(h.Messages)); diff != "" {
		t.Fatalf("history ids (-want +got):\n%s", diff)
	}
	if got := h.Messages[2]; string(got.Data) != `{"text":"one, edited"}` || got.EditedTS == 0 || got.Offset != m1.Offset {
		t.Errorf("edited message in history %+v, want the new data, edited_ts and offset %d", got, m1.Offset)
	}
	if got := h.Messages[1]; got.EditedTS != 0 {
		t.Errorf("unedited message has edited_ts %d", got.EditedTS)
	}

	// In a dm only the author deletes.
	dm := "dm:u_ann:u_bob"
	mine := ann.pub(dm, text("dm"))
	bob.WantError(wire.CodeForbidden, map[string]any{"type": "delete", "channel": dm, "msg_id": mine.MsgID})
	ann.OK(map[string]any{"type": "delete", "channel": dm, "msg_id": mine.MsgID})
}

func TestServerPublish(t *testing.T) {
	s := newStack(t, nil)
	room := s.createRoom("u_ann", "squad", "public")
	ch := "room:" + room
	ann := s.dial("u_ann")
	ann.sub(ch)
	ctx := context.Background()

	pos, err := s.chat.ServerPublish(ctx, ch, "notice", json.RawMessage(`{"text":"maintenance"}`))
	if err != nil {
		t.Fatalf("ServerPublish: %v", err)
	}
	got := ann.waitMsg(ch, pos.Offset)
	if got.Kind != "notice" || got.From != chat.SystemAuthor || string(got.Data) != `{"text":"maintenance"}` {
		t.Errorf("msg %s, want kind notice from system", got.Raw)
	}
	h := ann.history(ch, "", 0)
	if len(h.Messages) != 1 || h.Messages[0].From != chat.SystemAuthor || h.Messages[0].ID != got.MsgID ||
		h.Messages[0].Offset != pos.Offset {
		t.Errorf("history %+v, want the message from system at offset %d", h.Messages, pos.Offset)
	}

	// Through the server API, data with raw newlines still makes one msg per line.
	r := s.srv.Do(t, servertest.Request{Method: "POST", Path: "/v1/server/publish"})
	if r.Status != 401 {
		t.Errorf("server API without the key: %d %s", r.Status, r.Body)
	}
	apiBody := "{\"channel\":\"" + ch + "\",\"kind\":\"notice\",\"data\":{\n  \"text\": \"line\"\n}}"
	r = s.srv.Do(t, servertest.Request{Method: "POST", Path: "/v1/server/publish", Token: apiKey, Body: apiBody})
	if r.Status != 200 {
		t.Fatalf("server API publish: %d %s", r.Status, r.Body)
	}
	res := servertest.Decode[wire.Position](t, r.Body)
	got = ann.waitMsg(ch, res.Offset)
	if string(got.Data) != `{"text":"line"}` || got.From != chat.SystemAuthor {
		t.Errorf("msg %s, want compacted data from system", got.Raw)
	}
	stored, err := s.db.GetMessage(ctx, got.MsgID)
	if err != nil || stored.Author != chat.SystemAuthor || stored.Offset != res.Offset {
		t.Errorf("stored %+v (err %v), want author system at offset %d", stored, err, res.Offset)
	}

	if _, err := s.chat.ServerPublish(ctx, "dm:u_ann:u_bob", "notice", json.RawMessage(`{"n":1}`)); err != nil {
		t.Errorf("ServerPublish into a dm: %v", err)
	}
	bad := []struct {
		ch, kind, data string
		want           error
	}{
		{"room:r_missing", "notice", `{}`, partyline.ErrNotFound},
		{"dm:u_bob:u_ann", "notice", `{}`, partyline.ErrInvalid},
		{"user:u_ann", "notice", `{}`, partyline.ErrInvalid},
		{ch, "", `{}`, partyline.ErrInvalid},
		{ch, "notice", `"text"`, partyline.ErrInvalid},
		{ch, "notice", `{"text":"` + strings.Repeat("x", chat.DefaultMaxMessageBytes) + `"}`, partyline.ErrTooLarge},
	}
	for _, b := range bad {
		if _, err := s.chat.ServerPublish(ctx, b.ch, b.kind, json.RawMessage(b.data)); !errors.Is(err, b.want) {
			t.Errorf("ServerPublish(%s, %q): %v, want %v", b.ch, b.kind, err, b.want)
		}
	}
}

// TestStoreDown checks that store failures are unavailable, over the
// WebSocket without the internals and over REST as a 503 problem.
func TestStoreDown(t *testing.T) {
	s := newStack(t, nil)
	room := s.createRoom("u_ann", "squad", "public")
	ann := s.dial("u_ann")
	if err := s.db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, req := range []map[string]any{
		{"type": "pub", "channel": "dm:u_ann:u_bob", "data": text("hi")},
		{"type": "pub", "channel": "room:" + room, "data": text("hi")},
		{"type": "history", "channel": "dm:u_ann:u_bob"},
		{"type": "sub", "channel": "room:" + room},
	} {
		m := ann.Do(req)
		if m.Type != wire.TypeError || m.Code != wire.CodeUnavailable || strings.Contains(m.Message, "sql") {
			t.Errorf("%v with the store down: %s, want unavailable without internals", req, m.Raw)
		}
	}
	s.wantStatus(http.StatusServiceUnavailable, "GET", "/v1/me/rooms", "u_ann", nil)
	s.wantStatus(http.StatusServiceUnavailable, "GET", "/v1/rooms/"+room, "u_ann", nil)
	s.wantStatus(http.StatusServiceUnavailable, "POST", "/v1/rooms", "u_ann", map[string]string{"name": "x"})
	if _, err := s.chat.ServerPublish(context.Background(), "dm:u_ann:u_bob", "notice", json.RawMessage(`{}`)); !errors.Is(err, partyline.ErrUnavailable) {
		t.Errorf("ServerPublish with the store down: %v, want unavailable", err)
	}
}
