package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/partyline/partyline/loadtest/executor"
	"github.com/partyline/partyline/loadtest/metrics"
)

func init() {
	RegisterScenario("connect-idle", "open connections, subscribe each to its user: channel and hold them", newConnectIdle)
}

// connectIdle holds lean connections (rawConn): no SDK, one reader
// goroutine and no buffer while idle, so the harness stays far cheaper
// per connection than the server.
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
	dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	pub    *Publisher
	errs   *metrics.Handle // broadcast_errors

	runCtx  context.Context // the run's, from Setup
	conns   atomic.Int64    // detached connections opened
	readers sync.WaitGroup  // of detached connections
	mu      sync.Mutex
	held    map[*rawConn]struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newConnectIdle(env *Env, raw json.RawMessage) (Scenario, error) {
	s := &connectIdle{env: env, m: newWSMetrics(env), errs: env.Metrics.Counter("broadcast_errors").With(env.Tags),
		runCtx: context.Background(), held: map[*rawConn]struct{}{}}
	s.opts.Timeout = executor.Duration(15 * time.Second)
	if err := decodeOptions(raw, &s.opts); err != nil {
		return nil, err
	}
	s.dialer = env.HTTP.Transport.(*http.Transport).DialContext
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
		for rc := range s.held {
			rc.closeNow()
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
	// From the intended start: under an arrival-rate executor a connect
	// that starts late shows its wait in ws_connecting.
	began := vu.Scheduled
	if began.IsZero() {
		began = time.Now()
	}
	channels := []string{"user:" + user}
	if s.opts.Broadcast != "" {
		channels = append(channels, s.opts.Broadcast)
	}
	dctx, cancel := context.WithTimeout(ctx, time.Duration(s.opts.Timeout))
	rc, err := dialRaw(dctx, s.dialer, s.env.WSURL(), token, channels)
	cancel()
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
		s.detach(rc, opened, hold)
		return nil
	}
	readErr := make(chan error, 1)
	go func() { readErr <- s.read(rc) }()
	select {
	case <-vu.Ending:
	case <-ctx.Done():
	case err = <-readErr:
		// The server ended the connection.
		s.m.closed(closeCode(err))
		s.m.duration.Observe(time.Since(opened))
		return fmt.Errorf("%s: connection lost: %w", user, err)
	}
	rc.close()
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
func (s *connectIdle) detach(rc *rawConn, opened time.Time, hold time.Duration) {
	s.mu.Lock()
	s.held[rc] = struct{}{}
	s.mu.Unlock()
	s.readers.Add(1)
	timer := time.AfterFunc(hold, rc.close)
	go func() {
		defer s.readers.Done()
		err := s.read(rc)
		code := closeCode(err)
		if !timer.Stop() && code == 1006 {
			code = 1000 // we closed it
		}
		s.m.closed(code)
		s.m.duration.Observe(time.Since(opened))
		s.mu.Lock()
		delete(s.held, rc)
		s.mu.Unlock()
	}()
}

// read counts what the server sends until the connection ends, and
// records the latency of broadcast publications. An idle connection holds
// no buffer: a message's bytes are allocated when it arrives.
func (s *connectIdle) read(rc *rawConn) error {
	for {
		frame, err := rc.next(nil)
		if err != nil {
			return err
		}
		now := time.Now().UnixNano()
		n := 0
		for rest := frame; len(rest) > 0; {
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
		s.m.received.Add(float64(n))
	}
}

func (s *connectIdle) Retire(*executor.VU) {}
