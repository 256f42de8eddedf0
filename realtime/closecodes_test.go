package realtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/wire"
)

// bugExt serves request types that fail the way bugs do.
type bugExt struct{}

func (bugExt) Namespaces() []Namespace { return nil }
func (bugExt) Authorize(context.Context, *Session, string, Action) error {
	return nil
}
func (bugExt) Requests() map[string]RequestHandler {
	return map[string]RequestHandler{
		"test.fail": func(context.Context, *Session, *wire.Request) (any, error) {
			return nil, errors.New("a plain error that wraps no domain kind")
		},
		"test.panic": func(context.Context, *Session, *wire.Request) (any, error) {
			panic("boom")
		},
	}
}

func TestInternalErrors(t *testing.T) {
	n := startNode(t, Options{}, bugExt{})
	c := connect(t, n.url, "u_bug")
	m := c.errCode(map[string]any{"type": "test.fail"}, wire.CodeInternal)
	if strings.Contains(m.Message, "plain error") {
		t.Fatalf("the internal error leaked its cause: %s", m.Raw)
	}
	c.ok(map[string]any{"type": "ping"}) // an internal error keeps the connection
	c.errCode(map[string]any{"type": "test.panic"}, wire.CodeInternal)
	if code := c.waitClose(5 * time.Second); code != wire.CloseInternal {
		t.Fatalf("close code after a panic = %d, want 1011", code)
	}
	connect(t, n.url, "u_bug").ok(map[string]any{"type": "ping"}) // the node lives on
}

func TestDrainCloses(t *testing.T) {
	t.Run("reconnect notices spread over the window, then 1012", func(t *testing.T) {
		const window = 400 * time.Millisecond
		n := startNode(t, Options{DrainWindow: window})
		var clients []*wsClient
		for i := 0; i < 30; i++ {
			clients = append(clients, connect(t, n.url, fmt.Sprintf("u_drain%d", i)))
		}
		dial(t, n.url) // one that never said hello is drained too
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Drain(ctx); err != nil {
			t.Fatalf("Drain: %v", err)
		}
		if n.connCount() != 0 {
			t.Fatalf("%d connections left after Drain", n.connCount())
		}
		lo, hi := int64(1<<62), int64(-1)
		for _, c := range clients {
			m := c.waitNote("reconnect", func(m wire.Message) bool { return m.Type == wire.TypeReconnect })
			if m.Reason != "shutdown" || m.AfterMS < 0 || m.AfterMS > window.Milliseconds() {
				t.Fatalf("reconnect = %s", m.Raw)
			}
			lo, hi = min(lo, m.AfterMS), max(hi, m.AfterMS)
			if code := c.waitClose(5 * time.Second); code != wire.CloseServiceRestart {
				t.Fatalf("close code = %d, want 1012", code)
			}
		}
		if lo > window.Milliseconds()/3 || hi < 2*window.Milliseconds()/3 {
			t.Fatalf("after_ms spans %d..%d, want a spread over 0..%d", lo, hi, window.Milliseconds())
		}
		if _, _, err := dialRaw(t, n.url, nil); err == nil {
			t.Fatal("a draining node accepted a connection")
		}
	})
	t.Run("no drain window closes with 1001", func(t *testing.T) {
		n := startNode(t, Options{DrainWindow: -1})
		c := connect(t, n.url, "u_gone")
		if err := n.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		if code := c.waitClose(5 * time.Second); code != wire.CloseGoingAway {
			t.Fatalf("close code = %d, want 1001", code)
		}
	})
	t.Run("a client's normal close is answered with 1000", func(t *testing.T) {
		n := startNode(t, Options{})
		c := connect(t, n.url, "u_bye")
		before := n.connCount()
		if err := c.ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
			t.Fatalf("close handshake: %v", err)
		}
		if code := c.waitClose(5 * time.Second); code != wire.CloseNormal {
			t.Fatalf("close code = %d, want 1000", code)
		}
		testenv.Eventually(t, "the server to forget the connection", func() bool { return n.connCount() < before })
	})
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	n := startNode(t, Options{Registerer: reg, SendQueueMessages: 10})
	c := connect(t, n.url, "u_m")
	c.ok(map[string]any{"type": "sub", "channel": "user:u_m"})
	c.ok(map[string]any{"type": "sub", "channel": "broadcast:m", "since": map[string]any{"epoch": "x", "offset": 1}})
	n.publish(t, "user:u_m", `{"a":1}`)
	c.waitNote("msg", func(m wire.Message) bool { return m.Type == wire.TypeMsg })
	c.sendRaw([]byte(`{"type":"bogus","id":9}`))
	c.waitClose(5 * time.Second)

	testenv.Eventually(t, "metrics", func() bool {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if mf.GetName() == "partyline_close_codes_total" && m.GetLabel()[0].GetValue() == "4000" {
					have["close 4000"] = true
				}
				if mf.GetName() == "partyline_recovery_total" && m.GetLabel()[0].GetValue() == "not_recovered" {
					have["not_recovered"] = true
				}
				if mf.GetName() == "partyline_fanout_latency_seconds" && m.GetHistogram().GetSampleCount() > 0 {
					have["fanout"] = true
				}
			}
			have[mf.GetName()] = true
		}
		for _, want := range []string{"close 4000", "not_recovered", "fanout", "partyline_connections",
			"partyline_subscriptions", "partyline_messages_in_total", "partyline_messages_out_total",
			"partyline_broker_publish_seconds"} {
			if !have[want] {
				return false
			}
		}
		return true
	})
}
