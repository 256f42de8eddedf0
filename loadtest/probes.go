package loadtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/partyline/partyline/loadtest/metrics"
	"github.com/partyline/partyline/realtime/client"
	"github.com/partyline/partyline/realtime/wire"
)

// wsMetrics are the WebSocket metrics of one scenario, with k6's names
// where k6 has them.
type wsMetrics struct {
	connecting *metrics.Handle // ws_connecting: dial to hello reply
	sessions   *metrics.Handle // ws_sessions: sessions opened
	sent       *metrics.Handle // ws_msgs_sent
	received   *metrics.Handle // ws_msgs_received
	duration   *metrics.Handle // ws_session_duration
	reconnects *metrics.Handle // ws_reconnects
	fanout     *metrics.Handle // ws_fanout_latency: publish to each recipient
	rtt        *metrics.Handle // ws_msg_rtt: request to reply
	closeCodes *metrics.Metric // ws_close_codes{code}
	connectErr *metrics.Handle // ws_connect_errors
	tags       metrics.Tags
}

func newWSMetrics(env *Env) *wsMetrics {
	r, t := env.Metrics, env.Tags
	return &wsMetrics{
		connecting: r.Trend("ws_connecting", true).With(t),
		sessions:   r.Counter("ws_sessions").With(t),
		sent:       r.Counter("ws_msgs_sent").With(t),
		received:   r.Counter("ws_msgs_received").With(t),
		duration:   r.Trend("ws_session_duration", true).With(t),
		reconnects: r.Counter("ws_reconnects").With(t),
		fanout:     r.Trend("ws_fanout_latency", true).With(t),
		rtt:        r.Trend("ws_msg_rtt", true).With(t),
		closeCodes: r.Counter("ws_close_codes"),
		connectErr: r.Counter("ws_connect_errors").With(t),
		tags:       t,
	}
}

func (m *wsMetrics) closed(code int) {
	tags := metrics.Tags{"scenario": m.tags["scenario"], "code": strconv.Itoa(code)}
	m.closeCodes.With(tags).Add(1)
}

// check records a k6 check: the rate metric checks, tagged with the
// check's name.
func check(env *Env, name string, ok bool) bool {
	env.Metrics.Rate("checks").With(metrics.Tags{"scenario": env.Scenario, "check": name}).AddBool(ok)
	return ok
}

// session is one SDK client with its metrics. Its pump goroutine reads
// every message, counts it, notes reconnects and disconnect codes, and
// hands it to onMsg.
type session struct {
	c      *client.Client
	m      *wsMetrics
	opened time.Time
	done   chan struct{}

	mu   sync.Mutex
	conn net.Conn // the current TCP connection, for drop
}

// dialSession connects user with the SDK. onMsg runs on the pump goroutine
// for every message, SDK notices included; it must not block for long.
func dialSession(ctx context.Context, env *Env, m *wsMetrics, user string, reconnect bool, onMsg func(wire.Message)) (*session, error) {
	s := &session{m: m, done: make(chan struct{})}
	// A transport of the session's own, so drop can cut its TCP
	// connection; the handshake is the only request it makes.
	base := env.HTTP.Transport.(*http.Transport)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := base.DialContext(ctx, network, addr)
			if err == nil {
				s.mu.Lock()
				s.conn = c
				s.mu.Unlock()
			}
			return c, err
		},
		DisableCompression: true,
		DisableKeepAlives:  true,
	}
	began := time.Now()
	c, err := client.Dial(ctx, client.Options{
		URL:              env.WSURL(),
		Token:            func(ctx context.Context) (string, error) { return env.Tokens.Token(ctx, user) },
		ClientName:       "partyline-loadtest/1",
		DisableReconnect: !reconnect,
		BackoffBase:      100 * time.Millisecond,
		BackoffCap:       2 * time.Second,
		MessageBuffer:    256,
		HTTPClient:       &http.Client{Transport: tr},
	})
	if err != nil {
		m.connectErr.Add(1)
		if code := client.CloseCode(err); code > 0 {
			m.closed(code)
		}
		return nil, fmt.Errorf("connect %s: %w", user, err)
	}
	s.c, s.opened = c, time.Now()
	m.connecting.Observe(s.opened.Sub(began))
	m.sessions.Add(1)
	go func() {
		defer close(s.done)
		for msg := range c.Messages() {
			switch msg.Type {
			case client.TypeReconnected:
				m.reconnects.Add(1)
				m.sessions.Add(1)
			case client.TypeDisconnected:
				if code, err := strconv.Atoi(msg.Code); err == nil {
					m.closed(code)
				} else {
					m.closed(1006) // no close frame: the connection was cut
				}
			default:
				m.received.Add(1)
			}
			if onMsg != nil {
				onMsg(msg)
			}
		}
	}()
	return s, nil
}

// drop cuts the session's TCP connection without a close handshake, as a
// network failure would; the SDK reconnects and resumes.
func (s *session) drop() {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// close ends the session normally and waits for its pump.
func (s *session) close() {
	_ = s.c.Close()
	<-s.done
	s.m.duration.Observe(time.Since(s.opened))
	s.m.closed(1000)
}

// request times a request's round trip into ws_msg_rtt.
func (s *session) timed(f func() error) error {
	t0 := time.Now()
	err := f()
	s.m.sent.Add(1)
	if err == nil {
		s.m.rtt.Observe(time.Since(t0))
	}
	return err
}

// httpMetrics are k6's HTTP metrics for one scenario.
type httpMetrics struct {
	duration *metrics.Metric // http_req_duration{name,method,status}
	reqs     *metrics.Metric // http_reqs
	failed   *metrics.Metric // http_req_failed
	scenario string
}

func newHTTPMetrics(env *Env) *httpMetrics {
	return &httpMetrics{
		duration: env.Metrics.Trend("http_req_duration", true),
		reqs:     env.Metrics.Counter("http_reqs"),
		failed:   env.Metrics.Rate("http_req_failed"),
		scenario: env.Scenario,
	}
}

// do sends req, reads the whole body and records the request under name
// (a route such as "GET /v1/clips/{id}"). A status of 400 or more counts
// as failed, unless it is in ok.
func (h *httpMetrics) do(env *Env, req *http.Request, name string, ok ...int) (*http.Response, []byte, error) {
	t0 := time.Now()
	resp, err := env.HTTP.Do(req)
	var body []byte
	status := 0
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		status = resp.StatusCode
	}
	tags := metrics.Tags{"scenario": h.scenario, "name": name, "method": req.Method, "status": strconv.Itoa(status)}
	h.reqs.With(tags).Add(1)
	failed := err != nil || status >= 400
	for _, s := range ok {
		if status == s {
			failed = false
		}
	}
	h.failed.With(metrics.Tags{"scenario": h.scenario, "name": name}).AddBool(failed)
	if err == nil {
		h.duration.With(tags).Observe(time.Since(t0))
	}
	return resp, body, err
}
