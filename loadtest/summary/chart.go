package summary

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/partyline/partyline/loadtest/metrics"
)

// Chart geometry, in SVG user units.
const (
	chartW, chartH                  = 760, 260
	padLeft, padRight, padTop, padB = 70, 16, 12, 34
)

var palette = []string{"#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"}

// chart is one SVG line chart, laid out here so that the template only
// places numbers.
type chart struct {
	Title  string
	Width  int
	Height int
	Left   int
	Right  int // x of the plot's right edge
	Top    int
	Bottom int // y of the plot's bottom edge
	Lines  []line
	YTicks []tick
	XTicks []tick
}

type line struct {
	Name   string
	Color  string
	Points string // "x,y x,y …"
}

type tick struct {
	Pos   float64
	Label string
}

// seriesData is the charts' data, embedded in the report as JSON.
type seriesData struct {
	// Seconds are each point's seconds since the run's first point.
	Seconds []float64 `json:"seconds"`
	// Latency maps a time trend to its avg, p95 and p99 per interval, in
	// milliseconds; null where the interval had no samples.
	Latency map[string]map[string][]*float64 `json:"latency"`
	// Throughput maps a counter to its sum per interval per second.
	Throughput map[string][]float64 `json:"throughput"`
}

// buildSeries extracts the charts' data from the registry's time series.
// Counters of bytes are left out of throughput: they would flatten the
// other lines.
func buildSeries(reg *metrics.Registry) seriesData {
	pts := reg.Series()
	d := seriesData{Latency: map[string]map[string][]*float64{}, Throughput: map[string][]float64{}}
	if len(pts) == 0 {
		return d
	}
	// The first interval is taken to be as long as the second, or 1s.
	first := 1.0
	if len(pts) > 1 {
		first = pts[1].T.Sub(pts[0].T).Seconds()
	}
	prev := pts[0].T.Add(-secondsDuration(first))
	start := prev
	var trends, counters []string
	for _, name := range reg.Names() {
		m := reg.Lookup(name)
		switch {
		case m.Type == metrics.Trend && m.IsTime:
			trends = append(trends, name)
		case m.Type == metrics.Counter && !isBytes(name):
			counters = append(counters, name)
		}
	}
	for _, p := range pts {
		d.Seconds = append(d.Seconds, round3(p.T.Sub(start).Seconds()))
		dt := p.T.Sub(prev).Seconds()
		prev = p.T
		for _, name := range trends {
			v := p.Values[name]
			if d.Latency[name] == nil {
				d.Latency[name] = map[string][]*float64{}
			}
			for _, k := range []string{"avg", "p95", "p99"} {
				var x *float64
				if v["count"] > 0 {
					y := round3(v[k])
					x = &y
				}
				d.Latency[name][k] = append(d.Latency[name][k], x)
			}
		}
		for _, name := range counters {
			rate := 0.0
			if dt > 0 {
				rate = round3(p.Values[name]["count"] / dt)
			}
			d.Throughput[name] = append(d.Throughput[name], rate)
		}
	}
	// Trends and counters that never had a sample are not charted.
	for name, ks := range d.Latency {
		if !slices.ContainsFunc(ks["avg"], func(x *float64) bool { return x != nil }) {
			delete(d.Latency, name)
		}
	}
	for name, vs := range d.Throughput {
		if !slices.ContainsFunc(vs, func(x float64) bool { return x != 0 }) {
			delete(d.Throughput, name)
		}
	}
	return d
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// charts lays out a latency chart per time trend and one throughput chart.
func charts(d seriesData) []chart {
	var out []chart
	names := make([]string, 0, len(d.Latency))
	for n := range d.Latency {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		var ls []series
		for _, k := range []string{"avg", "p95", "p99"} {
			ls = append(ls, series{name: k, ys: d.Latency[n][k]})
		}
		out = append(out, layout("Latency: "+n, d.Seconds, ls, fmtMs))
	}
	if len(d.Throughput) > 0 {
		var ls []series
		names = names[:0]
		for n := range d.Throughput {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			ys := make([]*float64, len(d.Throughput[n]))
			for i := range ys {
				ys[i] = &d.Throughput[n][i]
			}
			ls = append(ls, series{name: n, ys: ys})
		}
		out = append(out, layout("Throughput (per second)", d.Seconds, ls, func(v float64) string { return fmtNum(v) + "/s" }))
	}
	return out
}

type series struct {
	name string
	ys   []*float64
}

func layout(title string, xs []float64, ss []series, label func(float64) string) chart {
	c := chart{
		Title: title, Width: chartW, Height: chartH,
		Left: padLeft, Right: chartW - padRight, Top: padTop, Bottom: chartH - padB,
	}
	maxX := 1.0
	if len(xs) > 0 {
		maxX = max(xs[len(xs)-1], 1)
	}
	maxY := 0.0
	for _, s := range ss {
		for _, y := range s.ys {
			if y != nil {
				maxY = max(maxY, *y)
			}
		}
	}
	maxY = niceCeil(maxY)
	px := func(x float64) float64 { return float64(c.Left) + x/maxX*float64(c.Right-c.Left) }
	py := func(y float64) float64 { return float64(c.Bottom) - y/maxY*float64(c.Bottom-c.Top) }
	for i := 0; i <= 4; i++ {
		y := maxY * float64(i) / 4
		c.YTicks = append(c.YTicks, tick{Pos: round1(py(y)), Label: label(y)})
	}
	step := niceCeil(maxX / 6)
	for x := 0.0; x <= maxX+1e-9; x += step {
		c.XTicks = append(c.XTicks, tick{Pos: round1(px(x)), Label: fmtNum(x) + "s"})
	}
	for i, s := range ss {
		var b strings.Builder
		for j, y := range s.ys {
			if y == nil || j >= len(xs) {
				continue
			}
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.FormatFloat(round1(px(xs[j])), 'f', -1, 64))
			b.WriteByte(',')
			b.WriteString(strconv.FormatFloat(round1(py(*y)), 'f', -1, 64))
		}
		c.Lines = append(c.Lines, line{Name: s.name, Color: palette[i%len(palette)], Points: b.String()})
	}
	return c
}

func secondsDuration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// niceCeil returns the smallest of 1, 2, 2.5 and 5 times a power of ten
// that is at least v (1 for v ≤ 0).
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v*(1-1e-12) {
			return m * p
		}
	}
	return 10 * p
}
