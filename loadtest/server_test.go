package loadtest

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseMetrics(t *testing.T) {
	in := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 10014
go_memstats_heap_inuse_bytes 1.654784e+06
partyline_close_codes_total{code="4009"} 3
partyline_http_request_duration_seconds_bucket{method="POST",route="/v1/server/*",le="+Inf"} 12
weird{label="a b}c"} 2 1732760000000

partyline_fanout_latency_seconds_sum 0.5
up NaN
`
	got, err := ParseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(got["up"]) {
		t.Errorf("up = %v, want NaN", got["up"])
	}
	delete(got, "up")
	want := Metrics{
		"go_goroutines":                            10014,
		"go_memstats_heap_inuse_bytes":             1654784,
		`partyline_close_codes_total{code="4009"}`: 3,
		`partyline_http_request_duration_seconds_bucket{method="POST",route="/v1/server/*",le="+Inf"}`: 12,
		`weird{label="a b}c"}`:                 2,
		"partyline_fanout_latency_seconds_sum": 0.5,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseMetrics (-want +got):\n%s", diff)
	}
}

func TestParseMetricsErrors(t *testing.T) {
	for _, in := range []string{
		"no_value\n",
		"bad_value abc\n",
		`unclosed{a="b" 1` + "\n",
		`labels_only{a="b"}` + "\n",
	} {
		if _, err := ParseMetrics(strings.NewReader(in)); err == nil {
			t.Errorf("ParseMetrics(%q) succeeded, want an error", in)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	// A real line's shape, with a command name holding ") (" to make sure
	// the fields are counted from the last parenthesis.
	line := "8751 (part) (line) S 1 8751 8751 0 -1 4194560 2981 0 0 0 1234 566 0 0 20 0 9 0 123456 1689886720 4602 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 0 0 0 0 0 0\n"
	got, err := parseProcStat(line, 4096)
	if err != nil {
		t.Fatal(err)
	}
	want := ProcStat{CPU: 18 * time.Second, RSS: 4602 * 4096}
	if got != want {
		t.Errorf("parseProcStat = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 566 0 0 20 0 9 0 1 1 4602"} {
		if _, err := parseProcStat(bad, 4096); err == nil {
			t.Errorf("parseProcStat(%q) succeeded, want an error", bad)
		}
	}
}

func TestReadProcStatSelf(t *testing.T) {
	st, err := ReadProcStat(0)
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if st.RSS <= 0 {
		t.Errorf("own RSS = %d, want > 0", st.RSS)
	}
}

func TestCPUShare(t *testing.T) {
	if got := CPUShare(180*time.Millisecond, time.Second); got != 0.18 {
		t.Errorf("CPUShare = %v, want 0.18", got)
	}
	if got := CPUShare(time.Second, 0); got != 0 {
		t.Errorf("CPUShare over no time = %v, want 0", got)
	}
}

func TestParseMachineBusy(t *testing.T) {
	stat := "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n"
	got, err := parseMachineBusy(stat)
	if err != nil {
		t.Fatal(err)
	}
	// user+nice+system+irq+softirq+steal = 161 ticks.
	if want := 1610 * time.Millisecond; got != want {
		t.Errorf("parseMachineBusy = %s, want %s", got, want)
	}
	if _, err := parseMachineBusy("intr 1 2 3\n"); err == nil {
		t.Error("parseMachineBusy without a cpu line succeeded")
	}
}
