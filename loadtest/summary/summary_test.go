package summary

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline/loadtest/metrics"
	"github.com/partyline/partyline/loadtest/threshold"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", name, diff)
	}
}

const thresholdsJSON = `{
	"http_req_duration": ["p(95)<200", "avg<=100"],
	"http_req_duration{expected_response:true}": ["p(90)<50"],
	"ws_fanout_latency{scenario:chat}": [{"threshold": "p(99)<100", "abortOnFail": true, "delayAbortEval": "10s"}],
	"checks": ["rate>0.99"],
	"recovery_gaps": ["count==0"],
	"ws_msgs_received": ["rate>=10", "count>0"],
	"vus": ["max<=20"],
	"not_yet": ["count==0"]
}`

const elapsed = 20 * time.Second

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a run with metrics of every type and section, recorded over
// four one-second intervals.
func fixture(t *testing.T) Input {
	t.Helper()
	reg := metrics.NewRegistry()
	ok := metrics.Tags{"expected_response": "true"}
	bad := metrics.Tags{"expected_response": "false"}
	chat := metrics.Tags{"scenario": "chat"}
	idle := metrics.Tags{"scenario": "idle"}
	httpDur := reg.Trend("http_req_duration", true)
	lat := reg.Trend("ws_fanout_latency", true)
	for sec := range 4 {
		for i := 1; i <= 50; i++ {
			httpDur.With(ok).Observe(time.Duration(i*(sec+1)) * time.Millisecond)
			lat.With(chat).Observe(time.Duration(i*40*(sec+1)) * time.Microsecond)
			reg.Counter("http_reqs").With(ok).Add(1)
			reg.Counter("ws_msgs_received").With(chat).Add(float64(sec + 1))
		}
		httpDur.With(bad).Observe(2500 * time.Millisecond)
		reg.Counter("http_reqs").With(bad).Add(1)
		lat.With(idle).Observe(850 * time.Microsecond)
		reg.Counter("iterations").With(nil).Add(10)
		reg.Trend("iteration_duration", true).With(nil).Observe(time.Duration(sec+1) * time.Second)
		reg.Gauge("vus").With(nil).Set(float64(5 * (sec + 1)))
		reg.Counter("data_received").With(nil).Add(1_234_567)
		reg.Tick(start.Add(time.Duration(sec+1) * time.Second))
	}
	reg.Counter("data_sent").With(nil).Add(999)
	reg.Gauge("ws_sessions").With(chat).Set(100)
	reg.Gauge("ws_sessions").With(idle).Set(10)
	reg.Trend("presence_convergence", true).With(nil).Observe(75 * time.Minute / 1000)
	reg.Trend("voice_packet_loss", false).With(nil).ObserveValue(0.25)
	reg.Trend("voice_packet_loss", false).With(nil).ObserveValue(1.5)
	reg.Counter("recovery_gaps")
	reg.Counter("never_used")
	reg.Counter("custom_events").With(nil).Add(3)
	for i := range 20 {
		reg.Rate("checks").With(metrics.Tags{"check": "connected"}).AddBool(true)
		reg.Rate("checks").With(metrics.Tags{"check": "got welcome"}).AddBool(i != 0)
	}
	reg.Rate("ws_reconnect_failed").With(nil).AddBool(false)

	var cfg map[string]json.RawMessage
	if err := json.Unmarshal([]byte(thresholdsJSON), &cfg); err != nil {
		t.Fatal(err)
	}
	set, err := threshold.Parse(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return Input{
		Registry:   reg,
		Thresholds: set.Evaluate(reg, elapsed),
		Elapsed:    elapsed,
		Scenarios: []Scenario{
			{Name: "chat", Executor: "constant-vus", VUs: 100, Duration: 20 * time.Second},
			{Name: "idle", Executor: "ramping-vus", VUs: 10, Duration: 15 * time.Second},
		},
	}
}

func TestText(t *testing.T) {
	var b bytes.Buffer
	if err := Text(&b, fixture(t)); err != nil {
		t.Fatal(err)
	}
	golden(t, "summary.txt", b.Bytes())
}

func TestTextMinimal(t *testing.T) {
	reg := metrics.NewRegistry()
	reg.Counter("iterations").With(nil).Add(3)
	reg.Counter("unused")
	var b bytes.Buffer
	if err := Text(&b, Input{Registry: reg, Elapsed: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	want := `
   duration: 1.5s


  █ TOTAL RESULTS

    EXECUTION
    iterations...: 3 2/s

`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("Text (-want +got):\n%s", diff)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteErrors(t *testing.T) {
	in := fixture(t)
	boom := errWriter{os.ErrClosed}
	for name, f := range map[string]func() error{
		"Text":   func() error { return Text(boom, in) },
		"Export": func() error { return Export(boom, in) },
		"HTML":   func() error { return HTML(boom, in) },
	} {
		if err := f(); err == nil {
			t.Errorf("%s to a failing writer succeeded", name)
		}
	}
}
