package metrics

import (
	"fmt"
	"maps"
	"slices"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Snapshot is the serializable state of a Registry: what an agent sends
// its coordinator at the end of a distributed run.
type Snapshot struct {
	Metrics []MetricSnapshot `json:"metrics"`
	Series  []Point          `json:"series,omitempty"`
}

// MetricSnapshot is one metric in a Snapshot.
type MetricSnapshot struct {
	Name   string         `json:"name"`
	Type   string         `json:"type"`
	IsTime bool           `json:"is_time,omitempty"`
	Sinks  []SinkSnapshot `json:"sinks"`
}

// SinkSnapshot is one tag set of a metric.
type SinkSnapshot struct {
	Tags  Tags                   `json:"tags,omitempty"`
	Sum   float64                `json:"sum"`
	Total int64                  `json:"total"`
	Min   float64                `json:"min,omitempty"`
	Max   float64                `json:"max,omitempty"`
	Hist  *hdrhistogram.Snapshot `json:"hist,omitempty"`
}

// Snapshot returns the registry's state.
func (r *Registry) Snapshot() Snapshot {
	r.mu.Lock()
	names := slices.Sorted(maps.Keys(r.metrics))
	ms := make([]*Metric, len(names))
	for i, n := range names {
		ms[i] = r.metrics[n]
	}
	series := slices.Clone(r.series)
	r.mu.Unlock()
	snap := Snapshot{Series: series}
	for _, m := range ms {
		out := MetricSnapshot{Name: m.Name, Type: m.Type.String(), IsTime: m.IsTime}
		m.mu.Lock()
		keys := slices.Sorted(maps.Keys(m.sinks))
		sinks := make([]*sink, len(keys))
		for i, k := range keys {
			sinks[i] = m.sinks[k]
		}
		m.mu.Unlock()
		for _, s := range sinks {
			s.mu.Lock()
			ss := SinkSnapshot{Tags: maps.Clone(s.tags), Sum: s.sum, Total: s.total, Min: s.min, Max: s.max}
			if s.h != nil {
				ss.Hist = s.h.Export()
			}
			s.mu.Unlock()
			out.Sinks = append(out.Sinks, ss)
		}
		snap.Metrics = append(snap.Metrics, out)
	}
	return snap
}

// Merge adds snap into the registry, as if its samples had been recorded
// here: counters and rates add, trends merge their histograms, and a
// gauge's values add (each agent's VUs add up to the run's VUs). A metric
// whose type differs from the registry's is an error, and nothing of that
// metric is merged.
func (r *Registry) Merge(snap Snapshot) error {
	for _, ms := range snap.Metrics {
		typ, err := ParseType(ms.Type)
		if err != nil {
			return err
		}
		if m := r.Lookup(ms.Name); m != nil && (m.Type != typ || m.IsTime != ms.IsTime) {
			return fmt.Errorf("metrics: merge %s: a %s here, a %s in the snapshot", ms.Name, m.Type, typ)
		}
		m := r.get(ms.Name, typ, ms.IsTime)
		for _, ss := range ms.Sinks {
			if typ == Trend && ss.Hist == nil {
				return fmt.Errorf("metrics: merge %s: a trend without a histogram", ms.Name)
			}
			h := m.With(ss.Tags)
			s := h.s
			s.mu.Lock()
			switch typ {
			case Counter, Rate:
				s.sum += ss.Sum
				s.total += ss.Total
			case Gauge:
				if ss.Total > 0 {
					widen(&s.min, &s.max, s.total == 0, ss.Min, ss.Max)
					s.sum += ss.Sum
					s.total += ss.Total
				}
			case Trend:
				s.h.Merge(hdrhistogram.Import(ss.Hist))
				if ss.Total > 0 {
					widen(&s.min, &s.max, s.total == 0, ss.Min, ss.Max)
					s.total += ss.Total
				}
			}
			s.mu.Unlock()
		}
	}
	return nil
}
