package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/partyline/partyline/realtime/wire"
)

// Message types the client puts on the Messages channel itself. They never
// come from the server, and their Raw is nil.
const (
	// TypeDisconnected reports a lost connection that the client is about to
	// replace. Reason holds the cause, and Code the close code in decimal
	// when the connection ended with a close frame. Pending requests have failed with
	// ErrDisconnected by the time it is delivered.
	TypeDisconnected = "client.disconnected"
	// TypeReconnected reports a new connection: hello succeeded and every
	// subscription was requested again with since set to its last position.
	TypeReconnected = "client.reconnected"
	// TypeRecoveryFailed reports that a resubscription came back with
	// recovered:false: publications after the last seen position are lost
	// for this client. Channel names the channel, and Epoch and Offset are
	// where live delivery now starts. Reload through History.
	TypeRecoveryFailed = "client.recovery_failed"
	// TypeResubscribeFailed reports that the server refused a
	// resubscription (Code and Message hold its error reply). The client no
	// longer tracks Channel.
	TypeResubscribeFailed = "client.resubscribe_failed"
)

// NeedsReload reports whether m tells the application that publications on
// m.Channel may be missing, so it should reload them through History: a
// gap notification or a failed recovery.
func NeedsReload(m wire.Message) bool {
	return m.Type == wire.TypeGap || m.Type == TypeRecoveryFailed
}

// Limits are the server's configured limits, from the hello reply.
type Limits struct {
	MaxFrameBytes    int     `json:"max_frame_bytes"`
	MaxSubscriptions int     `json:"max_subscriptions"`
	PublishPerSec    float64 `json:"publish_per_sec"`
}

// hello is the result of a hello request.
type hello struct {
	Session     string `json:"session"`
	User        string `json:"user"`
	Node        string `json:"node"`
	HeartbeatMS int64  `json:"heartbeat_ms"`
	Limits      Limits `json:"limits"`
}

// Client is one authenticated connection to the gateway that outlives the
// WebSocket under it: it reconnects, says hello again and resubscribes each
// channel from the last position it saw. All methods are safe for concurrent
// use.
//
// Reconnection follows the close code of the lost connection. After 4000
// (protocol violation) the client gives up. After 4003 (unauthorized, such as
// an expired token) it makes exactly one more attempt, which fetches a fresh
// token from Options.Token; if that attempt fails for any reason, it gives
// up. During reconnect attempts, a hello refused with unauthorized,
// bad_request or forbidden, or a close with 4000 or 4003, also ends the
// client. Everything else, 1012, 1013, 4008 and 4009 included, is retried
// with full-jitter backoff until Close. A reconnect notice replaces the
// backoff with the server's after_ms.
type Client struct {
	opts Options
	url  string
	log  *slog.Logger

	// ctx ends when Close is called or the client gives up; it bounds every
	// wait of the run goroutine.
	ctx    context.Context
	cancel context.CancelFunc
	msgs   chan wire.Message
	done   chan struct{}
	ids    atomic.Uint64
	// writeSem serializes writes. It is a channel rather than a mutex so
	// that a writer waiting for its turn still honours its ctx.
	writeSem chan struct{}

	mu      sync.Mutex
	conn    *websocket.Conn // nil while reconnecting
	up      chan struct{}   // closed while conn is set
	hello   hello
	pending map[uint64]*call
	subs    map[string]wire.Position // confirmed subscriptions: last position seen
	closing bool                     // Close was called
	err     error                    // set once the run goroutine has ended
}

// call is a request waiting for its reply.
type call struct {
	typ string
	// done receives the outcome; nil for the client's own resubscriptions.
	done chan result
	// hook, when set, runs on the run goroutine before done is sent, so
	// that state it updates is in place before the messages that follow
	// the reply are handled.
	hook func(m wire.Message, err error)
}

type result struct {
	m   wire.Message
	err error
}

// Dial connects to the gateway, offers the partyline.v1 subprotocol, sends
// hello and waits for its reply. ctx bounds only this first connection
// (together with Options.RequestTimeout); the client lives until Close or
// until it gives up reconnecting.
//
// A hello refused by the server returns an error wrapping *Error (see
// ErrorCode); a connection the server closed returns one wrapping
// *CloseError (see CloseCode). Dial does not retry: a failure here is usually
// configuration, not the network.
//
// On success Dial starts the client's one goroutine, which Close stops.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	u, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		opts:     opts,
		url:      u,
		log:      opts.Logger,
		msgs:     make(chan wire.Message, opts.MessageBuffer),
		done:     make(chan struct{}),
		writeSem: make(chan struct{}, 1),
		up:       make(chan struct{}),
		pending:  make(map[uint64]*call),
		subs:     make(map[string]wire.Position),
	}
	conn, h, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.conn = conn
	c.hello = h
	close(c.up)
	go c.run(conn)
	return c, nil
}

// Messages returns the channel on which the client delivers, in the order
// received, every notification from the server (msg, event, gap,
// reconnect, voice.*, and types this version does not know) and the
// client's own Type* messages. Replies to requests never appear on it.
//
// The application must keep receiving: when the buffer is full the client
// stops reading the socket until there is room, which holds back replies to
// requests too, and a server that sees its queue to this client pass its
// bound closes the connection with 4009 (after which the client reconnects
// and recovers). The channel is closed after the client has stopped, once
// Done is closed.
func (c *Client) Messages() <-chan wire.Message { return c.msgs }

// Done is closed when the client has stopped, after Close or when it gave up
// reconnecting.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns nil while the client runs. Once Done is closed it returns
// ErrClosed after Close, or the reason the client gave up.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Session returns the session id of the current (or last) connection.
func (c *Client) Session() string { return c.lastHello().Session }

// User returns the user id the server authenticated.
func (c *Client) User() string { return c.lastHello().User }

// Node returns the gateway node of the current (or last) connection.
func (c *Client) Node() string { return c.lastHello().Node }

// Limits returns the server's limits from the last hello.
func (c *Client) Limits() Limits { return c.lastHello().Limits }

// lastHello returns the reply to the current (or last) connection's hello.
func (c *Client) lastHello() hello {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hello
}

// Positions returns the last position seen on every channel the client is
// subscribed to: the one it would resubscribe from.
func (c *Client) Positions() map[string]wire.Position {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]wire.Position, len(c.subs))
	for ch, p := range c.subs {
		out[ch] = p
	}
	return out
}

// Close closes the connection with 1000 and stops the client's goroutine.
// It waits up to 5 seconds for the server to answer the close frame. Pending
// and later requests fail with ErrClosed, and the Messages channel is closed
// after whatever is buffered in it. Close is idempotent and always returns
// nil.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closing || c.err != nil {
		c.mu.Unlock()
		<-c.done
		return nil
	}
	c.closing = true
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		_ = conn.Close(websocket.StatusNormalClosure, "")
	}
	c.cancel()
	<-c.done
	return nil
}

// run is the client's goroutine: it reads the connection and, when the
// connection is lost, replaces it.
func (c *Client) run(conn *websocket.Conn) {
	var err error
	defer func() { c.finish(err) }()
	attempt := 0
	for {
		began := time.Now()
		drainAt, cause := c.readLoop(conn)
		_ = conn.CloseNow()
		c.detach(cause)
		if c.isClosing() {
			err = ErrClosed
			return
		}
		if c.opts.DisableReconnect || CloseCode(cause) == wire.CloseProtocol {
			err = fmt.Errorf("client: connection lost: %w", cause)
			return
		}
		authRetry := CloseCode(cause) == wire.CloseUnauthorized
		if time.Since(began) >= c.opts.BackoffCap {
			attempt = 0
		}
		lost := wire.Message{Type: TypeDisconnected, Reason: cause.Error()}
		if code := CloseCode(cause); code > 0 {
			lost.Code = strconv.Itoa(code)
		}
		if !c.deliver(lost) {
			err = ErrClosed
			return
		}
		var wait time.Duration
		if !drainAt.IsZero() {
			wait = time.Until(drainAt)
		} else {
			wait = backoff(attempt, c.opts.BackoffBase, c.opts.BackoffCap, nil)
			attempt++
		}
		var h hello
		for {
			c.log.Info("client: reconnecting", "wait", wait, "cause", cause)
			if !c.sleep(wait) {
				err = ErrClosed
				return
			}
			var cerr error
			conn, h, cerr = c.connect(c.ctx)
			if cerr == nil {
				break
			}
			if c.isClosing() {
				err = ErrClosed
				return
			}
			if authRetry || terminal(cerr) {
				err = fmt.Errorf("client: reconnect: %w", cerr)
				return
			}
			cause = cerr
			wait = backoff(attempt, c.opts.BackoffBase, c.opts.BackoffCap, nil)
			attempt++
		}
		if !c.attach(conn, h) {
			_ = conn.CloseNow()
			err = ErrClosed
			return
		}
		if !c.deliver(wire.Message{Type: TypeReconnected}) {
			err = ErrClosed
			return
		}
	}
}

// terminal reports whether a failed connection attempt must not be retried
// as is.
func terminal(err error) bool {
	switch ErrorCode(err) {
	case wire.CodeUnauthorized, wire.CodeBadRequest, wire.CodeForbidden:
		return true
	}
	switch CloseCode(err) {
	case wire.CloseProtocol, wire.CloseUnauthorized:
		return true
	}
	return false
}

// sleep waits d, or returns false when the client is closing.
func (c *Client) sleep(d time.Duration) bool {
	if d <= 0 {
		return c.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

func (c *Client) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// finish ends the client: it records why, closes Messages and Done.
func (c *Client) finish(err error) {
	c.mu.Lock()
	if c.closing {
		err = ErrClosed
	}
	c.err = err
	c.conn = nil
	c.mu.Unlock()
	if !errors.Is(err, ErrClosed) {
		c.log.Warn("client: stopped", "err", err)
	}
	c.cancel()
	close(c.msgs)
	close(c.done)
}

// connect dials, says hello and waits for the reply. It returns a
// connection nobody else uses yet.
func (c *Client) connect(ctx context.Context) (*websocket.Conn, hello, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RequestTimeout)
	defer cancel()
	token, err := c.opts.Token(ctx)
	if err != nil {
		return nil, hello{}, fmt.Errorf("client: token: %w", err)
	}
	conn, _, err := websocket.Dial(ctx, c.url, &websocket.DialOptions{
		HTTPClient:   c.opts.HTTPClient,
		HTTPHeader:   c.opts.HTTPHeader,
		Subprotocols: []string{wire.Subprotocol},
	})
	if err != nil {
		return nil, hello{}, fmt.Errorf("client: dial: %w", err)
	}
	conn.SetReadLimit(c.opts.ReadLimit)
	id := c.ids.Add(1)
	b, err := encode(id, wire.Request{Type: wire.TypeHello, Token: token, Client: c.opts.ClientName})
	if err == nil {
		err = conn.Write(ctx, websocket.MessageText, b)
	}
	if err != nil {
		_ = conn.CloseNow()
		return nil, hello{}, fmt.Errorf("client: hello: %w", err)
	}
	for {
		_, frame, err := conn.Read(ctx)
		if err != nil {
			_ = conn.CloseNow()
			return nil, hello{}, fmt.Errorf("client: hello: %w", closeError(err))
		}
		var reply *wire.Message
		// Nothing but the reply is due before hello succeeds; anything
		// else is dropped.
		_ = wire.Split(frame, func(b []byte) error {
			m, err := wire.DecodeMessage(b)
			if err == nil && m.ID == id && (m.Type == wire.TypeOK || m.Type == wire.TypeError) {
				reply = &m
				return errStop
			}
			return nil
		})
		if reply == nil {
			continue
		}
		if reply.Type == wire.TypeError {
			_ = conn.CloseNow()
			return nil, hello{}, fmt.Errorf("client: hello: %w", &Error{Code: reply.Code, Message: reply.Message})
		}
		var h hello
		if err := json.Unmarshal(reply.Raw, &h); err != nil {
			_ = conn.CloseNow()
			return nil, hello{}, fmt.Errorf("client: hello: bad reply: %w", err)
		}
		return conn, h, nil
	}
}

// errStop ends a wire.Split early.
var errStop = errors.New("stop")

// attach makes conn the current connection and resubscribes every channel
// from its last position. The subscription requests are packed into as few
// frames as the frame limit allows. It returns false when Close came first.
func (c *Client) attach(conn *websocket.Conn, h hello) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	c.conn = conn
	c.hello = h
	close(c.up)
	channels := make([]string, 0, len(c.subs))
	for ch := range c.subs {
		channels = append(channels, ch)
	}
	sort.Strings(channels)
	limit := frameLimit(h.Limits)
	var frames [][]byte
	var frame []byte
	for _, ch := range channels {
		since := c.subs[ch]
		id := c.ids.Add(1)
		b, err := encode(id, wire.Request{Type: wire.TypeSub, Channel: ch, Since: &since})
		if err != nil {
			continue // a string and a position always encode
		}
		c.pending[id] = &call{typ: wire.TypeSub, hook: c.resubscribed(ch, since)}
		if len(frame) > 0 && len(frame)+1+len(b) > limit {
			frames = append(frames, frame)
			frame = nil
		}
		if len(frame) > 0 {
			frame = append(frame, '\n')
		}
		frame = append(frame, b...)
	}
	if len(frame) > 0 {
		frames = append(frames, frame)
	}
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(c.ctx, c.opts.RequestTimeout)
	defer cancel()
	for _, f := range frames {
		// A failed write has closed the connection; the read loop sees
		// that and the pending resubscriptions carry over to the next one.
		if err := c.write(ctx, conn, f); err != nil {
			break
		}
	}
	return true
}

// detach forgets the lost connection and fails its pending requests.
func (c *Client) detach(cause error) {
	c.mu.Lock()
	c.conn = nil
	c.up = make(chan struct{})
	pending := c.pending
	c.pending = make(map[uint64]*call)
	if c.closing {
		cause = ErrClosed
	}
	c.mu.Unlock()
	for _, cl := range pending {
		c.complete(cl, wire.Message{}, disconnected(cl.typ, cause))
	}
}

// readLoop reads conn until it fails and handles every message. It returns
// when the connection is gone, with the time a reconnect notice asked to
// wait until (zero without one).
func (c *Client) readLoop(conn *websocket.Conn) (time.Time, error) {
	var (
		drainAt   time.Time
		drain     *time.Timer
		drainDone chan struct{}
		notice    *wire.Message
	)
	defer func() {
		if drain != nil && !drain.Stop() {
			<-drainDone
		}
	}()
	handle := func(b []byte) error {
		m, err := wire.DecodeMessage(b)
		if err != nil {
			c.log.Warn("client: undecodable message dropped", "bytes", len(b), "err", err)
			return nil
		}
		switch m.Type {
		case wire.TypeOK, wire.TypeError:
			if m.ID != 0 {
				c.resolve(m)
				return nil
			}
		case wire.TypeReconnect:
			notice = &m
		}
		if !c.deliver(m) {
			return ErrClosed
		}
		if m.Type == wire.TypeMsg {
			// Only a delivered publication moves the position, so a
			// resubscription never skips one the application did not get.
			c.advance(m)
		}
		return nil
	}
	for {
		typ, frame, err := conn.Read(c.ctx)
		if err != nil {
			return drainAt, closeError(err)
		}
		if typ != websocket.MessageText {
			continue
		}
		if err := wire.Split(frame, handle); err != nil {
			return drainAt, err
		}
		if notice != nil && drain == nil && !c.opts.DisableReconnect {
			// The server closes with 1012 after the notice. Should it
			// not, the client closes at the deadline itself, and it
			// reconnects no earlier than that either way.
			wait := time.Duration(max(notice.AfterMS, 0)) * time.Millisecond
			drainAt = time.Now().Add(wait)
			drainDone = make(chan struct{})
			drain = time.AfterFunc(wait, func() {
				defer close(drainDone)
				_ = conn.Close(websocket.StatusNormalClosure, "reconnect")
			})
		}
		notice = nil
	}
}

// deliver puts m on the Messages channel, waiting for room. It returns false
// when the client is closing.
func (c *Client) deliver(m wire.Message) bool {
	select {
	case c.msgs <- m:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// resolve hands a reply to the request waiting for it.
func (c *Client) resolve(m wire.Message) {
	c.mu.Lock()
	cl, ok := c.pending[m.ID]
	delete(c.pending, m.ID)
	c.mu.Unlock()
	if !ok {
		c.log.Debug("client: reply to no pending request", "id", m.ID, "type", m.Type)
		return
	}
	var err error
	if m.Type == wire.TypeError {
		err = fmt.Errorf("client: %s: %w", cl.typ, &Error{Code: m.Code, Message: m.Message})
	}
	c.complete(cl, m, err)
}

func (c *Client) complete(cl *call, m wire.Message, err error) {
	if cl.hook != nil {
		cl.hook(m, err)
	}
	if cl.done != nil {
		cl.done <- result{m: m, err: err}
	}
}

// advance records a publication's position on its channel.
func (c *Client) advance(m wire.Message) {
	c.mu.Lock()
	if _, ok := c.subs[m.Channel]; ok {
		c.subs[m.Channel] = wire.Position{Epoch: m.Epoch, Offset: m.Offset}
	}
	c.mu.Unlock()
}

func frameLimit(l Limits) int {
	if l.MaxFrameBytes > 0 {
		return l.MaxFrameBytes
	}
	return wire.DefaultFrameBytes
}
