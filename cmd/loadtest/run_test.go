package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, &out, &errb)
	var ee *exitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.code, out.String(), errb.String() + err.Error()
	}
	t.Fatalf("run: %v", err)
	return 0, "", ""
}

// TestRunExitCodes needs no server: connections to a closed port fail,
// which a threshold catches.
func TestRunExitCodes(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "t.yaml")
	if err := os.WriteFile(cfg, []byte(`
scenarios:
  idle:
    exec: connect-idle
    executor: per-vu-iterations
    vus: 2
    iterations: 1
    options: {timeout: 2s}
thresholds:
  ws_connect_errors: ["count==0"]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	export := filepath.Join(dir, "summary.json")
	report := filepath.Join(dir, "report.html")
	samples := filepath.Join(dir, "samples.ndjson")
	code, stdout, stderr := runCmd(t, "run", "--url", "http://127.0.0.1:1", "--jwt-secret", "0123456789abcdef0123456789abcdef",
		"--quiet", "--summary-export", export, "--report", report, "--out", "json="+samples, cfg)
	if code != exitThresholds {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", code, exitThresholds, stderr)
	}
	if !strings.Contains(stdout, "✗ 'count==0'") {
		t.Errorf("summary does not show the failed threshold:\n%s", stdout)
	}
	var exp map[string]any
	raw, err := os.ReadFile(export)
	if err != nil || json.Unmarshal(raw, &exp) != nil || exp["metrics"] == nil {
		t.Errorf("summary export %s: %v %.200s", export, err, raw)
	}
	if raw, err := os.ReadFile(report); err != nil || !bytes.Contains(raw, []byte("<svg")) {
		t.Errorf("report %s: %v", report, err)
	}
	if raw, err := os.ReadFile(samples); err != nil || !bytes.Contains(raw, []byte(`"metric":"ws_connect_errors"`)) {
		t.Errorf("samples %s: %v %.300s", samples, err, raw)
	}

	for _, tc := range [][]string{
		{"run", "--url", "http://127.0.0.1:1", "--jwt-secret", "x", filepath.Join(dir, "missing.yaml")},
		{"run", "--url", "http://127.0.0.1:1", "--scenario", "no-such-scenario", "--jwt-secret", "x"},
		{"run", "--url", "http://127.0.0.1:1", "--scenario", "connect-idle"}, // no token source
		{"run", "--bogus-flag"},
		{"run", "--url", "http://127.0.0.1:1", "--jwt-secret", "x", "--scenario", "connect-idle", "--stages", "10s"},
		{"run", "--url", "http://127.0.0.1:1", "--jwt-secret", "x", "--scenario", "connect-idle", "--out", "csv=x"},
	} {
		if code, _, stderr := runCmd(t, tc...); code != exitConfig {
			t.Errorf("%v: exit code %d, want %d (%s)", tc, code, exitConfig, stderr)
		}
	}
}
