package chat_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/internal/httpx"
	"github.com/partyline/partyline/internal/server"
	"github.com/partyline/partyline/internal/server/servertest"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/wire"
	"github.com/partyline/partyline/store/sqlite"
)

// waitFor bounds every wait. A wait that succeeds returns as soon as its
// condition holds, so it may be generous.
const waitFor = 10 * time.Second

// apiKey is the server API key of every test stack.
const apiKey = "test-api-key"

// eventually polls cond until it holds, and fails the test when waitFor
// passes first. It must run on the test's goroutine.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitFor, what)
		}
		<-tick.C
	}
}

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

// do sends an HTTP request as user ("" sends no credentials) with body
// encoded as JSON unless it is a string, and returns the status and body.
func (s *stack) do(method, path, user string, body any) (int, http.Header, []byte) {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			s.t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, s.srv.URL+path, rd)
	if err != nil {
		s.t.Fatalf("new request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+user)
	}
	resp, err := s.srv.HTTP.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// wantStatus sends a request and fails unless it is answered with status.
// Error statuses must come as problem+json with that status inside.
func (s *stack) wantStatus(status int, method, path, user string, body any) []byte {
	s.t.Helper()
	got, h, b := s.do(method, path, user, body)
	if got != status {
		s.t.Fatalf("%s %s as %q: status %d, want %d; body %s", method, path, user, got, status, b)
	}
	if status >= 400 {
		if ct := h.Get("Content-Type"); ct != "application/problem+json" {
			s.t.Fatalf("%s %s: Content-Type %q, want application/problem+json", method, path, ct)
		}
		var p httpx.Problem
		if err := json.Unmarshal(b, &p); err != nil || p.Status != status || p.Detail == "" {
			s.t.Fatalf("%s %s: problem %s (err %v), want status %d and a detail", method, path, b, err, status)
		}
	}
	return b
}

// roomJSON is a room as the REST API returns it.
type roomJSON struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Visibility string    `json:"visibility"`
	Owner      string    `json:"owner"`
	CreatedAt  time.Time `json:"created_at"`
}

// createRoom creates a room through REST and returns its id.
func (s *stack) createRoom(owner, name, visibility string) string {
	s.t.Helper()
	b := s.wantStatus(http.StatusCreated, "POST", "/v1/rooms", owner, map[string]string{"name": name, "visibility": visibility})
	room := decode[roomJSON](s.t, b)
	return room.ID
}

// addMember adds user to the room through REST, as its owner.
func (s *stack) addMember(owner, room, user string) {
	s.t.Helper()
	s.wantStatus(http.StatusOK, "PUT", "/v1/rooms/"+room+"/members/"+user, owner, nil)
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// client is a WebSocket connection that says hello as user, then keeps
// every reply by request id and every msg notification.
type client struct {
	t    *testing.T
	user string
	ws   *websocket.Conn
	next atomic.Uint64

	mu      sync.Mutex
	replies map[uint64]wire.Message
	msgs    []wire.Message
	readErr error
	done    chan struct{}
}

// dial connects as user and says hello. The connection closes when the
// test ends.
func (s *stack) dial(user string) *client {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.srv.WS, &websocket.DialOptions{
		Subprotocols: []string{wire.Subprotocol},
		HTTPClient:   s.srv.HTTP,
	})
	if err != nil {
		s.t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	c := &client{t: s.t, user: user, ws: ws, replies: map[uint64]wire.Message{}, done: make(chan struct{})}
	go c.read()
	s.t.Cleanup(c.close)
	c.ok(map[string]any{"type": "hello", "token": user})
	return c
}

func (c *client) read() {
	defer close(c.done)
	for {
		_, frame, err := c.ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			return
		}
		err = wire.Split(frame, func(b []byte) error {
			m, err := wire.DecodeMessage(bytes.Clone(b))
			if err != nil {
				return err
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			switch {
			case m.Type == wire.TypeMsg, m.Type == wire.TypeUnsubscribed:
				c.msgs = append(c.msgs, m)
			case m.ID != 0:
				c.replies[m.ID] = m
			}
			return nil
		})
		if err != nil {
			c.mu.Lock()
			c.readErr = fmt.Errorf("bad frame %q: %w", frame, err)
			c.mu.Unlock()
			c.ws.CloseNow()
			return
		}
	}
}

func (c *client) close() {
	c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
}

// send sends a request with a new id and returns the id.
func (c *client) send(req map[string]any) uint64 {
	c.t.Helper()
	id := c.next.Add(1)
	req["id"] = id
	b, err := json.Marshal(req)
	if err != nil {
		c.t.Fatalf("encode request: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("%s: write: %v", c.user, err)
	}
	return id
}

// reply waits for the reply to request id.
func (c *client) reply(id uint64) wire.Message {
	c.t.Helper()
	var m wire.Message
	eventually(c.t, fmt.Sprintf("%s: reply %d", c.user, id), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.readErr != nil {
			c.t.Fatalf("%s: connection ended while waiting for reply %d: %v", c.user, id, c.readErr)
		}
		var ok bool
		m, ok = c.replies[id]
		return ok
	})
	return m
}

// do sends a request and waits for its reply.
func (c *client) do(req map[string]any) wire.Message {
	c.t.Helper()
	return c.reply(c.send(req))
}

// ok sends a request and fails unless the reply is ok.
func (c *client) ok(req map[string]any) wire.Message {
	c.t.Helper()
	m := c.do(req)
	if m.Type != wire.TypeOK {
		c.t.Fatalf("%s: %v: got %s %s (%s), want ok", c.user, req, m.Type, m.Code, m.Message)
	}
	return m
}

// wantError sends a request and fails unless the reply is an error with
// code.
func (c *client) wantError(code string, req map[string]any) {
	c.t.Helper()
	m := c.do(req)
	if m.Type != wire.TypeError || m.Code != code {
		c.t.Fatalf("%s: %v: got %s %q (%s), want error %q", c.user, req, m.Type, m.Code, m.Message, code)
	}
}

// sub subscribes to ch and returns the position the reply gave.
func (c *client) sub(ch string) wire.Position {
	c.t.Helper()
	m := c.ok(map[string]any{"type": "sub", "channel": ch})
	return decode[wire.Position](c.t, m.Raw)
}

// pub publishes data on ch and returns the reply.
func (c *client) pub(ch string, data any) pubReply {
	c.t.Helper()
	m := c.ok(map[string]any{"type": "pub", "channel": ch, "data": data})
	return decode[pubReply](c.t, m.Raw)
}

type pubReply struct {
	MsgID  string `json:"msg_id"`
	Offset uint64 `json:"offset"`
}

// msgsOn returns the msgs received on ch so far.
func (c *client) msgsOn(ch string) []wire.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []wire.Message
	for _, m := range c.msgs {
		if m.Channel == ch {
			out = append(out, m)
		}
	}
	return out
}

// waitMsg waits for the msg on ch with the given offset.
func (c *client) waitMsg(ch string, offset uint64) wire.Message {
	c.t.Helper()
	var got wire.Message
	eventually(c.t, fmt.Sprintf("%s: msg %d on %s", c.user, offset, ch), func() bool {
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
	c.t.Helper()
	req := map[string]any{"type": "history", "channel": ch}
	if before != "" {
		req["before"] = before
	}
	if limit != 0 {
		req["limit"] = limit
	}
	return decode[historyReply](c.t, c.ok(req).Raw)
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
