package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/partyline/partyline/realtime/wire"
)

// waitFor bounds every wait in these tests. Nothing should come near it.
const waitFor = 5 * time.Second

// peer is a scripted server side of protocol v1 on httptest: each accepted
// connection runs script in the handler's goroutine, and the connection
// closes when script returns.
type peer struct {
	t      *testing.T
	srv    *httptest.Server
	script func(pc *peerConn)
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	n      int
	live   map[*peerConn]bool
	wg     sync.WaitGroup
}

// peerConn is one accepted connection.
type peerConn struct {
	t        *testing.T
	n        int // 1 for the first connection of the peer
	c        *websocket.Conn
	r        *http.Request
	ctx      context.Context
	accepted time.Time

	queue  [][]byte // messages read but not consumed yet
	frames int      // frames read so far
}

func newPeer(t *testing.T, script func(pc *peerConn)) *peer {
	t.Helper()
	p := &peer{t: t, script: script, live: make(map[*peerConn]bool)}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.srv = httptest.NewServer(http.HandlerFunc(p.serveHTTP))
	t.Cleanup(p.close)
	return p
}

func (p *peer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/ws" {
		http.NotFound(w, r)
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	p.wg.Add(1)
	p.n++
	n := p.n
	p.mu.Unlock()
	defer p.wg.Done()

	accepted := time.Now()
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wire.Subprotocol}})
	if err != nil {
		p.t.Errorf("accept: %v", err)
		return
	}
	pc := &peerConn{t: p.t, n: n, c: c, r: r, ctx: p.ctx, accepted: accepted}
	p.mu.Lock()
	p.live[pc] = true
	p.mu.Unlock()
	defer func() {
		_ = c.CloseNow()
		p.mu.Lock()
		delete(p.live, pc)
		p.mu.Unlock()
	}()
	p.script(pc)
}

// conns returns how many connections the peer has accepted.
func (p *peer) conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func (p *peer) close() {
	p.mu.Lock()
	p.closed = true
	for pc := range p.live {
		_ = pc.c.CloseNow()
	}
	p.mu.Unlock()
	p.cancel()
	p.srv.Close()
	p.wg.Wait()
}

// next returns the next client message, reading a frame when none is
// queued.
func (pc *peerConn) next() (wire.Request, []byte, error) {
	for len(pc.queue) == 0 {
		typ, frame, err := pc.c.Read(pc.ctx)
		if err != nil {
			return wire.Request{}, nil, err
		}
		if typ != websocket.MessageText {
			pc.t.Errorf("conn %d: got a binary frame", pc.n)
			continue
		}
		pc.frames++
		_ = wire.Split(frame, func(b []byte) error {
			pc.queue = append(pc.queue, b)
			return nil
		})
	}
	raw := pc.queue[0]
	pc.queue = pc.queue[1:]
	r, err := wire.DecodeRequest(raw)
	if err != nil {
		pc.t.Errorf("conn %d: client sent %s: %v", pc.n, raw, err)
	}
	return r, raw, nil
}

// expect returns the next client message and checks its type. ok is false
// when the connection is gone or the type is wrong.
func (pc *peerConn) expect(typ string) (r wire.Request, raw []byte, ok bool) {
	r, raw, err := pc.next()
	if err != nil {
		return r, raw, false
	}
	if r.Type != typ {
		pc.t.Errorf("conn %d: got %s, want a %s", pc.n, raw, typ)
		return r, raw, false
	}
	return r, raw, true
}

// send writes msgs as one frame, joined with '\n'.
func (pc *peerConn) send(msgs ...string) {
	if err := pc.c.Write(pc.ctx, websocket.MessageText, []byte(strings.Join(msgs, "\n"))); err != nil && pc.ctx.Err() == nil {
		pc.t.Logf("conn %d: write: %v", pc.n, err)
	}
}

// okMsg encodes an ok reply with result's fields.
func okMsg(id uint64, result any) string {
	b, err := wire.AppendOK(nil, id, result)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func errMsg(id uint64, code, message string) string {
	return string(wire.AppendError(nil, id, code, message))
}

func pubMsg(channel, epoch string, offset uint64, id string) string {
	payload := wire.AppendPayload(nil, id, wire.KindMessage, "u_1", 1732760000123, json.RawMessage(`{"text":"gg"}`))
	return string(wire.AppendMsg(nil, channel, wire.Position{Epoch: epoch, Offset: offset}, payload))
}

func gapMsg(channel, epoch string, offset uint64) string {
	return string(wire.AppendGap(nil, channel, wire.Position{Epoch: epoch, Offset: offset}))
}

// helloResult is the server's standard hello result.
var helloResult = map[string]any{
	"session":      "s_1",
	"user":         "u_42",
	"node":         "gw-1",
	"heartbeat_ms": 25000,
	"limits":       map[string]any{"max_frame_bytes": 65536, "max_subscriptions": 500, "publish_per_sec": 10},
}

// hello answers the client's hello with helloResult.
func (pc *peerConn) hello() (wire.Request, bool) {
	r, _, ok := pc.expect(wire.TypeHello)
	if !ok {
		return r, false
	}
	pc.send(okMsg(r.ID, helloResult))
	return r, true
}

// helloThen answers the client's hello and reads its next request, which
// must be of type typ.
func (pc *peerConn) helloThen(typ string) (wire.Request, bool) {
	if _, ok := pc.hello(); !ok {
		return wire.Request{}, false
	}
	r, _, ok := pc.expect(typ)
	return r, ok
}

// serve answers requests until the connection ends: ping with a clock, sub
// at offset 0 of epoch "e0", everything else with a bare ok.
func (pc *peerConn) serve() {
	for {
		r, _, err := pc.next()
		if err != nil {
			return
		}
		switch {
		case r.ID == 0:
		case r.Type == wire.TypePing:
			pc.send(okMsg(r.ID, map[string]any{"ts": 1732760000999}))
		case r.Type == wire.TypeSub:
			pc.send(okMsg(r.ID, map[string]any{"epoch": "e0", "offset": 0}))
		default:
			pc.send(okMsg(r.ID, nil))
		}
	}
}

// closeWith closes the connection with code and waits for the client's
// answer.
func (pc *peerConn) closeWith(code int, reason string) {
	_ = pc.c.Close(websocket.StatusCode(code), reason)
}

// drop ends the connection without a close frame.
func (pc *peerConn) drop() { _ = pc.c.CloseNow() }

// dial connects a client to p with fast backoff; mod adjusts the options.
func dial(t *testing.T, p *peer, mod func(*Options)) *Client {
	t.Helper()
	opts := Options{
		URL:            p.srv.URL,
		Token:          func(context.Context) (string, error) { return "tok", nil },
		ClientName:     "test/1",
		BackoffBase:    2 * time.Millisecond,
		BackoffCap:     20 * time.Millisecond,
		RequestTimeout: waitFor,
		HTTPClient:     p.srv.Client(),
	}
	if mod != nil {
		mod(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := Dial(ctx, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// recv returns the next message on c.Messages.
func recv(t *testing.T, c *Client) wire.Message {
	t.Helper()
	select {
	case m, ok := <-c.Messages():
		if !ok {
			t.Fatalf("Messages closed; Err = %v", c.Err())
		}
		return m
	case <-time.After(waitFor):
		t.Fatal("no message in time")
	}
	return wire.Message{}
}

// waitDone waits for the client to stop by itself.
func waitDone(t *testing.T, c *Client) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(waitFor):
		t.Fatal("client did not stop")
	}
}

// take receives from ch within the deadline.
func take[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatal("timed out waiting for the peer")
	}
	var zero T
	return zero
}

// jsonMap decodes a JSON object for comparisons of the exact wire shape.
func jsonMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

var errTest = errors.New("test error")
