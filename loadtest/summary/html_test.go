package summary

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline/loadtest/metrics"
)

func TestHTML(t *testing.T) {
	in := fixture(t)
	in.Title = `load <script>alert("title")</script>`
	in.Registry.Rate("checks").With(metrics.Tags{"check": `<img src="http://evil/x.png">`}).AddBool(false)
	var b bytes.Buffer
	if err := HTML(&b, in); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	golden(t, "report.html", b.Bytes())

	if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.HasSuffix(strings.TrimSpace(page), "</html>") {
		t.Error("not a whole HTML document")
	}

	// Self-contained: nothing is loaded from elsewhere.
	external := regexp.MustCompile(`(?i)(src|href|xlink:href)\s*=\s*["']?\s*(https?:)?//`)
	if m := external.FindString(page); m != "" {
		t.Errorf("page loads %q from elsewhere", m)
	}
	for _, bad := range []string{"<link", "@import", "url(", "<script src", "<iframe"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	// Escaped: the hostile title and check name appear only as text.
	if strings.Contains(page, "<script>alert") || strings.Contains(page, `<img src=`) {
		t.Error("unescaped markup from the input")
	}
	if !strings.Contains(page, "&lt;img src=&#34;http://evil/x.png&#34;&gt;") {
		t.Error("hostile check name is not shown escaped")
	}

	// Summary, thresholds and checks.
	for _, want := range []string{
		`<td>http_req_duration</td>`,
		`<td class="sub">{ expected_response:true }</td>`,
		`p(95)=176.13ms`, // a threshold's observed value
		`avg=111.52ms`,   // a trend row
		`✗ thresholds crossed`,
		`<td>got welcome</td><td class="num">95%</td>`,
		`<h3>WEBSOCKET</h3>`, `<h3>RECOVERY</h3>`, `<h3>VOICE</h3>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	// Charts: a latency chart per time trend with avg, p95 and p99, and a
	// throughput chart with a line per counter (bytes left out).
	var gotTitles []string
	for _, m := range regexp.MustCompile(`aria-label="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		gotTitles = append(gotTitles, m[1])
	}
	wantTitles := []string{
		"Latency: http_req_duration", "Latency: iteration_duration", "Latency: ws_fanout_latency",
		"Throughput (per second)",
	}
	if diff := cmp.Diff(wantTitles, gotTitles); diff != "" {
		t.Errorf("charts (-want +got):\n%s", diff)
	}
	polylines := regexp.MustCompile(`<polyline stroke="#[0-9a-f]{6}" points="([^"]+)"><title>([^<]+)</title>`).FindAllStringSubmatch(page, -1)
	var lines []string
	for _, p := range polylines {
		lines = append(lines, p[2])
	}
	// Three time trends, then the counters with samples in the series.
	wantLines := []string{"avg", "p95", "p99", "avg", "p95", "p99", "avg", "p95", "p99", "http_reqs", "iterations", "ws_msgs_received"}
	if diff := cmp.Diff(wantLines, lines); diff != "" {
		t.Errorf("lines drawn (-want +got):\n%s", diff)
	}
	for _, p := range polylines {
		if n := len(strings.Fields(p[1])); n != 4 {
			t.Errorf("line %s has %d points, want 4 (one per interval)", p[2], n)
		}
	}

	// The chart data is embedded as JSON.
	m := regexp.MustCompile(`(?s)<script type="application/json" id="partyline-series">(.*?)</script>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no embedded chart data")
	}
	var data seriesData
	if err := json.Unmarshal([]byte(m[1]), &data); err != nil {
		t.Fatalf("embedded chart data: %v", err)
	}
	if diff := cmp.Diff([]float64{1, 2, 3, 4}, data.Seconds); diff != "" {
		t.Errorf("seconds (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]float64{10, 10, 10, 10}, data.Throughput["iterations"]); diff != "" {
		t.Errorf("iterations per second (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]float64{50, 100, 150, 200}, data.Throughput["ws_msgs_received"]); diff != "" {
		t.Errorf("ws_msgs_received per second (-want +got):\n%s", diff)
	}
	if _, ok := data.Throughput["data_received"]; ok {
		t.Error("bytes are charted as throughput")
	}
	avg := data.Latency["iteration_duration"]["avg"]
	if len(avg) != 4 || avg[0] == nil || *avg[0] < 990 || *avg[0] > 1010 || *avg[3] < 3990 || *avg[3] > 4010 {
		t.Errorf("iteration_duration avg per second = %v, want about 1000..4000 ms", avg)
	}
}

func TestHTMLWithoutSeries(t *testing.T) {
	reg := metrics.NewRegistry()
	reg.Counter("iterations").With(nil).Add(1)
	var b bytes.Buffer
	if err := HTML(&b, Input{Registry: reg}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<polyline") || !strings.Contains(b.String(), "<td>iterations</td>") {
		t.Error("a run without series: want the table and no chart")
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.1: 2, 2.2: 2.5, 3: 5, 7: 10, 176: 200, 4001: 5000} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
}
