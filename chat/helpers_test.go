package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/partyline/partyline"
	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/internal/server"
	"github.com/partyline/partyline/internal/server/servertest"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/wire"
	"github.com/partyline/partyline/store/sqlite"
)

// apiKey is the server API key of every test stack.
const apiKey = "test-api-key"

// stack is a whole server, built by the one assembly (servertest): a
// SQLite store, the memory backend, the Node with chat, clips and voice
// registered, and every route. Chat's gateway goes through a
// flakyGateway, so a test can make publishing fail.
type stack struct {
	t     *testing.T
	db    *sqlite.DB
	chat  *chat.Service
	node  *realtime.Node
	flaky *flakyGateway
	srv   *servertest.Server
}

// flakyGateway fails every publish while fail is set.
type flakyGateway struct {
	chat.Gateway
	fail atomic.Bool
}

func (p *flakyGateway) PublishAt(ctx context.Context, ch, id, kind, from string, ts time.Time, data json.RawMessage) (wire.Position, error) {
	if p.fail.Load() {
		return wire.Position{}, fmt.Errorf("flaky gateway: %w", partyline.ErrUnavailable)
	}
	return p.Gateway.PublishAt(ctx, ch, id, kind, from, ts, data)
}

// newStack builds and starts a stack; edit adjusts the Node's options.
// Everything stops when the test ends.
func newStack(t *testing.T, edit func(*realtime.Options)) *stack {
	t.Helper()
	db, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "chat.db")})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	flaky := &flakyGateway{}
	srv := servertest.Start(t, server.Options{
		Store:        db,
		APIKey:       apiKey,
		TuneRealtime: edit,
		TuneChat: func(o *chat.Options) {
			flaky.Gateway = o.Gateway
			o.Gateway = flaky
		},
	})
	return &stack{t: t, db: db, chat: srv.Chat(), node: srv.Node(), flaky: flaky, srv: srv}
}

// wantStatus sends a request as user ("" sends no credentials) with body
// encoded as JSON unless it is a string, fails unless it is answered with
// status (an error as problem+json carrying it), and returns the body.
func (s *stack) wantStatus(status int, method, path, user string, body any) []byte {
	s.t.Helper()
	return s.srv.Want(s.t, status, servertest.Request{Method: method, Path: path, Token: user, Body: body}).Body
}

// roomJSON is a room as the REST API returns it.
type roomJSON struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Visibility string    `json:"visibility"`
	Owner      string    `json:"owner"`
	CreatedAt  time.Time `json:"created_at"`
}

// createRoom creates a room through REST, adds the members, and returns
// its id.
func (s *stack) createRoom(owner, name, visibility string, members ...string) string {
	s.t.Helper()
	b := s.wantStatus(http.StatusCreated, "POST", "/v1/rooms", owner, map[string]string{"name": name, "visibility": visibility})
	room := servertest.Decode[roomJSON](s.t, b)
	for _, user := range members {
		s.addMember(owner, room.ID, user)
	}
	return room.ID
}

// addMember adds user to the room through REST, as its owner.
func (s *stack) addMember(owner, room, user string) {
	s.t.Helper()
	s.wantStatus(http.StatusOK, "PUT", "/v1/rooms/"+room+"/members/"+user, owner, nil)
}

// client is a WebSocket connection that said hello as its user, with
// chat's requests and the msgs it received.
type client struct{ *servertest.Client }

// dial connects as user and says hello. The connection closes when the
// test ends.
func (s *stack) dial(user string) *client {
	s.t.Helper()
	return &client{s.srv.Dial(s.t, user, nil)}
}

// sub subscribes to ch and returns the position the reply gave.
func (c *client) sub(ch string) wire.Position {
	c.T.Helper()
	m := c.OK(map[string]any{"type": "sub", "channel": ch})
	return servertest.Decode[wire.Position](c.T, m.Raw)
}

// pub publishes data on ch and returns the reply.
func (c *client) pub(ch string, data any) pubReply {
	c.T.Helper()
	m := c.OK(map[string]any{"type": "pub", "channel": ch, "data": data})
	return servertest.Decode[pubReply](c.T, m.Raw)
}

type pubReply struct {
	MsgID  string `json:"msg_id"`
	Offset uint64 `json:"offset"`
}

// msgsOn returns the msgs (and the unsubscribed notification) received
// on ch so far.
func (c *client) msgsOn(ch string) []wire.Message {
	return c.Notes(func(m wire.Message) bool {
		return (m.Type == wire.TypeMsg || m.Type == wire.TypeUnsubscribed) && m.Channel == ch
	})
}

// waitMsg waits for the msg on ch with the given offset.
func (c *client) waitMsg(ch string, offset uint64) wire.Message {
	c.T.Helper()
	var got wire.Message
	testenv.Eventually(c.T, fmt.Sprintf("%s: msg %d on %s", c.User, offset, ch), func() bool {
		for _, m := range c.msgsOn(ch) {
			if m.Offset == offset {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// wantOnly has from publish a marker on ch, waits for c to receive it,
// and fails unless the msgs c received on ch are those with ids, in
// order, and then the marker.
func (c *client) wantOnly(from *client, ch string, ids ...string) {
	c.T.Helper()
	marker := from.pub(ch, text("marker"))
	c.waitMsg(ch, marker.Offset)
	var got []string
	for _, m := range c.msgsOn(ch) {
		got = append(got, m.MsgID)
	}
	if diff := cmp.Diff(append(ids, marker.MsgID), got); diff != "" {
		c.T.Errorf("%s's msgs on %s (-want +got):\n%s", c.User, ch, diff)
	}
}

// historyReply is the ok reply to history.
type historyReply struct {
	Messages   []msgJSON `json:"messages"`
	More       bool      `json:"more"`
	NextCursor string    `json:"next_cursor"`
}

// msgJSON is a msg object of a history reply.
type msgJSON struct {
	Type     string          `json:"type"`
	Channel  string          `json:"channel"`
	Offset   uint64          `json:"offset"`
	Epoch    string          `json:"epoch"`
	ID       string          `json:"id"`
	Kind     string          `json:"kind"`
	From     string          `json:"from"`
	TS       int64           `json:"ts"`
	EditedTS int64           `json:"edited_ts"`
	Data     json.RawMessage `json:"data"`
}

// history sends a history request and returns its reply.
func (c *client) history(ch, before string, limit int) historyReply {
	c.T.Helper()
	req := map[string]any{"type": "history", "channel": ch}
	if before != "" {
		req["before"] = before
	}
	if limit != 0 {
		req["limit"] = limit
	}
	return servertest.Decode[historyReply](c.T, c.OK(req).Raw)
}

// ids returns the ids of msgs in order.
func ids(msgs []msgJSON) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

// text returns data encoding {"text": s}.
func text(s string) map[string]string { return map[string]string{"text": s} }
