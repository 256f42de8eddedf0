package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/wire"
)

// Client is a test's WebSocket connection that said hello as User. It
// reads on its own goroutine and keeps every reply by request id and every
// other message (msg, event, error without id, ...) in order, as a
// notification.
type Client struct {
	T    testing.TB
	User string

	ws     *websocket.Conn
	next   atomic.Uint64
	closed atomic.Bool // set when the test closes the connection
	divert func(wire.Message) bool
	done   chan struct{}

	mu      sync.Mutex
	replies map[uint64]wire.Message
	notes   []wire.Message
	readErr error
}

// Dial connects to s with the protocol's subprotocol and says hello as
// user, whose token is the user id. The connection closes when the test
// ends. divert, when not nil, is given each notification first, on the
// reading goroutine and in order; returning true keeps the notification
// out of Notes.
func (s *Server) Dial(t testing.TB, user string, divert func(wire.Message) bool) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.WS, &websocket.DialOptions{
		Subprotocols: []string{wire.Subprotocol},
		HTTPClient:   s.HTTP,
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	c := &Client{T: t, User: user, ws: ws, divert: divert, done: make(chan struct{}), replies: map[uint64]wire.Message{}}
	go c.read()
	t.Cleanup(c.Close)
	c.OK(map[string]any{"type": "hello", "token": user})
	return c
}

func (c *Client) read() {
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
			if m.ID == 0 && c.divert != nil && c.divert(m) {
				return nil
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if m.ID != 0 {
				c.replies[m.ID] = m
			} else {
				c.notes = append(c.notes, m)
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

// Close closes the connection and waits until reading has ended. The
// test's cleanup calls it too; calling it again does no harm.
func (c *Client) Close() {
	c.closed.Store(true)
	c.ws.Close(websocket.StatusNormalClosure, "")
	<-c.done
}

// Done is closed when the client has stopped reading; divert is not
// called after it.
func (c *Client) Done() <-chan struct{} { return c.done }

// Write sends req as it is. It may run on any goroutine: a failure is
// reported with Errorf, and not at all once the test has closed the
// connection.
func (c *Client) Write(req map[string]any) {
	b, err := json.Marshal(req)
	if err != nil {
		c.T.Errorf("%s: encode request: %v", c.User, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil && !c.closed.Load() {
		c.T.Errorf("%s: write: %v", c.User, err)
	}
}

// Send sends req with a new request id and returns the id.
func (c *Client) Send(req map[string]any) uint64 {
	id := c.next.Add(1)
	req["id"] = id
	c.Write(req)
	return id
}

// Reply waits for the reply to request id, failing the test if the
// connection ends first.
func (c *Client) Reply(id uint64) wire.Message {
	c.T.Helper()
	var m wire.Message
	testenv.Eventually(c.T, fmt.Sprintf("%s: reply %d", c.User, id), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.readErr != nil {
			c.T.Fatalf("%s: connection ended while waiting for reply %d: %v", c.User, id, c.readErr)
		}
		var ok bool
		m, ok = c.replies[id]
		return ok
	})
	return m
}

// Do sends a request and waits for its reply.
func (c *Client) Do(req map[string]any) wire.Message {
	c.T.Helper()
	return c.Reply(c.Send(req))
}

// OK sends a request and fails the test unless the reply is ok.
func (c *Client) OK(req map[string]any) wire.Message {
	c.T.Helper()
	m := c.Do(req)
	if m.Type != wire.TypeOK {
		c.T.Fatalf("%s: %v: got %s %s (%s), want ok", c.User, req, m.Type, m.Code, m.Message)
	}
	return m
}

// WantError sends a request and fails the test unless the reply is an
// error with code.
func (c *Client) WantError(code string, req map[string]any) {
	c.T.Helper()
	m := c.Do(req)
	if m.Type != wire.TypeError || m.Code != code {
		c.T.Fatalf("%s: %v: got %s %q (%s), want error %q", c.User, req, m.Type, m.Code, m.Message, code)
	}
}

// Notes returns the notifications received so far that match.
func (c *Client) Notes(match func(wire.Message) bool) []wire.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []wire.Message
	for _, m := range c.notes {
		if match(m) {
			out = append(out, m)
		}
	}
	return out
}
