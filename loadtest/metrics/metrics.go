package metrics

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Type is a metric's kind, with k6's names.
type Type int

// Metric types.
const (
	// Counter sums what is added; its rate is the sum per second of the run.
	Counter Type = iota + 1
	// Gauge keeps the last value set, with the minimum and maximum.
	Gauge
	// Rate counts how many of its boolean samples were true.
	Rate
	// Trend keeps the distribution of its samples in an HDR histogram.
	Trend
)

func (t Type) String() string {
	switch t {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case Rate:
		return "rate"
	case Trend:
		return "trend"
	}
	return "unknown"
}

// ParseType is the inverse of Type.String.
func ParseType(s string) (Type, error) {
	for t := Counter; t <= Trend; t++ {
		if t.String() == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("metrics: unknown metric type %q", s)
}

// Trend samples are stored as integers in thousandths of the sample's unit:
// microseconds for time trends (whose unit is the millisecond), and 0.001
// for the others. The histogram covers 0 to maxUnits with 3 significant
// digits.
const (
	unitsPerValue = 1000
	maxUnits      = int64(24 * time.Hour / time.Microsecond)
	sigFigs       = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(0, maxUnits, sigFigs) }

// Tags are a sample's labels, such as scenario and code.
type Tags map[string]string

// key is the canonical form of a tag set: sorted k=v pairs.
func (t Tags) key() string {
	if len(t) == 0 {
		return ""
	}
	ks := slices.Sorted(maps.Keys(t))
	var b strings.Builder
	for i, k := range ks {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(t[k])
	}
	return b.String()
}

// Matches reports whether t has every tag of filter with the same value.
func (t Tags) Matches(filter Tags) bool {
	for k, v := range filter {
		if got, ok := t[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// SampleFunc receives every sample as it is recorded, for --out json.
// It must not block for long and must be safe for concurrent use.
type SampleFunc func(metric string, tags Tags, value float64, at time.Time)

// Registry holds a run's metrics.
type Registry struct {
	mu       sync.Mutex
	metrics  map[string]*Metric
	series   []Point
	onSample SampleFunc
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{metrics: map[string]*Metric{}} }

// OnSample sets f to receive every sample from now on. Call it before the
// run starts.
func (r *Registry) OnSample(f SampleFunc) {
	r.mu.Lock()
	r.onSample = f
	r.mu.Unlock()
}

// Counter returns the counter named name, creating it.
func (r *Registry) Counter(name string) *Metric { return r.get(name, Counter, false) }

// Gauge returns the gauge named name, creating it.
func (r *Registry) Gauge(name string) *Metric { return r.get(name, Gauge, false) }

// Rate returns the rate named name, creating it.
func (r *Registry) Rate(name string) *Metric { return r.get(name, Rate, false) }

// Trend returns the trend named name, creating it. A time trend takes
// durations and shows milliseconds; another takes plain values.
func (r *Registry) Trend(name string, isTime bool) *Metric { return r.get(name, Trend, isTime) }

// get returns the named metric. Asking for an existing name with another
// type is a programming error and panics.
func (r *Registry) get(name string, typ Type, isTime bool) *Metric {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.metrics[name]; m != nil {
		if m.Type != typ || m.IsTime != isTime {
			panic(fmt.Sprintf("metrics: %s is a %v, asked for a %v", name, m.Type, typ))
		}
		return m
	}
	m := &Metric{Name: name, Type: typ, IsTime: isTime, reg: r, sinks: map[string]*sink{}}
	r.metrics[name] = m
	return m
}

// Lookup returns the metric named name, or nil.
func (r *Registry) Lookup(name string) *Metric {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.metrics[name]
}

// Names returns the names of every metric, sorted.
func (r *Registry) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.metrics))
}

func (r *Registry) sampleFunc() SampleFunc {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.onSample
}

// Metric is one named metric with a sink per tag set.
type Metric struct {
	Name   string
	Type   Type
	IsTime bool

	reg   *Registry
	mu    sync.Mutex
	sinks map[string]*sink
}

// With returns the handle recording samples with tags. Handles are cheap
// to keep; keep one per tag set on hot paths.
func (m *Metric) With(tags Tags) *Handle {
	key := tags.key()
	m.mu.Lock()
	s := m.sinks[key]
	if s == nil {
		s = newSink(m.Type, maps.Clone(tags))
		m.sinks[key] = s
	}
	m.mu.Unlock()
	return &Handle{m: m, s: s, onSample: m.reg.sampleFunc()}
}

// Handle records samples into one tag set of one metric.
type Handle struct {
	m        *Metric
	s        *sink
	onSample SampleFunc
}

// Add adds v to a counter.
func (h *Handle) Add(v float64) {
	h.s.mu.Lock()
	h.s.sum += v
	h.s.isum += v
	h.s.total++
	h.s.mu.Unlock()
	h.emit(v)
}

// Set sets a gauge to v.
func (h *Handle) Set(v float64) {
	h.s.mu.Lock()
	widen(&h.s.min, &h.s.max, h.s.total == 0, v, v)
	h.s.sum = v
	h.s.total++
	h.s.mu.Unlock()
	h.emit(v)
}

// AddBool records one sample of a rate.
func (h *Handle) AddBool(ok bool) {
	v := 0.0
	h.s.mu.Lock()
	if ok {
		h.s.sum++
		h.s.isum++
		v = 1
	}
	h.s.total++
	h.s.itotal++
	h.s.mu.Unlock()
	h.emit(v)
}

// Observe records a duration into a time trend.
func (h *Handle) Observe(d time.Duration) {
	h.record(d.Microseconds(), float64(d)/float64(time.Millisecond))
}

// ObserveValue records v into a trend that is not of times.
func (h *Handle) ObserveValue(v float64) {
	h.record(int64(math.Round(v*unitsPerValue)), v)
}

func (h *Handle) record(units int64, v float64) {
	units = min(max(units, 0), maxUnits)
	// The histogram's extremes are bucket edges; the exact ones are kept
	// beside it, in the trend's unit.
	exact := float64(units) / unitsPerValue
	h.s.mu.Lock()
	_ = h.s.h.RecordValue(units)
	_ = h.s.ih.RecordValue(units)
	widen(&h.s.min, &h.s.max, h.s.total == 0, exact, exact)
	h.s.total++
	h.s.mu.Unlock()
	h.emit(v)
}

// widen widens the range [*from, *to] to take in [lo, hi]; when empty is
// true there is no range yet, and it becomes [lo, hi].
func widen(from, to *float64, empty bool, lo, hi float64) {
	if empty || lo < *from {
		*from = lo
	}
	if empty || hi > *to {
		*to = hi
	}
}

func (h *Handle) emit(v float64) {
	if h.onSample != nil {
		h.onSample(h.m.Name, h.s.tags, v, time.Now())
	}
}

// sink is one tag set's state. The meaning of sum and total depends on the
// type: a counter's sum and number of adds, a gauge's last value and number
// of sets, a rate's trues and samples. A trend keeps its samples in h, and
// their number and exact extremes in total, min and max.
type sink struct {
	mu       sync.Mutex
	tags     Tags
	sum      float64
	total    int64
	min, max float64
	h        *hdrhistogram.Histogram
	// interval state for the time series, reset by Tick
	isum   float64
	itotal int64
	ih     *hdrhistogram.Histogram
}

func newSink(t Type, tags Tags) *sink {
	s := &sink{tags: tags}
	if t == Trend {
		s.h, s.ih = newHist(), newHist()
	}
	return s
}

// Stats is a metric's aggregate over the tag sets a filter selects.
type Stats struct {
	Type   Type
	IsTime bool
	// Count is a counter's sum, a rate's number of samples, a trend's
	// number of samples, or a gauge's number of sets.
	Count float64
	// PerSecond is a counter's sum divided by the run's duration.
	PerSecond float64
	// Passes and Fails are a rate's true and false samples; Rate is
	// Passes/(Passes+Fails), 0 without samples.
	Passes, Fails int64
	Rate          float64
	// Value is a gauge's current value, summed over tag sets.
	Value float64
	// Min and Max are a gauge's or a trend's extremes; Avg and Med a trend's.
	Min, Max, Avg, Med float64

	h *hdrhistogram.Histogram
}

// Percentile returns a trend's p-th percentile (0-100), in the trend's
// unit (milliseconds for time trends).
func (s Stats) Percentile(p float64) float64 {
	if s.h == nil || s.h.TotalCount() == 0 {
		return 0
	}
	// The histogram answers with bucket edges; the exact extremes bound
	// them, so p(100) is the max and no percentile passes it.
	v := float64(s.h.ValueAtQuantile(p)) / unitsPerValue
	return min(max(v, s.Min), s.Max)
}

// Stats aggregates the metric's tag sets that match filter (nil: all).
// elapsed is the run's duration so far, for a counter's per-second rate.
func (m *Metric) Stats(filter Tags, elapsed time.Duration) Stats {
	st := Stats{Type: m.Type, IsTime: m.IsTime}
	if m.Type == Trend {
		st.h = newHist()
	}
	m.mu.Lock()
	sinks := slices.Collect(maps.Values(m.sinks))
	m.mu.Unlock()
	seen := false // whether st.Min and st.Max hold a range
	for _, s := range sinks {
		if !s.tags.Matches(filter) {
			continue
		}
		s.mu.Lock()
		switch m.Type {
		case Counter:
			st.Count += s.sum
		case Gauge:
			if s.total > 0 {
				st.Value += s.sum
				widen(&st.Min, &st.Max, !seen, s.min, s.max)
				seen = true
				st.Count += float64(s.total)
			}
		case Rate:
			st.Passes += int64(s.sum)
			st.Fails += s.total - int64(s.sum)
		case Trend:
			st.h.Merge(s.h)
			if s.total > 0 {
				widen(&st.Min, &st.Max, !seen, s.min, s.max)
				seen = true
			}
		}
		s.mu.Unlock()
	}
	switch m.Type {
	case Counter:
		if elapsed > 0 {
			st.PerSecond = st.Count / elapsed.Seconds()
		}
	case Rate:
		st.Count = float64(st.Passes + st.Fails)
		if st.Count > 0 {
			st.Rate = float64(st.Passes) / st.Count
		}
	case Trend:
		if n := st.h.TotalCount(); n > 0 {
			st.Count = float64(n)
			st.Avg = st.h.Mean() / unitsPerValue
			st.Med = st.Percentile(50)
		}
	}
	return st
}

// TagSets returns the tag sets the metric has samples for, sorted by their
// canonical form.
func (m *Metric) TagSets() []Tags {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := slices.Sorted(maps.Keys(m.sinks))
	out := make([]Tags, len(keys))
	for i, k := range keys {
		out[i] = maps.Clone(m.sinks[k].tags)
	}
	return out
}

// Point is one interval of the time series: for each metric (over all its
// tag sets), a counter's sum in the interval, a rate's ratio, a gauge's
// value, and a trend's count, avg, p(95) and p(99).
type Point struct {
	T      time.Time                     `json:"t"`
	Values map[string]map[string]float64 `json:"values"`
}

// Tick closes the current interval of the time series at now and returns
// its point. The runner calls it once a second.
func (r *Registry) Tick(now time.Time) Point {
	p := Point{T: now, Values: map[string]map[string]float64{}}
	r.mu.Lock()
	ms := slices.Collect(maps.Values(r.metrics))
	r.mu.Unlock()
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	for _, m := range ms {
		v := map[string]float64{}
		h := newHist()
		var sum float64
		var total int64
		m.mu.Lock()
		sinks := slices.Collect(maps.Values(m.sinks))
		m.mu.Unlock()
		for _, s := range sinks {
			s.mu.Lock()
			switch m.Type {
			case Counter:
				sum += s.isum
			case Gauge:
				sum += s.sum
			case Rate:
				sum += s.isum
				total += s.itotal
			case Trend:
				h.Merge(s.ih)
				s.ih.Reset()
			}
			s.isum, s.itotal = 0, 0
			s.mu.Unlock()
		}
		switch m.Type {
		case Counter:
			v["count"] = sum
		case Gauge:
			v["value"] = sum
		case Rate:
			if total > 0 {
				v["rate"] = sum / float64(total)
			}
		case Trend:
			v["count"] = float64(h.TotalCount())
			if h.TotalCount() > 0 {
				v["avg"] = h.Mean() / unitsPerValue
				v["p95"] = float64(h.ValueAtQuantile(95)) / unitsPerValue
				v["p99"] = float64(h.ValueAtQuantile(99)) / unitsPerValue
			}
		}
		p.Values[m.Name] = v
	}
	r.mu.Lock()
	r.series = append(r.series, p)
	r.mu.Unlock()
	return p
}

// Series returns the time series recorded by Tick.
func (r *Registry) Series() []Point {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.series)
}
