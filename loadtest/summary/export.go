package summary

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	"github.com/partyline/partyline/loadtest/metrics"
	"github.com/partyline/partyline/loadtest/threshold"
)

// Export writes the --summary-export JSON in k6's legacy shape:
//
//	{"metrics": {
//	   "<trend>":   {"avg","min","med","max","p(90)","p(95)", "thresholds": {"p(95)<200": false}},
//	   "<counter>": {"count","rate"},
//	   "<rate>":    {"passes","fails","value"},
//	   "<gauge>":   {"value","min","max"}},
//	 "root_group": {"name":"","path":"","id":…,"groups":{},"checks":{"<name>":{"name","path","id","passes","fails"}}},
//	 "state": {"testRunDurationMs": …}}
//
// A sub-metric named in a threshold is a metric of its own, under its key
// as written ("ws_fanout_latency{scenario:chat}"). As in k6, a
// threshold's boolean is true when the threshold failed. Times are in
// milliseconds.
func Export(w io.Writer, in Input) error {
	md := build(in)
	ms := map[string]map[string]any{}
	add := func(e entry) {
		v := exportValues(e.Stats)
		if len(e.Results) > 0 {
			th := map[string]bool{}
			for _, r := range e.Results {
				th[r.Source] = !r.Pass
			}
			v["thresholds"] = th
		}
		ms[e.Key] = v
	}
	if md.ChecksTotal != nil {
		add(*md.ChecksTotal)
	}
	for _, s := range md.Sections {
		for _, e := range s.Entries {
			add(e)
		}
	}
	checks := map[string]any{}
	for _, c := range md.Checks {
		path := "::" + c.Name
		checks[c.Name] = map[string]any{
			"name": c.Name, "path": path, "id": groupID(path), "passes": c.Passes, "fails": c.Fails,
		}
	}
	out := map[string]any{
		"metrics": ms,
		"root_group": map[string]any{
			"name": "", "path": "", "id": groupID(""), "groups": map[string]any{}, "checks": checks,
		},
		"state": map[string]any{"testRunDurationMs": float64(in.Elapsed.Microseconds()) / 1000},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("summary: write export: %w", err)
	}
	return nil
}

// groupID is a group's or check's id in k6's export: the MD5 of its path.
func groupID(path string) string {
	sum := md5.Sum([]byte(path))
	return hex.EncodeToString(sum[:])
}

func exportValues(st metrics.Stats) map[string]any {
	switch st.Type {
	case metrics.Trend:
		v := map[string]any{"avg": st.Avg, "min": st.Min, "med": st.Med, "max": st.Max}
		for _, p := range trendPercentiles {
			v[threshold.Aggregation{Method: threshold.Percentile, P: p}.String()] = st.Percentile(p)
		}
		return v
	case metrics.Counter:
		return map[string]any{"count": st.Count, "rate": st.PerSecond}
	case metrics.Rate:
		return map[string]any{"passes": st.Passes, "fails": st.Fails, "value": st.Rate}
	case metrics.Gauge:
		return map[string]any{"value": st.Value, "min": st.Min, "max": st.Max}
	}
	return map[string]any{}
}
