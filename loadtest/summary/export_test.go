package summary

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExport(t *testing.T) {
	var b bytes.Buffer
	if err := Export(&b, fixture(t)); err != nil {
		t.Fatal(err)
	}
	golden(t, "export.json", b.Bytes())

	var got struct {
		Metrics   map[string]map[string]any `json:"metrics"`
		RootGroup struct {
			Name, Path, ID string
			Groups         map[string]any
			Checks         map[string]struct {
				Name, Path, ID string
				Passes, Fails  int64
			}
		} `json:"root_group"`
		State struct {
			TestRunDurationMs float64 `json:"testRunDurationMs"`
		} `json:"state"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("export is not JSON: %v", err)
	}
	keys := func(m map[string]any) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		return out
	}
	sortStrings := cmp.Transformer("sort", func(in []string) []string {
		out := append([]string(nil), in...)
		for i := range out {
			for j := i + 1; j < len(out); j++ {
				if out[j] < out[i] {
					out[i], out[j] = out[j], out[i]
				}
			}
		}
		return out
	})
	shapes := map[string][]string{
		"http_req_duration":                         {"avg", "min", "med", "max", "p(90)", "p(95)", "thresholds"},
		"http_req_duration{expected_response:true}": {"avg", "min", "med", "max", "p(90)", "p(95)", "thresholds"},
		"iteration_duration":                        {"avg", "min", "med", "max", "p(90)", "p(95)"},
		"http_reqs":                                 {"count", "rate"},
		"recovery_gaps":                             {"count", "rate", "thresholds"},
		"checks":                                    {"passes", "fails", "value", "thresholds"},
		"ws_reconnect_failed":                       {"passes", "fails", "value"},
		"vus":                                       {"value", "min", "max", "thresholds"},
	}
	for name, want := range shapes {
		if diff := cmp.Diff(want, keys(got.Metrics[name]), sortStrings); diff != "" {
			t.Errorf("metrics[%q] keys (-want +got):\n%s", name, diff)
		}
	}
	if _, ok := got.Metrics["never_used"]; ok {
		t.Error("a metric without samples or thresholds is exported")
	}
	// k6's legacy export: true means the threshold failed.
	wantTh := map[string]map[string]any{
		"http_req_duration": {"p(95)<200": false, "avg<=100": true},
		"checks":            {"rate>0.99": true},
		"recovery_gaps":     {"count==0": false},
	}
	for name, want := range wantTh {
		if diff := cmp.Diff(want, got.Metrics[name]["thresholds"]); diff != "" {
			t.Errorf("metrics[%q].thresholds (-want +got):\n%s", name, diff)
		}
	}
	if c := got.Metrics["checks"]; c["passes"] != 39.0 || c["fails"] != 1.0 || c["value"] != 0.975 {
		t.Errorf("checks = %v, want 39 passes, 1 fail, value 0.975", c)
	}
	if c := got.Metrics["http_reqs"]; c["count"] != 204.0 || c["rate"] != 10.2 {
		t.Errorf("http_reqs = %v, want count 204, rate 10.2", c)
	}
	if g := got.Metrics["vus"]; g["value"] != 20.0 || g["min"] != 5.0 || g["max"] != 20.0 {
		t.Errorf("vus = %v, want 20 in 5..20", g)
	}
	if got.State.TestRunDurationMs != 20000 {
		t.Errorf("testRunDurationMs = %v, want 20000", got.State.TestRunDurationMs)
	}
	welcome := got.RootGroup.Checks["got welcome"]
	if welcome.Name != "got welcome" || welcome.Path != "::got welcome" || welcome.Passes != 19 || welcome.Fails != 1 || len(welcome.ID) != 32 {
		t.Errorf("root_group.checks[got welcome] = %+v", welcome)
	}
	if got.RootGroup.ID != "d41d8cd98f00b204e9800998ecf8427e" || got.RootGroup.Groups == nil {
		t.Errorf("root_group = %+v, want the empty path's id and a groups object", got.RootGroup)
	}
}
