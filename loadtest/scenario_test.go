package loadtest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
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

// runPassing is runShort for a run whose thresholds must all pass.
func runPassing(t *testing.T, yaml string) *Outcome {
	t.Helper()
	out := runShort(t, yaml)
	if out.ThresholdsFailed() {
		t.Errorf("thresholds failed: %+v", out.Thresholds)
	}
	return out
}

// tWriter logs through t, so iteration errors show with the test.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func count(o *Outcome, metric string) float64 {
	m := o.Registry.Lookup(metric)
	if m == nil {
		return 0
	}
	return m.Stats(nil, o.Elapsed).Count
}

func TestScenarioConnectIdle(t *testing.T) {
	out := runPassing(t, `
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
`)
	if got := out.Registry.Lookup("ws_connecting").Stats(nil, 0).Count; got != 20 {
		t.Errorf("ws_connecting has %v samples, want 20", got)
	}
	// Each broadcast reaches all 20 connections; the last one may be cut
	// short by the end of the run.
	if got := out.Registry.Lookup("ws_fanout_latency").Stats(nil, 0).Count; got < 20 || got > 20*8 {
		t.Errorf("ws_fanout_latency has %v samples, want about 7 broadcasts to 20 connections", got)
	}
}

// TestConnectIdleDetached opens connections at a rate, each held on its
// own after its iteration: the run lasts until the last one is done.
func TestConnectIdleDetached(t *testing.T) {
	out := runPassing(t, `
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
`)
	if got := out.Registry.Lookup("vus_max").Stats(nil, 0).Value; got > 3 {
		t.Errorf("%v VUs for 10 connections: connections should not hold VUs", got)
	}
}

func TestScenarioChatFanout(t *testing.T) {
	out := runPassing(t, `
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
  checks: ["rate==1"]
`)
	sent := count(out, "ws_msgs_sent")
	fan := out.Registry.Lookup("ws_fanout_latency").Stats(nil, 0).Count
	// Every publication reaches the other 3 members of its room; those
	// still in flight at the end may be missing.
	if sent < 10 || fan < 3*(sent-8)-24 || fan > 3*sent {
		t.Errorf("%v publications gave %v fan-out samples, want about 3 each", sent, fan)
	}
}

func TestScenarioPresenceChurn(t *testing.T) {
	out := runPassing(t, `
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
`)
	if got := out.Registry.Lookup("presence_convergence").Stats(nil, 0).Count; got < 4 {
		t.Errorf("presence_convergence has %v samples, want joins and leaves measured", got)
	}
}

func TestScenarioRecovery(t *testing.T) {
	out := runPassing(t, `
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
`)
	if got := count(out, "recovery_resumes"); got < 4 {
		t.Errorf("%v drops, want several", got)
	}
	if got := count(out, "ws_reconnects"); got < 2 {
		t.Errorf("%v reconnects, want the drops to have been resumed", got)
	}
}

func TestScenarioOverlay(t *testing.T) {
	out := runPassing(t, `
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
`)
	if got := count(out, "iterations"); got < 10 {
		t.Errorf("%v iterations, want the overlay users to act", got)
	}
}

func TestScenarioRESTFeed(t *testing.T) {
	out := runPassing(t, `
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
`)
	if got := count(out, "iterations"); got < 3 {
		t.Errorf("%v iterations", got)
	}
}

func TestScenarioOverlayWithFeed(t *testing.T) {
	runPassing(t, `
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
`)
}

func TestScenarioVoice(t *testing.T) {
	out := runPassing(t, `
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
`)
	if got := out.Registry.Lookup("voice_join_to_media").Stats(nil, 0).Count; got != 4 {
		t.Errorf("voice_join_to_media has %v samples, want one per participant", got)
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
