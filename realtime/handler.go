package realtime

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/oklog/ulid/v2"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/httpx"
	"github.com/partyline/partyline/realtime/internal/wsframe"
	"github.com/partyline/partyline/realtime/wire"
)

// requestTimeout bounds the work one request may do.
const requestTimeout = 10 * time.Second

// ServeHTTP serves /v1/ws: it checks the Origin and the handshake,
// upgrades, and starts the connection's reader, which runs until the
// connection ends.
func (n *Node) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !n.running.Load() || n.draining.Load() {
		w.Header().Set("Retry-After", "1")
		httpx.WriteProblem(w, r, http.StatusServiceUnavailable, "this node is not accepting connections; retry")
		return
	}
	if !n.originAllowed(r) {
		httpx.WriteProblem(w, r, http.StatusForbidden, "origin not allowed")
		return
	}
	if !checkHandshake(w, r) {
		return
	}
	// On the fast path the upgrade goes through wsframe, which takes the
	// hijacked connection over for data frames; otherwise the library
	// keeps it whole.
	var fw *wsframe.ResponseWriter
	uw := w
	if !n.opts.DisableWSFastPath {
		fw = &wsframe.ResponseWriter{ResponseWriter: w}
		uw = fw
	}
	ws, err := websocket.Accept(uw, r, &websocket.AcceptOptions{
		Subprotocols:       []string{wire.Subprotocol},
		InsecureSkipVerify: true, // the Origin was checked above
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		// Accept has answered in plain text; after checkHandshake only a
		// connection that cannot be hijacked fails here.
		return
	}
	ws.SetReadLimit(int64(n.opts.MaxFrameBytes))
	c := &Conn{
		node: n,
		ws:   ws,
		id:   "s_" + ulid.Make().String(),
	}
	if fw != nil {
		c.wc = fw.Conn
	}
	c.flusher = &n.flushers[int(n.nextFlusher.Add(1))%len(n.flushers)]
	c.session = &Session{c: c}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if !n.track(c) {
		ws.Close(websocket.StatusCode(wire.CloseGoingAway), "shutdown")
		return
	}
	// The reader runs on a goroutine of its own and the handler returns, so
	// nothing of the upgrade request (headers, router state, the deep
	// handler stack) stays alive for the connection's lifetime: an idle
	// connection keeps one small goroutine.
	go func() {
		defer n.readers.Done()
		c.serve()
	}()
}

// originAllowed applies the Origin rule: no Origin (native clients) is
// allowed, the same host is allowed, and otherwise the host must match one
// of the configured patterns.
func (n *Node) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, p := range n.opts.AllowedOrigins {
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(u.Host)); ok {
			return true
		}
	}
	return false
}

// checkHandshake answers a request that is not a WebSocket handshake
// websocket.Accept would take, with a problem+json error where Accept
// would answer in plain text, and reports whether the request may go on
// to Accept. A plain GET (a browser, a health checker) gets 426 with the
// Upgrade header that status requires.
func checkHandshake(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	switch {
	case r.Method != http.MethodGet:
		h.Set("Allow", http.MethodGet)
		httpx.WriteProblem(w, r, http.StatusMethodNotAllowed, "the WebSocket handshake is a GET, not "+r.Method)
	case !r.ProtoAtLeast(1, 1), !hasToken(r.Header, "Connection", "upgrade"), !hasToken(r.Header, "Upgrade", "websocket"):
		h.Set("Connection", "Upgrade")
		h.Set("Upgrade", "websocket")
		httpx.WriteProblem(w, r, http.StatusUpgradeRequired, "this is a WebSocket endpoint: send an Upgrade: websocket handshake")
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		h.Set("Connection", "Upgrade")
		h.Set("Upgrade", "websocket")
		h.Set("Sec-WebSocket-Version", "13")
		httpx.WriteProblem(w, r, http.StatusUpgradeRequired,
			fmt.Sprintf("WebSocket version %q is not supported; use 13", r.Header.Get("Sec-WebSocket-Version")))
	case !validKey(r.Header.Values("Sec-WebSocket-Key")):
		httpx.WriteProblem(w, r, http.StatusBadRequest, "the handshake needs one Sec-WebSocket-Key: 16 bytes in base64")
	default:
		return true
	}
	return false
}

// hasToken reports whether a comma-separated header holds token, ignoring case.
func hasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// validKey applies RFC 6455's rule for Sec-WebSocket-Key: one value, the
// base64 of 16 bytes.
func validKey(keys []string) bool {
	if len(keys) != 1 {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0]))
	return err == nil && len(b) == 16
}

// errStop ends the read loop after a protocol violation.
var errStop = errors.New("stop reading")

// serve is the reader: it runs until the connection ends, then cleans up.
func (c *Conn) serve() {
	defer c.cleanup()
	c.helloTimer = time.AfterFunc(c.node.opts.HelloTimeout, func() {
		if !c.authed.Load() {
			c.closeNow(wire.CloseHelloTimeout, "no hello")
		}
	})
	for {
		// No deadline on the read: a context that can be done would make
		// every blocked read hold a callback. Closing the connection ends it.
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			if websocket.CloseStatus(err) == websocket.StatusMessageTooBig {
				c.node.metrics.closed(wire.CloseTooBig)
			}
			return
		}
		if typ != websocket.MessageText {
			c.closeNow(wire.CloseProtocol, "binary frames are not part of the protocol")
			continue
		}
		c.handleFrame(data)
	}
}

// handleFrame serves the messages of one frame, in order, on a goroutine
// of its own that the reader waits for. Requests can run deep (JSON, the
// store, extensions); doing them elsewhere keeps the reader's stack, which
// an idle connection holds for its whole life, as small as a blocked read
// needs. A protocol violation stops the frame; the close is on its way and
// the reader keeps reading until it completes.
func (c *Conn) handleFrame(data []byte) {
	c.frameWG.Add(1)
	go func() {
		defer c.frameWG.Done()
		_ = wire.Split(data, c.handleMessage)
	}()
	c.frameWG.Wait()
}

// handleMessage serves one message of a frame.
func (c *Conn) handleMessage(msg []byte) error {
	if c.isClosing() {
		return errStop
	}
	c.node.metrics.messagesIn.Inc()
	req, err := wire.DecodeRequest(msg)
	if err != nil {
		var bad *wire.BadRequestError
		if errors.As(err, &bad) {
			c.replyError(bad.ID, partyline.Errorf(partyline.ErrInvalid, "%s", bad.Reason))
			return nil
		}
		c.closeAfterFlush(wire.CloseProtocol, truncate(err.Error(), 120))
		return errStop
	}
	if !c.authed.Load() {
		switch {
		case req.Type == wire.TypeHello:
			c.hello(&req)
		case req.ID != 0:
			c.replyError(req.ID, partyline.Errorf(partyline.ErrUnauthorized, "say hello first"))
		}
		return nil
	}
	h := c.node.builtin(req.Type)
	if h == nil {
		h = c.node.handlers[req.Type]
	}
	if h == nil {
		c.closeAfterFlush(wire.CloseProtocol, truncate("unknown request type "+req.Type, 120))
		return errStop
	}
	ctx, cancel := context.WithTimeout(c.ctx, requestTimeout)
	defer cancel()
	result, panicked, err := c.call(ctx, h, &req)
	if panicked {
		if req.ID != 0 && !wire.IsNotification(req.Type) {
			c.replyError(req.ID, err)
		}
		c.closeAfterFlush(wire.CloseInternal, "internal error")
		return errStop
	}
	if !wire.IsNotification(req.Type) && req.ID != 0 {
		switch {
		case err != nil:
			c.replyError(req.ID, err)
		case result == replied:
		default:
			c.replyOK(req.ID, result)
		}
	}
	if code := c.closeAfterReply; code != 0 {
		c.closeAfterFlush(code, "rate limit abused")
		return errStop
	}
	return nil
}

// call runs a request handler, turning a panic into an internal error that
// is logged with the request, so one bad request cannot take the process
// down; the connection is then closed with 1011.
func (c *Conn) call(ctx context.Context, h RequestHandler, req *wire.Request) (result any, panicked bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			c.logger().Error("panic in request handler", "type", req.Type, "request_id", req.ID,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			result, panicked, err = nil, true, fmt.Errorf("panic in %s handler", req.Type)
		}
	}()
	result, err = h(ctx, c.session, req)
	return result, false, err
}

// replied is returned by handlers that queued their own reply (sub does,
// so its reply precedes the replayed publications).
var replied = &struct{}{}

func (c *Conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

func (c *Conn) replyOK(id uint64, result any) {
	b, err := wire.AppendOK(nil, id, result)
	if err != nil {
		c.replyError(id, err)
		return
	}
	c.send(b)
}

func (c *Conn) replyError(id uint64, err error) {
	code, msg := ErrorCode(err), ErrorMessage(err)
	if code == wire.CodeInternal {
		c.logger().Error("request failed", "request_id", id, "err", err)
	}
	if code == wire.CodeUnavailable {
		c.logger().Warn("request failed: dependency unavailable", "request_id", id, "err", err)
	}
	c.node.metrics.requestErrors.WithLabelValues(code).Inc()
	c.send(wire.AppendError(nil, id, code, truncate(msg, 200)))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// cleanup runs when the reader ends: it leaves every channel, forgets the
// connection, and schedules the user's offline status when it was their
// last connection.
func (c *Conn) cleanup() {
	c.cancel()
	c.mu.Lock()
	for _, t := range []*time.Timer{c.helloTimer, c.expiryTimer, c.beatTimer} {
		if t != nil {
			t.Stop()
		}
	}
	c.closing = true
	c.queue, c.spare = nil, nil
	c.mu.Unlock()
	c.ws.CloseNow()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.subsMu.Lock()
	subs := c.subs
	c.subs = nil
	c.subsMu.Unlock()
	for _, s := range subs {
		c.end(ctx, s)
	}
	for _, f := range c.onClose {
		f()
	}
	if c.authed.Load() {
		c.node.userGone(ctx, c)
	}
	c.node.untrack(c)
}
