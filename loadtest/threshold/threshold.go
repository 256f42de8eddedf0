package threshold

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/partyline/partyline/loadtest/metrics"
)

// Threshold is one expression on one metric key.
type Threshold struct {
	// Key is the metric key as written, e.g. "ws_fanout_latency{scenario:chat}".
	Key string
	// Metric and Tags are the key parsed: the metric name and the tag
	// filter selecting the sub-metric (nil for the whole metric).
	Metric string
	Tags   metrics.Tags
	// Source is the expression as written, e.g. "p(95) < 200"; summaries
	// and exports show it as is, like k6.
	Source string
	Expr   Expr
	// AbortOnFail asks for the run to stop when the threshold fails, but
	// not before the run has lasted DelayAbortEval (zero: at once).
	AbortOnFail    bool
	DelayAbortEval time.Duration
}

// Set is every threshold of a run, ordered by key then as written.
type Set struct {
	Thresholds []Threshold
}

// object is the long form of a threshold.
type object struct {
	Threshold      *string `json:"threshold"`
	AbortOnFail    bool    `json:"abortOnFail"`
	DelayAbortEval string  `json:"delayAbortEval"`
}

// Parse parses the "thresholds" object of a run's configuration: for each
// metric key, an array of expressions, each a string or an object with
// threshold, abortOnFail and delayAbortEval. Every error names the key and
// the expression, and wraps ErrSyntax.
func Parse(cfg map[string]json.RawMessage) (*Set, error) {
	set := &Set{}
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(cfg)) {
		ts, err := parseEntry(key, cfg[key])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		set.Thresholds = append(set.Thresholds, ts...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return set, nil
}

func parseEntry(key string, raw json.RawMessage) ([]Threshold, error) {
	name, tags, err := ParseKey(key)
	if err != nil {
		return nil, fmt.Errorf("threshold: %w", err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return nil, fmt.Errorf("threshold: %s: want an array of expressions or objects: %w", key, ErrSyntax)
	}
	var out []Threshold
	for i, item := range items {
		t := Threshold{Key: key, Metric: name, Tags: tags}
		item = bytes.TrimSpace(item)
		if len(item) > 0 && item[0] == '{' {
			var o object
			dec := json.NewDecoder(bytes.NewReader(item))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&o); err != nil {
				return nil, fmt.Errorf("threshold: %s[%d]: %v: %w", key, i, err, ErrSyntax)
			}
			if o.Threshold == nil {
				return nil, fmt.Errorf("threshold: %s[%d]: object without \"threshold\": %w", key, i, ErrSyntax)
			}
			t.Source, t.AbortOnFail = *o.Threshold, o.AbortOnFail
			if o.DelayAbortEval != "" {
				d, err := time.ParseDuration(o.DelayAbortEval)
				if err != nil || d < 0 {
					return nil, fmt.Errorf("threshold: %s %q: delayAbortEval %q is not a duration such as \"10s\": %w",
						key, t.Source, o.DelayAbortEval, ErrSyntax)
				}
				t.DelayAbortEval = d
			}
		} else if err := json.Unmarshal(item, &t.Source); err != nil {
			return nil, fmt.Errorf("threshold: %s[%d]: want a string or an object: %w", key, i, ErrSyntax)
		}
		t.Expr, err = ParseExpr(t.Source)
		if err != nil {
			return nil, fmt.Errorf("threshold: %s: %w", key, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// Result is one threshold evaluated.
type Result struct {
	Threshold
	// Observed is the aggregation's value, in the metric's unit
	// (milliseconds for time trends).
	Observed float64
	// Pass reports whether the expression held.
	Pass bool
	// Abort reports that the threshold failed with abortOnFail and the run
	// has lasted at least its delayAbortEval: the runner should stop.
	Abort bool
	// NoData reports that the (sub-)metric had no samples; Missing that
	// the metric is not registered, so it was not evaluated.
	NoData, Missing bool
	// Type and IsTime are the metric's, when it is registered.
	Type   metrics.Type
	IsTime bool
	// Err is why the threshold could not be evaluated (ErrAggregation);
	// such a result fails.
	Err error
}

// Evaluate evaluates every threshold against reg, elapsed into the run,
// in the Set's order.
func (s *Set) Evaluate(reg *metrics.Registry, elapsed time.Duration) []Result {
	out := make([]Result, len(s.Thresholds))
	for i, t := range s.Thresholds {
		out[i] = t.evaluate(reg, elapsed)
	}
	return out
}

func (t Threshold) evaluate(reg *metrics.Registry, elapsed time.Duration) Result {
	r := Result{Threshold: t}
	m := reg.Lookup(t.Metric)
	if m == nil {
		r.Pass, r.NoData, r.Missing = true, true, true
		return r
	}
	r.Type, r.IsTime = m.Type, m.IsTime
	if !t.Expr.Agg.ValidFor(m.Type) {
		r.Err = t.typeError(m.Type)
		return r
	}
	st := m.Stats(t.Tags, elapsed)
	r.NoData = st.Count == 0
	r.Observed = t.Expr.Agg.Of(st)
	r.Pass = t.Expr.Op.Compare(r.Observed, t.Expr.Value)
	r.Abort = !r.Pass && t.AbortOnFail && elapsed >= t.DelayAbortEval
	return r
}

func (t Threshold) typeError(typ metrics.Type) error {
	var valid []string
	for _, m := range validFor[typ] {
		valid = append(valid, Aggregation{Method: m, P: 95}.String())
	}
	return fmt.Errorf("threshold: %s %q: %s is a %v, which has %v, not %s: %w",
		t.Key, t.Source, t.Metric, typ, valid, t.Expr.Agg.Method.name(), ErrAggregation)
}

func (m Method) name() string {
	if m == Percentile {
		return "p(N)"
	}
	return methodNames[m]
}

// Check reports the thresholds that cannot be evaluated against reg: a
// metric never registered (ErrUnknownMetric) or an aggregation its type
// does not have (ErrAggregation). The runner calls it at the end of the
// run, when every metric the run records has been registered.
func (s *Set) Check(reg *metrics.Registry) error {
	var errs []error
	for _, t := range s.Thresholds {
		m := reg.Lookup(t.Metric)
		switch {
		case m == nil:
			errs = append(errs, fmt.Errorf("threshold: %s %q: no metric named %s: %w", t.Key, t.Source, t.Metric, ErrUnknownMetric))
		case !t.Expr.Agg.ValidFor(m.Type):
			errs = append(errs, t.typeError(m.Type))
		}
	}
	return errors.Join(errs...)
}

// Failed reports whether any result failed.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if !r.Pass {
			return true
		}
	}
	return false
}

// ShouldAbort returns the results that ask for the run to stop now.
func ShouldAbort(rs []Result) []Result {
	var out []Result
	for _, r := range rs {
		if r.Abort {
			out = append(out, r)
		}
	}
	return out
}
