package loadtest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/partyline/partyline/loadtest/summary"
)

// runShort runs one scenario against a fresh in-process server for a
// short while and returns the outcome.
func runShort(t *testing.T, yaml string) *Outcome {
	t.Helper()
	url := startApp(t)
	cfg, err := ParseConfig([]byte("target: "+url+"\n"+yaml), ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := NewSecretTokens(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(tWriter{t}, nil))
	out, err := Run(ctx, RunOptions{Config: cfg, Tokens: tokens, APIKey: testAPIKey, ThresholdInterval: 200 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var b bytes.Buffer
	if err := summary.Text(&b, out.SummaryInput()); err != nil {
		t.Fatal(err)
	}
	t.Logf("summary:\n%s", b.String())
	return out
}

// tWriter logs through t, so iteration errors show with the test.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// samples returns how many samples metric has: a trend's count, which
// thresholds do not offer.
func samples(o *Outcome, metric string) float64 {
	m := o.Registry.Lookup(metric)
	if m == nil {
		return 0
	}
	return m.Stats(nil, o.Elapsed).Count
}

// wantSamples checks that metric has from lo to hi samples.
func wantSamples(t *testing.T, out *Outcome, metric string, lo, hi float64) {
	t.Helper()
	if got := samples(out, metric); got < lo || got > hi {
		t.Errorf("%s has %v samples, want %v to %v", metric, got, lo, hi)
	}
}

// TestScenarios runs each scenario for a short while. Its thresholds must
// all pass; check looks further where a threshold cannot say it.
func TestScenarios(t *testing.T) {
	for _, tc := range []struct {
		name  string
		yaml  string
		check func(t *testing.T, out *Outcome)
	}{{
		name: "ConnectIdle",
		yaml: `
scenarios:
  idle:
    exec: connect-idle
    executor: constant-vus
    vus: 20
    duration: 1500ms
    options: {broadcast: "broadcast:lt", broadcast_every: 200ms}
thresholds:
  ws_connect_errors: ["count==0"]
  ws_sessions: ["count==20"]
  broadcast_errors: ["count==0"]
`,
		check: func(t *testing.T, out *Outcome) {
			wantSamples(t, out, "ws_connecting", 20, 20)
			// About 7 broadcasts each reach all 20 connections; the last
			// one may be cut short by the end of the run.
			wantSamples(t, out, "ws_fanout_latency", 20, 20*8)
		},
	}, {
		// Connections opened at a rate are each held on their own after
		// their iteration, not by a VU: the run lasts until the last one
		// is done.
		name: "ConnectIdleDetached",
		yaml: `
scenarios:
  idle:
    exec: connect-idle
    executor: constant-arrival-rate
    rate: 20
    duration: 500ms
    preAllocatedVUs: 2
    options: {hold: 700ms}
thresholds:
  ws_connect_errors: ["count==0"]
  ws_sessions: ["count==10"]
  ws_session_duration: ["min>=690"]
  iterations: ["count==10"]
  vus_max: ["value<=3"]
`,
	}, {
		name: "ChatFanout",
		yaml: `
scenarios:
  chat:
    exec: chat-fanout
    executor: constant-vus
    vus: 8
    duration: 2s
    gracefulStop: 1s
    options: {room_size: 4, rate: 5}
thresholds:
  ws_fanout_latency{scenario:chat}: ["p(95)<2000"]
  ws_msgs_sent: ["count>=10"]
  checks: ["rate==1"]
`,
		check: func(t *testing.T, out *Outcome) {
			sent, fan := samples(out, "ws_msgs_sent"), samples(out, "ws_fanout_latency")
			// Every publication reaches the other 3 members of its room;
			// those still in flight at the end may be missing.
			if fan < 3*(sent-8)-24 || fan > 3*sent {
				t.Errorf("%v publications gave %v fan-out samples, want about 3 each", sent, fan)
			}
		},
	}, {
		name: "PresenceChurn",
		yaml: `
scenarios:
  churn:
    exec: presence-churn
    executor: constant-vus
    vus: 6
    duration: 2s
    gracefulStop: 3s
    options: {room_size: 3, hold: 300ms, reconnect: 100ms, timeout: 2s}
thresholds:
  presence_timeouts: ["count==0"]
`,
		check: func(t *testing.T, out *Outcome) {
			// Joins and leaves are measured.
			wantSamples(t, out, "presence_convergence", 4, math.Inf(1))
		},
	}, {
		// Several drops, and the drops resumed.
		name: "Recovery",
		yaml: `
scenarios:
  rec:
    exec: recovery
    executor: constant-vus
    vus: 4
    duration: 2s
    gracefulStop: 2s
    options: {room_size: 4, publish_rate: 10, online: 300ms}
thresholds:
  recovery_gaps: ["count==0"]
  recovery_duplicates: ["count==0"]
  recovery_failed: ["count==0"]
  recovery_resumes: ["count>=4"]
  ws_reconnects: ["count>=2"]
`,
	}, {
		name: "Overlay",
		yaml: `
scenarios:
  overlay:
    exec: overlay
    executor: constant-vus
    vus: 5
    duration: 1500ms
    gracefulStop: 1s
    options: {room_pool: 3, think: 50ms, weights: {chat: 3, status: 2, typing: 1, history: 1, presence: 1}}
thresholds:
  checks: ["rate==1"]
  iterations: ["count>=10"]
`,
	}, {
		name: "RESTFeed",
		yaml: `
scenarios:
  browse:
    exec: rest-feed
    executor: constant-vus
    vus: 3
    duration: 1s
    options: {seed_clips: 4, media_bytes: 1024}
thresholds:
  checks: ["rate==1"]
  http_req_failed: ["rate==0"]
  'http_reqs{name:"GET /v1/clips/{id}/media"}': ["count>0"]
  iterations: ["count>=3"]
`,
	}, {
		name: "OverlayWithFeed",
		yaml: `
scenarios:
  overlay:
    exec: overlay
    executor: constant-vus
    vus: 3
    duration: 1s
    options: {room_pool: 2, think: 20ms}
thresholds:
  checks: ["rate==1"]
  http_reqs: ["count>0"]
`,
	}, {
		name: "Voice",
		yaml: `
scenarios:
  voice:
    exec: voice
    executor: constant-vus
    vus: 4
    duration: 3s
    options: {room_size: 2, speakers: 2}
thresholds:
  checks: ["rate==1"]
  voice_packets_received: ["count>100"]
  voice_join_to_media: ["p(95)<3000"]
  voice_packet_loss: ["rate<0.05"]
`,
		check: func(t *testing.T, out *Outcome) {
			// One per participant.
			wantSamples(t, out, "voice_join_to_media", 4, 4)
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			out := runShort(t, tc.yaml)
			if out.ThresholdsFailed() {
				t.Errorf("thresholds failed: %+v", out.Thresholds)
			}
			if tc.check != nil {
				tc.check(t, out)
			}
		})
	}
}

func TestAbortOnFail(t *testing.T) {
	start := time.Now()
	out := runShort(t, `
scenarios:
  idle:
    exec: connect-idle
    executor: constant-vus
    vus: 2
    duration: 30s
    gracefulStop: 0s
thresholds:
  ws_sessions:
    - threshold: "count>100"
      abortOnFail: true
`)
	if !out.Aborted || !out.ThresholdsFailed() {
		t.Errorf("aborted %v, failed %v: want the failing threshold to stop the run", out.Aborted, out.ThresholdsFailed())
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the run took %v: it was not aborted", d)
	}
}

func TestConfigErrors(t *testing.T) {
	tokens, _ := NewSecretTokens(testSecret)
	for _, tc := range []struct{ yaml, want string }{
		{"target: http://127.0.0.1:1\nscenarios: {a: {exec: nope, executor: constant-vus, duration: 1s}}", "unknown exec"},
		{"target: http://127.0.0.1:1\nscenarios: {a: {exec: chat-fanout, executor: constant-vus, duration: 1s, options: {rate: 0}}}", "rate"},
		{"target: http://127.0.0.1:1\nscenarios: {a: {exec: chat-fanout, executor: constant-vus, duration: 1s, options: {colour: red}}}", "unknown field"},
		{"target: http://127.0.0.1:1\nscenarios: {a: {exec: connect-idle, executor: constant-vus, duration: 1s}}\nthresholds: {nope_metric: [\"count==0\"]}", "no metric named"},
		{"target: http://127.0.0.1:1\nscenarios: {a: {exec: connect-idle, executor: constant-vus, duration: 1s}}\nthresholds: {iterations: [\"p(95)<<1\"]}", "threshold"},
		{"target: ftp://x\nscenarios: {a: {exec: connect-idle, executor: constant-vus, duration: 1s}}", "target"},
		{"scenarios: {a: {exec: connect-idle, executor: constant-vus, duration: 1s}}", "no target"},
		{"target: http://127.0.0.1:1\nscenarios: {a: {exec: connect-idle, executor: warp, duration: 1s}}", "unknown executor"},
		{"target: http://127.0.0.1:1\nscenarioz: {}", "unknown field"},
	} {
		cfg, err := ParseConfig([]byte(tc.yaml), ".yaml")
		if err == nil {
			_, err = Run(context.Background(), RunOptions{Config: cfg, Tokens: tokens})
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want a config error containing %q", tc.yaml, err, tc.want)
		}
	}
}

func TestSegment(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
target: http://127.0.0.1:1
scenarios:
  a: {exec: connect-idle, executor: constant-vus, vus: 5, duration: 1s}
  b: {exec: connect-idle, executor: constant-arrival-rate, rate: 9, duration: 1s, preAllocatedVUs: 3, maxVUs: 7}
  c: {exec: connect-idle, executor: shared-iterations, vus: 1, iterations: 1}
`), ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	var vus, maxVUs int64
	var rate float64
	cs := 0
	for i := range 2 {
		s := cfg.segment(i, 2)
		vus += s.Scenarios["a"].VUs
		rate += s.Scenarios["b"].Rate
		maxVUs += s.Scenarios["b"].MaxVUs
		if s.Scenarios["c"] != nil {
			cs++
		}
	}
	if vus != 5 || rate != 9 || maxVUs != 7 || cs != 1 {
		t.Errorf("segments add up to %d VUs, rate %v, %d maxVUs, scenario c on %d agents; want 5, 9, 7, 1", vus, rate, maxVUs, cs)
	}
}
