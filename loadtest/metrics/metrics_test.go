package metrics

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestTypes(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("reqs")
	c.With(Tags{"scenario": "a"}).Add(3)
	c.With(Tags{"scenario": "b"}).Add(2)
	if got := c.Stats(nil, 2*time.Second); got.Count != 5 || got.PerSecond != 2.5 {
		t.Errorf("counter stats = %+v, want count 5 and 2.5/s", got)
	}
	if got := c.Stats(Tags{"scenario": "a"}, time.Second); got.Count != 3 {
		t.Errorf("counter{scenario:a} = %v, want 3", got.Count)
	}

	g := r.Gauge("vus")
	g.With(nil).Set(4)
	g.With(nil).Set(10)
	g.With(nil).Set(7)
	if got := g.Stats(nil, 0); got.Value != 7 || got.Min != 4 || got.Max != 10 {
		t.Errorf("gauge stats = %+v, want value 7, min 4, max 10", got)
	}

	rt := r.Rate("checks")
	for i := range 10 {
		rt.With(Tags{"check": "ok"}).AddBool(i < 9)
	}
	if got := rt.Stats(nil, 0); got.Passes != 9 || got.Fails != 1 || got.Rate != 0.9 || got.Count != 10 {
		t.Errorf("rate stats = %+v, want 9 passes, 1 fail, rate 0.9", got)
	}

	tr := r.Trend("lat", true)
	for i := 1; i <= 100; i++ {
		tr.With(nil).Observe(time.Duration(i) * time.Millisecond)
	}
	got := tr.Stats(nil, 0)
	approx := func(a, b float64) bool { return a > b*0.99 && a < b*1.01 }
	if got.Count != 100 || got.Min != 1 || got.Max != 100 || !approx(got.Avg, 50.5) ||
		!approx(got.Med, 50) || !approx(got.Percentile(95), 95) {
		t.Errorf("trend stats = %+v p95=%v, want 1..100 ms", got, got.Percentile(95))
	}

	v := r.Trend("loss", false)
	v.With(nil).ObserveValue(0.25)
	if got := v.Stats(nil, 0); !approx(got.Max, 0.25) {
		t.Errorf("value trend max = %v, want 0.25", got.Max)
	}
}

func TestTypeMismatchPanics(t *testing.T) {
	r := NewRegistry()
	r.Counter("x")
	defer func() {
		if recover() == nil {
			t.Error("asking for a counter as a trend did not panic")
		}
	}()
	r.Trend("x", true)
}

// TestMergeEqualsOneRegistry is the distributed run's promise: merging the
// snapshots of two agents gives the same summary as one registry that saw
// every sample.
func TestMergeEqualsOneRegistry(t *testing.T) {
	all, a, b := NewRegistry(), NewRegistry(), NewRegistry()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		agent := a
		if i%3 == 0 {
			agent = b
		}
		tags := Tags{"scenario": []string{"chat", "idle"}[i%2]}
		d := time.Duration(rng.ExpFloat64() * float64(20*time.Millisecond))
		ok := rng.IntN(10) > 0
		for _, reg := range []*Registry{all, agent} {
			reg.Trend("ws_fanout_latency", true).With(tags).Observe(d)
			reg.Counter("ws_msgs_received").With(tags).Add(1)
			reg.Rate("checks").With(tags).AddBool(ok)
		}
	}
	a.Gauge("vus").With(nil).Set(3)
	b.Gauge("vus").With(nil).Set(4)

	// Through JSON, as between processes.
	merged := NewRegistry()
	for _, reg := range []*Registry{a, b} {
		raw, err := json.Marshal(reg.Snapshot())
		if err != nil {
			t.Fatal(err)
		}
		var snap Snapshot
		if err := json.Unmarshal(raw, &snap); err != nil {
			t.Fatal(err)
		}
		if err := merged.Merge(snap); err != nil {
			t.Fatalf("Merge: %v", err)
		}
	}
	opt := cmpopts.IgnoreUnexported(Stats{})
	for _, name := range []string{"ws_fanout_latency", "ws_msgs_received", "checks"} {
		for _, f := range []Tags{nil, {"scenario": "chat"}} {
			want := all.Lookup(name).Stats(f, time.Second)
			got := merged.Lookup(name).Stats(f, time.Second)
			if diff := cmp.Diff(want, got, opt); diff != "" {
				t.Errorf("%s%v merged differs (-one +merged):\n%s", name, f, diff)
			}
			for _, p := range []float64{90, 95, 99, 99.9} {
				if w, g := want.Percentile(p), got.Percentile(p); w != g {
					t.Errorf("%s p(%v): one %v, merged %v", name, p, w, g)
				}
			}
		}
	}
	if got := merged.Lookup("vus").Stats(nil, 0).Value; got != 7 {
		t.Errorf("merged vus = %v, want 7", got)
	}

	bad := Snapshot{Metrics: []MetricSnapshot{{Name: "checks", Type: "trend", Sinks: []SinkSnapshot{{}}}}}
	if err := merged.Merge(bad); err == nil {
		t.Error("merging a metric under another type succeeded")
	}
}

func TestTick(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("n").With(nil)
	tr := r.Trend("lat", true).With(nil)
	c.Add(2)
	tr.Observe(10 * time.Millisecond)
	p := r.Tick(time.Unix(1, 0))
	if p.Values["n"]["count"] != 2 || p.Values["lat"]["count"] != 1 {
		t.Errorf("first point = %v", p.Values)
	}
	c.Add(1)
	p = r.Tick(time.Unix(2, 0))
	if p.Values["n"]["count"] != 1 || p.Values["lat"]["count"] != 0 {
		t.Errorf("second point = %v, want the interval only", p.Values)
	}
	if n := len(r.Series()); n != 2 {
		t.Errorf("series has %d points, want 2", n)
	}
	if got := r.Lookup("n").Stats(nil, 0).Count; got != 3 {
		t.Errorf("total after ticks = %v, want 3", got)
	}
}

func TestOnSample(t *testing.T) {
	r := NewRegistry()
	var got []string
	r.OnSample(func(m string, tags Tags, v float64, _ time.Time) { got = append(got, m+tags.key()) })
	r.Counter("a").With(Tags{"k": "v"}).Add(1)
	if diff := cmp.Diff([]string{"ak=v"}, got); diff != "" {
		t.Errorf("samples (-want +got):\n%s", diff)
	}
}
