package signaling_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/partyline/partyline/realtime/wire"
)

// client is a WebSocket connection that said hello as user. It keeps
// replies by id, msgs and events, and hands voice notifications to its
// handler in order.
type client struct {
	t    testing.TB
	user string
	ws   *websocket.Conn
	next atomic.Uint64
	// closed is set when the test closes the connection; writes from the
	// peer's goroutines may fail after it.
	closed atomic.Bool

	mu      sync.Mutex
	replies map[uint64]wire.Message
	msgs    []wire.Message
	events  []wire.Message
	errs    []map[string]any // error messages without id
	readErr error
	voice   chan []byte // voice.offer and voice.ice, in order
	done    chan struct{}
}

func (s *stack) dial(user string) *client {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.srv.WS, &websocket.DialOptions{Subprotocols: []string{wire.Subprotocol}, HTTPClient: s.srv.HTTP})
	if err != nil {
		s.t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	c := &client{t: s.t, user: user, ws: ws, replies: map[uint64]wire.Message{}, voice: make(chan []byte, 1024), done: make(chan struct{})}
	go c.read()
	s.t.Cleanup(c.close)
	c.ok(map[string]any{"type": "hello", "token": user})
	return c
}

func (c *client) read() {
	defer close(c.done)
	defer close(c.voice)
	for {
		_, frame, err := c.ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			return
		}
		_ = wire.Split(frame, func(b []byte) error {
			b = bytes.Clone(b)
			var head struct {
				Type string `json:"type"`
				ID   uint64 `json:"id"`
			}
			_ = json.Unmarshal(b, &head)
			switch head.Type {
			case wire.TypeVoiceOffer, wire.TypeVoiceICE:
				c.voice <- b
				return nil
			}
			m, err := wire.DecodeMessage(b)
			if err != nil {
				return err
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			switch {
			case m.Type == wire.TypeMsg:
				c.msgs = append(c.msgs, m)
			case m.Type == wire.TypeEvent:
				c.events = append(c.events, m)
			case m.ID != 0:
				c.replies[m.ID] = m
			case m.Type == wire.TypeError:
				var e map[string]any
				_ = json.Unmarshal(b, &e)
				c.errs = append(c.errs, e)
			}
			return nil
		})
	}
}

func (c *client) close() {
	c.closed.Store(true)
	c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
}

func (c *client) write(req map[string]any) {
	c.t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		c.t.Fatalf("encode: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil && !c.closed.Load() {
		c.t.Errorf("%s: write: %v", c.user, err)
	}
}

func (c *client) do(req map[string]any) wire.Message {
	c.t.Helper()
	id := c.next.Add(1)
	req["id"] = id
	c.write(req)
	var m wire.Message
	eventually(c.t, fmt.Sprintf("%s: reply %d to %v", c.user, id, req["type"]), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.readErr != nil {
			c.t.Fatalf("%s: connection ended waiting for reply %d: %v", c.user, id, c.readErr)
		}
		var ok bool
		m, ok = c.replies[id]
		return ok
	})
	return m
}

func (c *client) ok(req map[string]any) wire.Message {
	c.t.Helper()
	m := c.do(req)
	if m.Type != wire.TypeOK {
		c.t.Fatalf("%s: %v: got %s %s (%s), want ok", c.user, req, m.Type, m.Code, m.Message)
	}
	return m
}

func (c *client) wantError(code string, req map[string]any) {
	c.t.Helper()
	m := c.do(req)
	if m.Type != wire.TypeError || m.Code != code {
		c.t.Fatalf("%s: %v: got %s %q (%s), want error %q", c.user, req, m.Type, m.Code, m.Message, code)
	}
}

// msgsOf returns the msgs of the given kind received so far.
func (c *client) msgsOf(kind string) []wire.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []wire.Message
	for _, m := range c.msgs {
		if m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

func (c *client) eventsNamed(name string) []wire.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []wire.Message
	for _, m := range c.events {
		if m.Event == name {
			out = append(out, m)
		}
	}
	return out
}

func (c *client) errorMsgs() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[string]any(nil), c.errs...)
}
