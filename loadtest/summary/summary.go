package summary

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/partyline/partyline/loadtest/metrics"
	"github.com/partyline/partyline/loadtest/threshold"
)

// Input is what a summary is made from.
type Input struct {
	// Registry holds the run's metrics. Required.
	Registry *metrics.Registry
	// Thresholds are the run's last evaluation (threshold.Set.Evaluate at
	// the end of the run). Empty: no thresholds.
	Thresholds []threshold.Result
	// Elapsed is the run's duration, for per-second rates.
	Elapsed time.Duration
	// Scenarios describe the run for the header. Empty: no header.
	Scenarios []Scenario
	// Title heads the HTML report. Empty: "partyline load test".
	Title string
}

// Scenario is one scenario of the run, as the header shows it.
type Scenario struct {
	Name     string
	Executor string
	VUs      int
	Duration time.Duration
}

// checksMetric is the Rate whose "check" tag names each check.
const (
	checksMetric = "checks"
	checkTag     = "check"
)

// sectionOrder is the order of the summary's sections; a metric goes to
// the first whose match accepts its name.
var sectionOrder = []struct {
	title string
	match func(string) bool
}{
	{"HTTP", prefix("http_")},
	{"EXECUTION", oneOf("iterations", "iteration_duration", "dropped_iterations", "vus", "vus_max")},
	{"NETWORK", oneOf("data_received", "data_sent")},
	{"WEBSOCKET", prefix("ws_")},
	{"RECOVERY", prefix("recovery_")},
	{"PRESENCE", prefix("presence_")},
	{"VOICE", prefix("voice_")},
	{"CUSTOM", func(string) bool { return true }},
}

func prefix(p string) func(string) bool {
	return func(s string) bool { return strings.HasPrefix(s, p) }
}

func oneOf(names ...string) func(string) bool {
	return func(s string) bool { return slices.Contains(names, s) }
}

func sectionOf(name string) string {
	for _, s := range sectionOrder {
		if s.match(name) {
			return s.title
		}
	}
	return "CUSTOM"
}

// entry is one metric or sub-metric with its aggregate.
type entry struct {
	// Key is the name, or for a sub-metric the threshold key as written.
	Key    string
	Metric string
	Tags   metrics.Tags // nil for the whole metric
	Stats  metrics.Stats
	// Results are the thresholds on exactly this key.
	Results []threshold.Result
}

// section is a titled group of metrics; each metric is followed by its
// sub-metrics.
type section struct {
	Title   string
	Entries []entry
}

// check is one named check.
type check struct {
	Name          string
	Passes, Fails int64
}

// model is the summary, shared by Text, Export and HTML.
type model struct {
	Sections []section
	Checks   []check
	// ChecksTotal is the checks metric as a whole, nil without checks.
	ChecksTotal *entry
	// ByKey groups the threshold results by key, in order of first
	// appearance.
	ByKey [][]threshold.Result
}

func build(in Input) model {
	var md model
	resultsOf := map[string][]threshold.Result{}
	subKeys := map[string][]string{} // metric -> sub-metric keys
	for _, r := range in.Thresholds {
		if _, seen := resultsOf[r.Key]; !seen {
			if len(r.Tags) > 0 {
				subKeys[r.Metric] = append(subKeys[r.Metric], r.Key)
			}
			md.ByKey = append(md.ByKey, nil)
		}
		resultsOf[r.Key] = append(resultsOf[r.Key], r)
	}
	for i, k := range orderedKeys(in.Thresholds) {
		md.ByKey[i] = resultsOf[k]
	}

	bySection := map[string][]entry{}
	for _, name := range in.Registry.Names() {
		m := in.Registry.Lookup(name)
		e := entry{Key: name, Metric: name, Stats: m.Stats(nil, in.Elapsed), Results: resultsOf[name]}
		if e.Stats.Count == 0 && len(e.Results) == 0 && len(subKeys[name]) == 0 {
			continue
		}
		if name == checksMetric && m.Type == metrics.Rate {
			md.ChecksTotal = &e
			md.Checks = checksOf(m)
			continue
		}
		sec := sectionOf(name)
		bySection[sec] = append(bySection[sec], e)
		for _, k := range subKeys[name] {
			rs := resultsOf[k]
			bySection[sec] = append(bySection[sec], entry{
				Key: k, Metric: name, Tags: rs[0].Tags, Stats: m.Stats(rs[0].Tags, in.Elapsed), Results: rs,
			})
		}
	}
	for _, s := range sectionOrder {
		if es := bySection[s.title]; len(es) > 0 {
			md.Sections = append(md.Sections, section{Title: s.title, Entries: es})
		}
	}
	return md
}

func orderedKeys(rs []threshold.Result) []string {
	var keys []string
	for _, r := range rs {
		if !slices.Contains(keys, r.Key) {
			keys = append(keys, r.Key)
		}
	}
	return keys
}

// checksOf returns each check's passes and fails, sorted by name.
func checksOf(m *metrics.Metric) []check {
	names := map[string]bool{}
	for _, tags := range m.TagSets() {
		if n, ok := tags[checkTag]; ok {
			names[n] = true
		}
	}
	var out []check
	for _, n := range slices.Sorted(maps.Keys(names)) {
		st := m.Stats(metrics.Tags{checkTag: n}, 0)
		out = append(out, check{Name: n, Passes: st.Passes, Fails: st.Fails})
	}
	return out
}

// tagLabel shows a sub-metric's filter as k6 does: "{ scenario:chat }".
func tagLabel(tags metrics.Tags) string {
	parts := make([]string, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		parts = append(parts, k+":"+tags[k])
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}
