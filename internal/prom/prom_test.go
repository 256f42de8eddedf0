package prom

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := Counter("test_total", "A counter.")
	v := CounterVec("test_by_kind_total", "A counter by kind.", "kind")
	g := Gauge("test_level", "A gauge.")
	if err := Register(reg, c, v, g); err != nil {
		t.Fatal(err)
	}
	c.Inc()
	v.WithLabelValues("a").Add(2)
	g.Set(3)
	if mfs, err := reg.Gather(); err != nil || len(mfs) != 3 {
		t.Fatalf("gathered %d metrics, %v; want 3", len(mfs), err)
	}
	if err := Register(reg, Counter("other_total", "Another."), Counter("test_total", "A counter.")); err == nil {
		t.Fatal("registering a name twice succeeded")
	}
	if err := Register(nil, c); err != nil {
		t.Fatalf("nil Registerer: %v", err)
	}
}
