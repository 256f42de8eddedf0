package realtime

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/partyline/partyline/realtime/internal/wsframe"
	"github.com/partyline/partyline/realtime/wire"
)

// Conn is one client WebSocket connection.
//
// Its reader goroutine runs every request in order. Its send queue is
// written by the node's flusher for it (flush.go), which packs everything
// queued into as few frames as the frame limit allows, joined with '\n',
// and never blocks; when the socket cannot take a frame, a writer goroutine
// of the connection's own (writeLoop) exists until the queue is empty.
// With the fast path off, that writer goroutine writes every frame through
// the library (writeLoopLibrary).
//
// mu guards the queue and the close state. The subscription map is touched
// only by the reader, except through Session methods, which take subsMu.
type Conn struct {
	node    *Node
	ws      *websocket.Conn
	wc      *wsframe.Conn // the connection under ws, where data frames go; nil when the fast path is off
	flusher *flusher      // writes the queue, or hands it to writeLoop when a write would block
	id      string
	user    string // set by hello; read by others only after authed
	authed  atomic.Bool
	session *Session

	ctx    context.Context // cancelled when the reader ends
	cancel context.CancelFunc

	mu          sync.Mutex
	queue       []queued
	spare       []queued
	queuedBytes int
	writing     bool
	closing     bool // no more enqueues; a close is on its way
	closeCode   int  // when set, close with it once the queue is flushed
	closeReason string
	closed      atomic.Bool  // the close handshake has started
	writeStart  atomic.Int64 // when the write under way began, in Unix ns; 0 when none

	subsMu sync.Mutex
	subs   map[string]*subscription

	frameWG sync.WaitGroup // the frame being served; reader goroutine only

	helloTimer  *time.Timer
	expiryTimer *time.Timer
	beatTimer   *time.Timer
	limiter     *rate.Limiter // publish rate; created on first use
	// closeAfterReply, when set by a handler, closes the connection with
	// that code once the request's reply is queued; reader goroutine only.
	closeAfterReply int
	abuse           *rate.Limiter // budget of rate_limited replies before 4008

	onClose []func()
}

type queued struct {
	b  []byte
	at time.Time
}

// writeBufPool holds frame buffers between write bursts, so idle
// connections own none.
var writeBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// enqueue queues b for the writer. It never blocks: past the queue's bound
// the connection is closed as a slow consumer and b is dropped.
func (c *Conn) enqueue(b []byte, at time.Time) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		c.node.metrics.queueDrops.Inc()
		return
	}
	if len(c.queue) >= c.node.opts.SendQueueMessages || c.queuedBytes+len(b) > c.node.opts.SendQueueBytes {
		dropped := len(c.queue) + 1
		c.queue, c.spare, c.queuedBytes = nil, nil, 0
		c.closing, c.closeCode = true, 0
		c.mu.Unlock()
		c.node.metrics.queueDrops.Add(float64(dropped))
		c.node.metrics.slowConsumers.Inc()
		c.closeNow(wire.CloseSlowConsumer, "slow consumer")
		return
	}
	c.queue = append(c.queue, queued{b: b, at: at})
	c.queuedBytes += len(b)
	start := !c.writing
	c.writing = true
	c.mu.Unlock()
	if start {
		c.startWriter()
	}
}

// closeAfterFlush stops taking new messages and closes the connection with
// code once what is queued has been written.
func (c *Conn) closeAfterFlush(code int, reason string) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	if c.writing {
		c.closeCode, c.closeReason = code, reason
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.closeNow(code, reason)
}

// closeNow starts the close handshake with code without waiting for the
// queue. It returns at once; the reader ends when the handshake completes.
func (c *Conn) closeNow(code int, reason string) {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	if !c.closed.CompareAndSwap(false, true) {
		return
	}
	c.node.metrics.closed(code)
	go func() {
		if err := c.ws.Close(websocket.StatusCode(code), reason); err != nil && !errors.Is(err, context.Canceled) {
			c.ws.CloseNow()
		}
	}()
}

// drain sends the reconnect notice and closes with 1012 after it is written.
func (c *Conn) drain(afterMS int64) {
	c.enqueue(wire.AppendReconnect(nil, afterMS, "shutdown"), time.Now())
	c.closeAfterFlush(wire.CloseServiceRestart, "shutdown")
}

// send queues a reply or notification for this connection alone.
func (c *Conn) send(b []byte) { c.enqueue(b, time.Now()) }

// logger returns the node's logger with the connection's session and user.
// It is built on demand: logging is rare, and a logger per connection
// would cost every idle connection its memory.
func (c *Conn) logger() *slog.Logger {
	if c.authed.Load() {
		return c.node.opts.Logger.With("session", c.id, "user", c.user)
	}
	return c.node.opts.Logger.With("session", c.id)
}

// Session is an authenticated connection as extensions see it.
type Session struct {
	c *Conn
}

// ID returns the session id, which is also the connection id.
func (s *Session) ID() string { return s.c.id }

// User returns the authenticated user id.
func (s *Session) User() string { return s.c.user }

// Send queues a complete encoded message (a notification such as
// voice.offer) for this session. It never blocks.
func (s *Session) Send(msg []byte) { s.c.send(msg) }

// Subscribed reports whether the session is subscribed to ch.
func (s *Session) Subscribed(ch string) bool {
	s.c.subsMu.Lock()
	defer s.c.subsMu.Unlock()
	_, ok := s.c.subs[ch]
	return ok
}

// OnClose registers f to run once when the connection ends. It must be
// called from a request handler.
func (s *Session) OnClose(f func()) { s.c.onClose = append(s.c.onClose, f) }

// Close closes the session's connection with code after flushing its queue.
func (s *Session) Close(code int, reason string) { s.c.closeAfterFlush(code, reason) }
