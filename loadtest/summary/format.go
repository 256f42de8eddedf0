package summary

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/partyline/partyline/loadtest/metrics"
	"github.com/partyline/partyline/loadtest/threshold"
)

// trendPercentiles are the percentiles shown for every trend, as in k6.
var trendPercentiles = []float64{90, 95}

// fmtMs formats milliseconds as k6 shows times: 0s, 850µs, 1.23ms, 2.5s,
// 1m2.5s.
func fmtMs(ms float64) string {
	switch {
	case ms == 0 || math.IsNaN(ms):
		return "0s"
	case ms < 0:
		return "-" + fmtMs(-ms)
	}
	if us := round2(ms * 1000); us < 1000 {
		return trim(us) + "µs"
	}
	if v := round2(ms); v < 1000 {
		return trim(v) + "ms"
	}
	if s := round2(ms / 1000); s < 60 {
		return trim(s) + "s"
	}
	return time.Duration(ms * float64(time.Millisecond)).Round(10 * time.Millisecond).String()
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func trim(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// fmtNum formats a plain number with up to 6 significant digits and no
// exponent: 45, 6.56109, 0.000123.
func fmtNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	decimals := 5 - int(math.Floor(math.Log10(math.Abs(v))))
	if decimals < 0 {
		decimals = 0
	}
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// fmtPct formats a ratio as a percentage with two decimals: 99.00%.
func fmtPct(r float64) string { return strconv.FormatFloat(r*100, 'f', 2, 64) + "%" }

// fmtBytes formats a byte count with SI units, as k6 shows data: 9.0 kB.
func fmtBytes(b float64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	i := 0
	for math.Abs(b) >= 1000 && i < len(units)-1 {
		b /= 1000
		i++
	}
	if i == 0 {
		return fmtNum(math.Round(b)) + " B"
	}
	return strconv.FormatFloat(b, 'f', 1, 64) + " " + units[i]
}

// isBytes reports whether a counter counts bytes.
func isBytes(name string) bool { return strings.HasPrefix(name, "data_") }

// value formats a metric's value in its unit: a time, bytes or a number.
func value(e entry, v float64) string {
	switch {
	case e.Stats.IsTime:
		return fmtMs(v)
	case isBytes(e.Metric):
		return fmtBytes(v)
	}
	return fmtNum(v)
}

// cells returns a metric row's values, as k6 shows them:
//
//	trend    avg=… min=… med=… max=… p(90)=… p(95)=…
//	counter  count  rate/s
//	rate     pct  ✓ passes  ✗ fails
//	gauge    value  min=…  max=…
func cells(e entry) []string {
	st := e.Stats
	switch st.Type {
	case metrics.Trend:
		out := []string{
			"avg=" + value(e, st.Avg), "min=" + value(e, st.Min),
			"med=" + value(e, st.Med), "max=" + value(e, st.Max),
		}
		for _, p := range trendPercentiles {
			out = append(out, "p("+trim(p)+")="+value(e, st.Percentile(p)))
		}
		return out
	case metrics.Counter:
		return []string{value(e, st.Count), value(e, st.PerSecond) + "/s"}
	case metrics.Rate:
		return []string{fmtPct(st.Rate), "✓ " + strconv.FormatInt(st.Passes, 10), "✗ " + strconv.FormatInt(st.Fails, 10)}
	case metrics.Gauge:
		return []string{value(e, st.Value), "min=" + value(e, st.Min), "max=" + value(e, st.Max)}
	}
	return nil
}

// observed formats a threshold's observed value as k6 does after the
// expression: p(95)=12.3ms, rate=99.00%, count=0.
func observed(r threshold.Result) string {
	agg := r.Expr.Agg.String()
	switch {
	case r.Err != nil:
		return "error: " + r.Err.Error()
	case r.Missing:
		return "(metric " + r.Metric + " not recorded)"
	}
	e := entry{Metric: r.Metric, Stats: metrics.Stats{Type: r.Type, IsTime: r.IsTime}}
	switch {
	case r.Type == metrics.Rate:
		return agg + "=" + fmtPct(r.Observed)
	case r.Type == metrics.Counter && r.Expr.Agg.Method == threshold.RateOf:
		return agg + "=" + value(e, r.Observed) + "/s"
	}
	return agg + "=" + value(e, r.Observed)
}

// scenarioHeader returns the header lines k6 prints above a run.
func scenarioHeader(ss []Scenario) []string {
	if len(ss) == 0 {
		return nil
	}
	vus := 0
	var longest time.Duration
	for _, s := range ss {
		vus += s.VUs
		longest = max(longest, s.Duration)
	}
	plural := "s"
	if len(ss) == 1 {
		plural = ""
	}
	out := []string{fmt.Sprintf("scenarios: %d scenario%s, %d max VUs, %v max duration:", len(ss), plural, vus, longest)}
	for _, s := range ss {
		out = append(out, fmt.Sprintf("* %s: %d VUs for %v (executor: %s)", s.Name, s.VUs, s.Duration, s.Executor))
	}
	return out
}
