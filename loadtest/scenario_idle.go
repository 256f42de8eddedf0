package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/partyline/partyline/loadtest/executor"
	"github.com/partyline/partyline/loadtest/metrics"
)

func init() {
	RegisterScenario("connect-idle", "open connections, subscribe each to its user: channel and hold them", newConnectIdle)
}

// connectIdle holds one lean connection per VU: no SDK, one reader
// goroutine that borrows a buffer only while a frame is in hand, so the
// harness stays far cheaper per connection than the server.
type connectIdle struct {
	env  *Env
	m    *wsMetrics
	opts struct {
		// Hold is how long each connection is held. Zero means until the
		// end of the scenario, with one connection per VU. Otherwise an
		// iteration only opens its connection, which then lives on its
		// own, so that an arrival-rate executor sets the connect rate;
		// the run ends when the last connection has been held.
		Hold executor.Duration `json:"hold"`
		// Timeout bounds the dial, hello and sub.
		Timeout executor.Duration `json:"timeout"`
		// Broadcast is a channel every connection also subscribes to, such
		// as "broadcast:lt". With BroadcastEvery, the first agent publishes
		// to it through the server API (--api-key) that often, and every
		// connection records the delivery latency in ws_fanout_latency.
		Broadcast      string            `json:"broadcast"`
		BroadcastEvery executor.Duration `json:"broadcast_every"`
	}
	dial DialOptions
	pub  *Publisher
	errs *metrics.Handle // broadcast_errors

	runCtx  context.Context // the run's, from Setup
	conns   atomic.Int64    // detached connections opened
	readers sync.WaitGroup  // of detached connections
	mu      sync.Mutex
	held    map[*websocket.Conn]struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newConnectIdle(env *Env, raw json.RawMessage) (Scenario, error) {
	s := &connectIdle{env: env, m: newWSMetrics(env), errs: env.Metrics.Counter("broadcast_errors").With(env.Tags),
		runCtx: context.Background(), held: map[*websocket.Conn]struct{}{}}
	s.opts.Timeout = executor.Duration(15 * time.Second)
	if err := decodeOptions(raw, &s.opts); err != nil {
		return nil, err
	}
	s.dial = DialOptions{URL: env.WSURL(), Timeout: time.Duration(s.opts.Timeout), HTTPClient: &http.Client{Transport: env.HTTP.Transport}}
	if s.opts.BroadcastEvery > 0 {
		if s.opts.Broadcast == "" || env.APIKey == "" {
			return nil, configErrorf("connect-idle: broadcast_every needs broadcast and --api-key")
		}
		if env.Segment == 0 {
			pub, err := NewPublisher(env.Target.String(), env.APIKey, 1, 64)
			if err != nil {
				return nil, &ConfigError{err}
			}
			s.pub = pub
		}
	}
	return s, nil
}

// Setup starts the broadcast publisher, which runs until Close.
func (s *connectIdle) Setup(ctx context.Context) error {
	s.runCtx = ctx
	if s.pub == nil {
		return nil
	}
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(time.Duration(s.opts.BroadcastEvery))
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := s.pub.Publish(pctx, s.opts.Broadcast, time.Now().UnixNano()); err != nil {
				s.errs.Add(1)
			}
			cancel()
		}
	}()
	return nil
}

// Close waits until the detached connections have been held for their
// time, or cuts them when the run is interrupted, then stops the
// publisher.
func (s *connectIdle) Close() error {
	waited := make(chan struct{})
	go func() { s.readers.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-s.runCtx.Done():
		s.mu.Lock()
		for ws := range s.held {
			ws.CloseNow()
		}
		s.mu.Unlock()
		<-waited
	}
	if s.pub != nil && s.stop != nil {
		close(s.stop)
		<-s.done
		s.pub.Close()
	}
	return nil
}

func (s *connectIdle) Iterate(ctx context.Context, vu *executor.VU) error {
	hold := time.Duration(s.opts.Hold)
	user := s.env.User(vu.ID)
	if hold > 0 {
		// Connections outlive iterations: each gets a user of its own, so
		// a VU's many connections never hit the per-user limit.
		user = s.env.User(s.conns.Add(1))
	}
	token, err := s.env.Tokens.Token(ctx, user)
	if err != nil {
		return err
	}
	began := time.Now()
	channels := []string{"user:" + user}
	if s.opts.Broadcast != "" {
		channels = append(channels, s.opts.Broadcast)
	}
	sub, err := dialOne(ctx, &s.dial, token, channels...)
	if err != nil {
		if ctx.Err() == nil {
			s.m.connectErr.Add(1)
		}
		return fmt.Errorf("connect %s: %w", user, err)
	}
	opened := time.Now()
	s.m.connecting.Observe(opened.Sub(began))
	s.m.sessions.Add(1)
	s.m.sent.Add(float64(1 + len(channels))) // hello and subs
	s.m.received.Add(float64(1 + len(channels)))
	if hold > 0 {
		s.detach(sub.ws, opened, hold)
		return nil
	}
	readErr := make(chan error, 1)
	go func() { readErr <- s.read(sub.ws) }()
	select {
	case <-vu.Ending:
	case <-ctx.Done():
	case err = <-readErr:
		// The server ended the connection.
		s.m.closed(int(websocket.CloseStatus(err)))
		s.m.duration.Observe(time.Since(opened))
		return fmt.Errorf("%s: connection lost: %w", user, err)
	}
	_ = sub.ws.Close(websocket.StatusNormalClosure, "")
	<-readErr
	s.m.closed(1000)
	s.m.duration.Observe(time.Since(opened))
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// detach hands a connection to its reader goroutine, which holds it for
// hold and then closes it; the VU goes on to its next iteration. Close
// waits for every detached connection.
func (s *connectIdle) detach(ws *websocket.Conn, opened time.Time, hold time.Duration) {
	s.mu.Lock()
	s.held[ws] = struct{}{}
	s.mu.Unlock()
	s.readers.Add(1)
	timer := time.AfterFunc(hold, func() { _ = ws.Close(websocket.StatusNormalClosure, "") })
	go func() {
		defer s.readers.Done()
		err := s.read(ws)
		code := websocket.CloseStatus(err)
		if !timer.Stop() && code == -1 {
			code = websocket.StatusNormalClosure // we closed it
		}
		s.m.closed(int(code))
		s.m.duration.Observe(time.Since(opened))
		s.mu.Lock()
		delete(s.held, ws)
		s.mu.Unlock()
	}()
}

// read counts what the server sends until the connection ends, and
// records the latency of broadcast publications.
func (s *connectIdle) read(ws *websocket.Conn) error {
	ctx := context.Background() // never done: no per-read cancellation is armed
	for {
		_, r, err := ws.Reader(ctx)
		if err != nil {
			return err
		}
		now := time.Now().UnixNano()
		bp := frameBufs.Get().(*[]byte)
		buf, err := readAll((*bp)[:0], r)
		n := 0
		for rest := buf; len(rest) > 0; {
			var msg []byte
			msg, rest = nextMessage(rest)
			if len(msg) == 0 {
				continue
			}
			n++
			if sc := scanMessage(msg); sc.kind == kindMsg && sc.hasSent {
				s.m.fanout.Observe(time.Duration(now - sc.sent))
			}
		}
		*bp = buf[:0]
		frameBufs.Put(bp)
		if err != nil {
			return err
		}
		s.m.received.Add(float64(n))
	}
}

func (s *connectIdle) Retire(*executor.VU) {}
