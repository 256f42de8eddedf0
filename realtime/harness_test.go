package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/wire"
)

// testAuth accepts a token that is the user id. "expired:<user>" is
// rejected as expired, and "ttl<ms>:<user>" expires after that many
// milliseconds.
type testAuth struct{}

func (testAuth) Authenticate(ctx context.Context, token string) (string, time.Time, error) {
	switch {
	case token == "", strings.HasPrefix(token, "expired:"):
		return "", time.Time{}, fmt.Errorf("auth: token expired: %w", partyline.ErrUnauthorized)
	case strings.HasPrefix(token, "ttl"):
		var ms int
		var user string
		if _, err := fmt.Sscanf(strings.Replace(token, ":", " ", 1), "ttl%d %s", &ms, &user); err != nil {
			return "", time.Time{}, partyline.ErrUnauthorized
		}
		return user, time.Now().Add(time.Duration(ms) * time.Millisecond), nil
	case !wire.ValidID(token):
		return "", time.Time{}, fmt.Errorf("auth: bad subject: %w", partyline.ErrUnauthorized)
	}
	return token, time.Now().Add(time.Hour), nil
}

// testNode is a running Node behind an httptest server.
type testNode struct {
	*Node
	srv *httptest.Server
	url string // ws://.../v1/ws
}

const testAPIKey = "test-api-key"

func startNode(t testing.TB, opts Options, exts ...Extension) *testNode {
	t.Helper()
	if opts.Auth == nil {
		opts.Auth = testAuth{}
	}
	if opts.APIKey == "" {
		opts.APIKey = testAPIKey
	}
	if opts.NodeID == "" {
		opts.NodeID = "gw-test"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// A test may turn the fast path off itself; the environment may turn it
	// off for every test.
	opts.DisableWSFastPath = opts.DisableWSFastPath || !testenv.FastPaths()
	n, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, ext := range exts {
		if err := n.Register(ext); err != nil {
			t.Fatal(err)
		}
	}
	stopRun := testenv.Go(t, "node.Run", n.Run)
	testenv.Eventually(t, "node running", func() bool { return n.running.Load() })
	r := chi.NewRouter()
	r.Handle("/v1/ws", n)
	r.Mount("/v1/server", n.ServerAPI())
	srv := httptest.NewServer(r)
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.Drain(dctx)
		dcancel()
		srv.Close()
		stopRun()
	})
	return &testNode{Node: n, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/ws"}
}

// wsClient is a raw protocol client for tests: it reads every frame on
// its own goroutine, splits it, and files replies by id and the rest in
// order.
type wsClient struct {
	t      testing.TB
	ws     *websocket.Conn
	nextID uint64

	mu      sync.Mutex
	replies map[uint64]wire.Message
	notes   []wire.Message
	closed  error
	cond    chan struct{} // closed and replaced on every change

	paused chan struct{} // while non-nil, the reader waits before reading
	parked bool          // the reader is waiting on paused
	stop   chan struct{} // closed by cleanup: a parked reader returns
	done   chan struct{}
}

func dialRaw(t testing.TB, url string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: hdr, Subprotocols: []string{wire.Subprotocol}})
}

// dial connects without saying hello.
func dial(t testing.TB, url string) *wsClient {
	t.Helper()
	ws, _, err := dialRaw(t, url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(1 << 24)
	c := &wsClient{t: t, ws: ws, replies: map[uint64]wire.Message{}, cond: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go c.readLoop()
	t.Cleanup(func() {
		close(c.stop)
		c.ws.CloseNow()
		<-c.done
	})
	return c
}

// connect dials and says hello as user.
func connect(t testing.TB, url, user string) *wsClient {
	t.Helper()
	c := dial(t, url)
	if m := c.request(map[string]any{"type": "hello", "token": user, "client": "test/1"}); m.Type != wire.TypeOK {
		t.Fatalf("hello as %s: %s", user, m.Raw)
	}
	return c
}

func (c *wsClient) readLoop() {
	defer close(c.done)
	for {
		c.mu.Lock()
		p := c.paused
		c.mu.Unlock()
		if p != nil {
			c.mu.Lock()
			c.parked = true
			c.signal()
			c.mu.Unlock()
			select {
			case <-p:
			case <-c.stop:
				return
			}
			c.mu.Lock()
			c.parked = false
			c.mu.Unlock()
		}
		_, data, err := c.ws.Read(context.Background())
		c.mu.Lock()
		if err != nil {
			c.closed = err
			c.signal()
			c.mu.Unlock()
			return
		}
		_ = wire.Split(data, func(msg []byte) error {
			m, err := wire.DecodeMessage(append([]byte(nil), msg...))
			if err != nil {
				c.t.Errorf("server sent bad JSON: %s", msg)
				return nil
			}
			if (m.Type == wire.TypeOK || m.Type == wire.TypeError) && m.ID != 0 {
				c.replies[m.ID] = m
			} else {
				c.notes = append(c.notes, m)
			}
			return nil
		})
		c.signal()
		c.mu.Unlock()
	}
}

func (c *wsClient) signal() {
	close(c.cond)
	c.cond = make(chan struct{})
}

// pause stops reading until resume, so the server's writes back up and
// its pings go unanswered. The reader may be blocked in a read already, so
// pause sends a ping request whose reply ends that read, then waits until
// the reader is parked.
func (c *wsClient) pause() {
	c.t.Helper()
	c.mu.Lock()
	c.paused = make(chan struct{})
	c.mu.Unlock()
	c.send(map[string]any{"type": "ping"})
	c.waitUntil("the reader to stop", 5*time.Second, func() bool { return c.parked || c.closed != nil })
}

func (c *wsClient) resume() {
	c.mu.Lock()
	close(c.paused)
	c.paused = nil
	c.mu.Unlock()
}

// waitUntil waits until cond, evaluated under the lock, holds.
func (c *wsClient) waitUntil(what string, d time.Duration, cond func() bool) {
	c.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		ok := cond()
		ch := c.cond
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			c.t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

func (c *wsClient) sendRaw(b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send writes a request, giving it the next id unless it has one or is a
// notification, and returns the id.
func (c *wsClient) send(req map[string]any) uint64 {
	c.t.Helper()
	var id uint64
	if v, ok := req["id"]; ok {
		switch v := v.(type) {
		case int:
			id = uint64(v)
		case uint64:
			id = v
		}
	} else if typ, _ := req["type"].(string); !wire.IsNotification(typ) {
		c.mu.Lock()
		c.nextID++
		id = c.nextID + 1000
		c.mu.Unlock()
		req["id"] = id
	}
	b, err := json.Marshal(req)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
	return id
}

// request sends req and waits for its reply.
func (c *wsClient) request(req map[string]any) wire.Message {
	c.t.Helper()
	id := c.send(req)
	return c.reply(id)
}

func (c *wsClient) reply(id uint64) wire.Message {
	c.t.Helper()
	var m wire.Message
	c.waitUntil(fmt.Sprintf("reply %d", id), 10*time.Second, func() bool {
		var ok bool
		m, ok = c.replies[id]
		return ok || c.closed != nil
	})
	if m.Type == "" {
		c.t.Fatalf("connection closed before reply %d: %v", id, c.closeErr())
	}
	return m
}

// ok sends req and fails unless the reply is ok.
func (c *wsClient) ok(req map[string]any) wire.Message {
	c.t.Helper()
	m := c.request(req)
	if m.Type != wire.TypeOK {
		c.t.Fatalf("%v: got %s, want ok", req, m.Raw)
	}
	return m
}

// errCode sends req and fails unless the reply is an error with code.
func (c *wsClient) errCode(req map[string]any, code string) wire.Message {
	c.t.Helper()
	m := c.request(req)
	if m.Type != wire.TypeError || m.Code != code {
		c.t.Fatalf("%v: got %s, want error %s", req, m.Raw, code)
	}
	return m
}

func (c *wsClient) closeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// waitClose waits for the server to close the connection and returns the
// close code.
func (c *wsClient) waitClose(d time.Duration) int {
	c.t.Helper()
	c.waitUntil("close", d, func() bool { return c.closed != nil })
	return int(websocket.CloseStatus(c.closeErr()))
}

// notifications returns a copy of the notifications received so far.
func (c *wsClient) notifications() []wire.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]wire.Message(nil), c.notes...)
}

// waitNote waits for a notification matching match and returns it.
func (c *wsClient) waitNote(what string, match func(wire.Message) bool) wire.Message {
	c.t.Helper()
	var got wire.Message
	c.waitUntil(what, 10*time.Second, func() bool {
		for _, m := range c.notes {
			if match(m) {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// msgs returns the msg notifications on ch received so far.
func (c *wsClient) msgs(ch string) []wire.Message {
	var out []wire.Message
	for _, m := range c.notifications() {
		if m.Type == wire.TypeMsg && m.Channel == ch {
			out = append(out, m)
		}
	}
	return out
}

// apiCall calls the server API with the test key.
func (n *testNode) apiCall(t testing.TB, method, path, body string) (int, map[string]any) {
	t.Helper()
	return n.apiCallKey(t, method, path, body, testAPIKey)
}

func (n *testNode) apiCallKey(t testing.TB, method, path, body, key string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, n.srv.URL+"/v1/server"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("%s %s: undecodable body: %v", method, path, err)
	}
	return resp.StatusCode, out
}

// publish publishes data on ch through the node, as the server API does.
func (n *testNode) publish(t testing.TB, ch string, data string) Position {
	t.Helper()
	pos, err := n.Publish(context.Background(), ch, "", "notice", "", json.RawMessage(data))
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func newRequest(method, path, body string) *http.Request {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer x")
	return r
}
