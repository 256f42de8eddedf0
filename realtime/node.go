package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime/internal/wsframe"
	"github.com/partyline/partyline/realtime/wire"
)

// Node is one gateway node: it accepts WebSocket connections, serves the
// protocol on them, and moves publications between its connections and the
// broker.
type Node struct {
	opts     Options
	hub      *Hub
	metrics  *metrics
	ns       map[string]namespace      // the namespace table: the core's and registered ones
	handlers map[string]RequestHandler // extension request types

	running  atomic.Bool
	draining atomic.Bool

	mu      sync.Mutex
	conns   map[*Conn]struct{}
	byUser  map[string][]*Conn
	nodeOps map[string]NodeHandler     // extension node messages by op
	offline map[string]*pendingOffline // local offline timers per user (status.go)
	noConns chan struct{}              // closed when conns turns empty during drain
	stopped bool                       // Run has ended: no new readers
	// offlineStopped is set when Run ends: no more local offline timers.
	offlineStopped bool

	started   chan struct{} // closed when Run starts
	startOnce sync.Once

	flushers    []flusher     // one per P; see flush.go
	nextFlusher atomic.Uint32 // assigns connections to flushers in turn

	calls         clusterCalls
	background    sync.WaitGroup // goroutines started on the delivery path, and the presence loop
	readers       sync.WaitGroup // connection readers
	offlineFiring sync.WaitGroup // local offline timers whose callback runs
}

// New builds a Node. It starts nothing: register the extensions, then
// call Run.
func New(opts Options) (*Node, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("realtime: metrics: %w", err)
	}
	n := &Node{
		opts:     opts,
		metrics:  m,
		hub:      newHub(opts.Broker, opts.Stream, m),
		ns:       map[string]namespace{},
		handlers: map[string]RequestHandler{},
		conns:    map[*Conn]struct{}{},
		byUser:   map[string][]*Conn{},
		offline:  map[string]*pendingOffline{},
		started:  make(chan struct{}),
		flushers: make([]flusher, runtime.GOMAXPROCS(0)),
	}
	for i := range n.flushers {
		n.flushers[i].w = wsframe.NewNBWrite()
	}
	for _, ns := range coreNamespaces {
		n.ns[ns] = namespace{}
	}
	return n, nil
}

// Started is closed once Run has started; connections are accepted from
// then on (before, the handler answers 503).
func (n *Node) Started() <-chan struct{} { return n.started }

// ID returns the node id.
func (n *Node) ID() string { return n.opts.NodeID }

// Run runs the broker's receive loop until ctx is done. Connections are
// served only while Run runs: when it ends, connections still open are cut
// and Run waits for their readers. It returns nil after ctx is done, or the
// broker's error.
func (n *Node) Run(ctx context.Context) error {
	n.running.Store(true)
	defer n.running.Store(false)
	n.startOnce.Do(func() { close(n.started) })
	n.background.Go(func() { n.presenceLoop(ctx) })
	err := n.opts.Broker.Run(ctx, n)
	// Connections still open (no Drain, or one that ran out of time) end
	// with the node.
	n.mu.Lock()
	n.stopped = true
	for c := range n.conns {
		c.ws.CloseNow()
	}
	n.mu.Unlock()
	n.readers.Wait()
	n.hub.fills.Wait()
	n.background.Wait()
	n.stopOffline()
	return err
}

// Deliver implements Deliverer: it hands broker deliveries to the Hub.
func (n *Node) Deliver(ch string, p Publication) { n.hub.Deliver(ch, p) }

// Resync re-reads the streams of channels whose deliveries may have been
// lost; a broker calls it after restarting a stuck or dropped subscription.
func (n *Node) Resync(channels []string) { n.hub.Resync(channels) }

// Publish appends a publication to ch's stream and fans it out. kind, from
// and data become the msg's fields, id its message id (empty means a new
// one), and ts is now. It is how extensions and the server API publish; it
// checks nothing, so callers authorize first.
func (n *Node) Publish(ctx context.Context, ch, id, kind, from string, data json.RawMessage) (Position, error) {
	return n.PublishAt(ctx, ch, id, kind, from, time.Now(), data)
}

// PublishAt is Publish with the msg's ts given, so a stored message and its
// publication carry the same time. data must be compact JSON (no raw
// newlines, which would split the frame) or empty.
func (n *Node) PublishAt(ctx context.Context, ch, id, kind, from string, ts time.Time, data json.RawMessage) (Position, error) {
	if id == "" {
		id = newMsgID()
	}
	payload := wire.AppendPayload(make([]byte, 0, 96+len(data)), id, kind, from, ts.UnixMilli(), data)
	start := time.Now()
	pos, err := n.opts.Stream.Publish(ctx, ch, payload)
	n.metrics.brokerPublish.Observe(time.Since(start).Seconds())
	if err != nil {
		n.metrics.brokerErrors.Inc()
		return Position{}, fmt.Errorf("realtime: publish to %s: %w: %w", ch, partyline.ErrUnavailable, err)
	}
	return pos, nil
}

// PublishEvent fans an ephemeral event out on ch (typing, join, leave,
// speaking). It is at most once and not in the stream.
func (n *Node) PublishEvent(ctx context.Context, ch, event, from, user string, users []string) error {
	msg := wire.AppendEvent(nil, ch, event, from, user, users)
	if err := n.opts.Broker.PublishEvent(ctx, ch, Publication{Payload: msg}); err != nil {
		n.metrics.brokerErrors.Inc()
		return fmt.Errorf("realtime: event on %s: %w: %w", ch, partyline.ErrUnavailable, err)
	}
	return nil
}

// register adds an authenticated connection. It fails with
// ErrLimitExceeded when the user is at the per-user cap.
func (n *Node) register(c *Conn) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.draining.Load() {
		return partyline.Errorf(partyline.ErrUnavailable, "node is draining")
	}
	set := n.byUser[c.user]
	if len(set) >= n.opts.MaxConnsPerUser {
		return partyline.Errorf(partyline.ErrLimitExceeded, "user has %d connections on this node", len(set))
	}
	n.byUser[c.user] = append(set, c)
	n.cancelOfflineLocked(c.user)
	return nil
}

// track counts an upgraded connection. One that arrives while the node
// drains (its upgrade raced the start of Drain) is drained at once.
// It returns false when the node has stopped: Run no longer waits for
// readers, so the connection must not start one.
func (n *Node) track(c *Conn) bool {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return false
	}
	n.conns[c] = struct{}{}
	n.readers.Add(1) // under mu, so it never races Run's Wait
	draining := n.draining.Load()
	n.mu.Unlock()
	n.metrics.connections.Inc()
	if draining {
		n.drainConn(c)
	}
	return true
}

// drainConn tells c to reconnect after a delay spread over the drain
// window and closes it with 1012; with no drain window it closes with 1001.
func (n *Node) drainConn(c *Conn) {
	if n.opts.DrainWindow < 0 {
		c.closeAfterFlush(wire.CloseGoingAway, "shutdown")
		return
	}
	c.drain(rand.Int64N(n.opts.DrainWindow.Milliseconds() + 1))
}

// untrack forgets a closed connection.
func (n *Node) untrack(c *Conn) {
	n.mu.Lock()
	delete(n.conns, c)
	if set := n.byUser[c.user]; set != nil {
		if i := slices.Index(set, c); i >= 0 {
			set = slices.Delete(set, i, i+1)
		}
		if len(set) == 0 {
			delete(n.byUser, c.user)
		} else {
			n.byUser[c.user] = set
		}
	}
	if len(n.conns) == 0 && n.noConns != nil {
		close(n.noConns)
		n.noConns = nil
	}
	n.mu.Unlock()
	n.metrics.connections.Dec()
}

// userConns returns the user's connections on this node.
func (n *Node) userConns(user string) []*Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.byUser[user])
}

// DisconnectUser closes every connection of user on this node with code and
// reason, and returns how many it closed.
func (n *Node) DisconnectUser(user string, code int, reason string) int {
	conns := n.userConns(user)
	for _, c := range conns {
		c.closeAfterFlush(code, reason)
	}
	return len(conns)
}

// Draining reports whether Drain has started.
func (n *Node) Draining() bool { return n.draining.Load() }

// Drain tells every connection to reconnect elsewhere and closes it: each
// gets a reconnect notice whose after_ms is spread uniformly over the drain
// window, then a 1012 close (with no drain window, a 1001 close alone).
// New connections are refused from the start.
// Drain returns when the last connection is gone, or with ctx's error when
// ctx ends first (then the remaining connections are cut with 1001).
func (n *Node) Drain(ctx context.Context) error {
	n.mu.Lock()
	n.draining.Store(true) // under mu, so track sees it or Drain sees the conn
	conns := make([]*Conn, 0, len(n.conns))
	for c := range n.conns {
		conns = append(conns, c)
	}
	var wait chan struct{}
	if len(n.conns) > 0 {
		wait = make(chan struct{})
		n.noConns = wait
	}
	n.mu.Unlock()
	for _, c := range conns {
		n.drainConn(c)
	}
	if wait == nil {
		return nil
	}
	select {
	case <-wait:
		return nil
	case <-ctx.Done():
		for _, c := range conns {
			c.closeAfterFlush(wire.CloseGoingAway, "shutdown")
		}
		return fmt.Errorf("realtime: drain: %d connections left: %w", n.connCount(), ctx.Err())
	}
}

func (n *Node) connCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.conns)
}

// newMsgID returns a new time-sortable message id.
func newMsgID() string { return ulid.Make().String() }
