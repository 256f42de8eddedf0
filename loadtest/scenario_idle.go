package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/partyline/partyline/loadtest/executor"
	"github.com/partyline/partyline/realtime/wire"
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
		// Hold is how long each connection is held; zero means until the
		// end of the scenario.
		Hold executor.Duration `json:"hold"`
		// Timeout bounds the dial, hello and sub.
		Timeout executor.Duration `json:"timeout"`
	}
	dial DialOptions
}

func newConnectIdle(env *Env, raw json.RawMessage) (Scenario, error) {
	s := &connectIdle{env: env, m: newWSMetrics(env)}
	s.opts.Timeout = executor.Duration(15 * time.Second)
	if err := decodeOptions(raw, &s.opts); err != nil {
		return nil, err
	}
	s.dial = DialOptions{URL: env.WSURL(), Timeout: time.Duration(s.opts.Timeout), HTTPClient: &http.Client{Transport: env.HTTP.Transport}}
	return s, nil
}

func (s *connectIdle) Iterate(ctx context.Context, vu *executor.VU) error {
	user := s.env.User(vu.ID)
	token, err := s.env.Tokens.Token(ctx, user)
	if err != nil {
		return err
	}
	began := time.Now()
	sub, err := dialOne(ctx, &s.dial, token, "user:"+user)
	if err != nil {
		s.m.connectErr.Add(1)
		return fmt.Errorf("connect %s: %w", user, err)
	}
	opened := time.Now()
	s.m.connecting.Observe(opened.Sub(began))
	s.m.sessions.Add(1)
	s.m.sent.Add(2) // hello and sub
	s.m.received.Add(2)
	readErr := make(chan error, 1)
	go func() { readErr <- s.read(sub.ws) }()
	hold := time.Duration(s.opts.Hold)
	if hold <= 0 {
		hold = 365 * 24 * time.Hour
	}
	t := time.NewTimer(hold)
	defer t.Stop()
	select {
	case <-t.C:
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

// read counts what the server sends until the connection ends.
func (s *connectIdle) read(ws *websocket.Conn) error {
	ctx := context.Background() // never done: no per-read cancellation is armed
	for {
		_, r, err := ws.Reader(ctx)
		if err != nil {
			return err
		}
		bp := frameBufs.Get().(*[]byte)
		buf, err := readAll((*bp)[:0], r)
		n := 0
		_ = wire.Split(buf, func([]byte) error { n++; return nil })
		*bp = buf[:0]
		frameBufs.Put(bp)
		if err != nil {
			return err
		}
		s.m.received.Add(float64(n))
	}
}

func (s *connectIdle) Retire(*executor.VU) {}
