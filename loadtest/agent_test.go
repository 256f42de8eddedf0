package loadtest

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestCoordinatedRun runs one test on two agents and checks that the
// merged summary counts every agent's work once.
func TestCoordinatedRun(t *testing.T) {
	url := startApp(t)
	var agents []string
	for range 2 {
		a := &Agent{}
		srv := httptest.NewServer(a)
		t.Cleanup(func() { a.Close(); srv.Close() })
		agents = append(agents, srv.URL)
	}
	cfg, err := ParseConfig([]byte(`
target: `+url+`
scenarios:
  idle:
    exec: connect-idle
    executor: constant-vus
    vus: 7
    duration: 1s
thresholds:
  ws_sessions: ["count==7"]
  ws_connecting: ["p(95)<5000"]
`), ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := Coordinate(ctx, CoordinateOptions{
		Agents: agents, ThresholdInterval: 200 * time.Millisecond,
		Job: AgentJob{Config: cfg, JWTSecret: testSecret},
	})
	if err != nil {
		t.Fatalf("Coordinate: %v", err)
	}
	if out.ThresholdsFailed() {
		t.Errorf("thresholds failed: %+v", out.Thresholds)
	}
	if got := out.Registry.Lookup("ws_connecting").Stats(nil, 0).Count; got != 7 {
		t.Errorf("merged ws_connecting has %v samples, want 7", got)
	}
	if got := out.Registry.Lookup("vus_max").Stats(nil, 0).Value; got != 7 {
		t.Errorf("merged vus_max = %v, want 7 (4 + 3)", got)
	}
}

func TestCoordinatorRejectsBadJobs(t *testing.T) {
	a := &Agent{}
	srv := httptest.NewServer(a)
	defer srv.Close()
	cfg, _ := ParseConfig([]byte("target: http://127.0.0.1:1\nscenarios: {a: {exec: connect-idle, executor: constant-vus, duration: 1s}}"), ".yaml")
	_, err := Coordinate(context.Background(), CoordinateOptions{Agents: []string{srv.URL}, Job: AgentJob{Config: cfg}})
	if err == nil || !strings.Contains(err.Error(), "token source") {
		t.Errorf("a job without tokens: %v, want a config error", err)
	}
}
