package threshold

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline/loadtest/metrics"
)

func TestParseExpr(t *testing.T) {
	tests := []struct {
		in   string
		want Expr
	}{
		{"avg<200", Expr{Aggregation{Method: Avg}, Less, 200}},
		{"min<=1", Expr{Aggregation{Method: Min}, LessEqual, 1}},
		{"max>5", Expr{Aggregation{Method: Max}, Greater, 5}},
		{"med>=0.5", Expr{Aggregation{Method: Med}, GreaterEqual, 0.5}},
		{"p(95)<200", Expr{Aggregation{Method: Percentile, P: 95}, Less, 200}},
		{"p(99.9)<1000", Expr{Aggregation{Method: Percentile, P: 99.9}, Less, 1000}},
		{"p(0)>=0", Expr{Aggregation{Method: Percentile, P: 0}, GreaterEqual, 0}},
		{"p(100)<1", Expr{Aggregation{Method: Percentile, P: 100}, Less, 1}},
		{"count==0", Expr{Aggregation{Method: Count}, Equal, 0}},
		{"count===0", Expr{Aggregation{Method: Count}, Equal, 0}},
		{"count!=3", Expr{Aggregation{Method: Count}, NotEqual, 3}},
		{"rate>0.99", Expr{Aggregation{Method: RateOf}, Greater, 0.99}},
		{"value<=10", Expr{Aggregation{Method: Value}, LessEqual, 10}},
		{"value>-1", Expr{Aggregation{Method: Value}, Greater, -1}},
		{"value>-1.5", Expr{Aggregation{Method: Value}, Greater, -1.5}},
		{"value<+2", Expr{Aggregation{Method: Value}, Less, 2}},
		{"avg<.5", Expr{Aggregation{Method: Avg}, Less, 0.5}},
		{"avg<1e3", Expr{Aggregation{Method: Avg}, Less, 1000}},
		{"  p( 95 )  <   200  ", Expr{Aggregation{Method: Percentile, P: 95}, Less, 200}},
		{"rate\t>\t0.9", Expr{Aggregation{Method: RateOf}, Greater, 0.9}},
		{"p (90)<3", Expr{Aggregation{Method: Percentile, P: 90}, Less, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseExpr(tt.in)
			if err != nil {
				t.Fatalf("ParseExpr(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseExpr(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseExprString(t *testing.T) {
	for in, want := range map[string]string{
		"p( 99.9 ) <  100": "p(99.9)<100",
		"count === 0":      "count==0",
		"value > -2.50":    "value>-2.5",
	} {
		e, err := ParseExpr(in)
		if err != nil {
			t.Fatalf("ParseExpr(%q): %v", in, err)
		}
		if got := e.String(); got != want {
			t.Errorf("ParseExpr(%q).String() = %q, want %q", in, got, want)
		}
	}
}

func TestParseExprInvalid(t *testing.T) {
	tests := []struct {
		in   string
		want string // in the error
	}{
		{"", "no operator"},
		{"p(95)", "no operator"},
		{"p(95) 200", "no operator"},
		{"<200", "no aggregation"},
		{"p(95)<", "no value"},
		{"p(95)<  ", "no value"},
		{"avg<abc", "not a number"},
		{"avg<1ms", "not a number"},
		{"avg<<1", "not a number"},
		{"avg=<1", "bad operator"},
		{"avg=1", "bad operator"},
		{"avg!1", "bad operator"},
		{"avg<NaN", "not a number"},
		{"avg<Inf", "not a number"},
		{"avg<0x10", "not a number"},
		{"mean<1", "unknown aggregation"},
		{"AVG<1", "unknown aggregation"},
		{"p95<1", "unknown aggregation"},
		{"p()<1", "percentile"},
		{"p(abc)<1", "percentile"},
		{"p(101)<1", "between 0 and 100"},
		{"p(-1)<1", "between 0 and 100"},
		{"avg avg<1", "unknown aggregation"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseExpr(tt.in)
			if err == nil {
				t.Fatalf("ParseExpr(%q) succeeded", tt.in)
			}
			if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseExpr(%q) = %v, want ErrSyntax saying %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		in   string
		name string
		tags metrics.Tags
	}{
		{"http_req_duration", "http_req_duration", nil},
		{" checks ", "checks", nil},
		{"ws_fanout_latency{scenario:chat}", "ws_fanout_latency", metrics.Tags{"scenario": "chat"}},
		{"x{a:1,b:2}", "x", metrics.Tags{"a": "1", "b": "2"}},
		{"x{ a : 1 , b : 2 }", "x", metrics.Tags{"a": "1", "b": "2"}},
		{`x{name:"a, b{c}"}`, "x", metrics.Tags{"name": "a, b{c}"}},
		{`x{name:'it'}`, "x", metrics.Tags{"name": "it"}},
		{`x{url:"http://h/p?q=1",status:200}`, "x", metrics.Tags{"url": "http://h/p?q=1", "status": "200"}},
		{`x{empty:""}`, "x", metrics.Tags{"empty": ""}},
		{"http_req_duration{expected_response:true}", "http_req_duration", metrics.Tags{"expected_response": "true"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			name, tags, err := ParseKey(tt.in)
			if err != nil {
				t.Fatalf("ParseKey(%q): %v", tt.in, err)
			}
			if name != tt.name {
				t.Errorf("name = %q, want %q", name, tt.name)
			}
			if diff := cmp.Diff(tt.tags, tags); diff != "" {
				t.Errorf("tags (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseKeyInvalid(t *testing.T) {
	for _, in := range []string{
		"", "   ", "{a:b}", "x{", "x{}", "x{a}", "x{a:}", "x{:b}", "x{a:b,}", "x{a:b c:d}",
		"x{a:b}junk", `x{a:"b}`, `x{a:"b"c}`, "x{a:1,a:2}", "x y", "x}", "x{a:{b}}", "x{a:b:c}",
	} {
		t.Run(in, func(t *testing.T) {
			if name, tags, err := ParseKey(in); !errors.Is(err, ErrSyntax) {
				t.Errorf("ParseKey(%q) = %q, %v, %v; want ErrSyntax", in, name, tags, err)
			}
		})
	}
}

func parse(t *testing.T, js string) *Set {
	t.Helper()
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		t.Fatal(err)
	}
	s, err := Parse(cfg)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

func TestParse(t *testing.T) {
	s := parse(t, `{
		"http_req_duration": ["p(95)<200", "avg<=100"],
		"ws_fanout_latency{scenario:chat}": [{"threshold": "p(99)<100", "abortOnFail": true, "delayAbortEval": "10s"}],
		"checks": ["rate>0.99"],
		"recovery_gaps": ["count==0"]
	}`)
	chat := metrics.Tags{"scenario": "chat"}
	want := []Threshold{
		{Key: "checks", Metric: "checks", Source: "rate>0.99", Expr: Expr{Aggregation{Method: RateOf}, Greater, 0.99}},
		{Key: "http_req_duration", Metric: "http_req_duration", Source: "p(95)<200", Expr: Expr{Aggregation{Method: Percentile, P: 95}, Less, 200}},
		{Key: "http_req_duration", Metric: "http_req_duration", Source: "avg<=100", Expr: Expr{Aggregation{Method: Avg}, LessEqual, 100}},
		{Key: "recovery_gaps", Metric: "recovery_gaps", Source: "count==0", Expr: Expr{Aggregation{Method: Count}, Equal, 0}},
		{Key: "ws_fanout_latency{scenario:chat}", Metric: "ws_fanout_latency", Tags: chat, Source: "p(99)<100",
			Expr: Expr{Aggregation{Method: Percentile, P: 99}, Less, 100}, AbortOnFail: true, DelayAbortEval: 10 * time.Second},
	}
	if diff := cmp.Diff(want, s.Thresholds); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name, cfg string
		want      []string // in the error
	}{
		{"bad expression names key and expression", `{"lat": ["p(95)<200", "pp(95)<1"]}`, []string{"lat", `"pp(95)<1"`, "unknown aggregation"}},
		{"not an array", `{"lat": "p(95)<200"}`, []string{"lat", "array"}},
		{"null", `{"lat": null}`, []string{"lat", "array"}},
		{"number item", `{"lat": [5]}`, []string{"lat[0]", "string or an object"}},
		{"object without threshold", `{"lat": [{"abortOnFail": true}]}`, []string{"lat[0]", `without "threshold"`}},
		{"unknown field", `{"lat": [{"threshold": "avg<1", "abort": true}]}`, []string{"lat[0]", "abort"}},
		{"bad delay", `{"lat": [{"threshold": "avg<1", "delayAbortEval": "10"}]}`, []string{"lat", `"avg<1"`, "delayAbortEval"}},
		{"negative delay", `{"lat": [{"threshold": "avg<1", "delayAbortEval": "-1s"}]}`, []string{"delayAbortEval"}},
		{"bad tag filter", `{"lat{scenario}": ["avg<1"]}`, []string{"lat{scenario}", "tag:value"}},
		{"every error reported", `{"a": ["x<1"], "b": ["avg"]}`, []string{`"x<1"`, `"avg"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tt.cfg), &cfg); err != nil {
				t.Fatal(err)
			}
			s, err := Parse(cfg)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", s.Thresholds)
			}
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("error %v does not wrap ErrSyntax", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// registry returns a registry with one metric of each type:
//
//	lat    time trend, scenario chat 1..100ms, scenario idle 1000ms x10
//	msgs   counter, 30 over chat and 10 over idle
//	checks rate, 99 of 100 true
//	vus    gauge set 5, 20, 10
//	gaps   counter with no samples
//	empty  trend with no samples
func registry() *metrics.Registry {
	r := metrics.NewRegistry()
	lat := r.Trend("lat", true)
	for i := 1; i <= 100; i++ {
		lat.With(metrics.Tags{"scenario": "chat"}).Observe(time.Duration(i) * time.Millisecond)
	}
	for range 10 {
		lat.With(metrics.Tags{"scenario": "idle"}).Observe(time.Second)
	}
	r.Counter("msgs").With(metrics.Tags{"scenario": "chat"}).Add(30)
	r.Counter("msgs").With(metrics.Tags{"scenario": "idle"}).Add(10)
	for i := range 100 {
		r.Rate("checks").With(metrics.Tags{"check": "ok"}).AddBool(i != 0)
	}
	for _, v := range []float64{5, 20, 10} {
		r.Gauge("vus").With(nil).Set(v)
	}
	r.Counter("gaps")
	r.Trend("empty", true)
	return r
}

func TestEvaluate(t *testing.T) {
	reg := registry()
	type row struct {
		Key, Source string
		Pass        bool
		Observed    float64
		NoData      bool
		Missing     bool
	}
	tests := []struct {
		key, expr string
		want      row
	}{
		{"lat{scenario:chat}", "avg<60", row{Pass: true, Observed: 50.5}},
		{"lat{scenario:chat}", "min==1", row{Pass: true, Observed: 1}},
		{"lat{scenario:chat}", "max>=100", row{Pass: true, Observed: 100}},
		{"lat{scenario:chat}", "med<=50.1", row{Pass: true, Observed: 50}},
		{"lat{scenario:chat}", "p(95)<90", row{Pass: false, Observed: 95}},
		{"lat{scenario:chat}", "p(99.9)>99", row{Pass: true, Observed: 100}},
		{"lat", "max<500", row{Pass: false, Observed: 1000}},
		{"lat{scenario:idle}", "avg>999", row{Pass: true, Observed: 1000}},
		{"msgs", "count===40", row{Pass: true, Observed: 40}},
		{"lat{scenario:none}", "p(95)<1", row{Pass: true, Observed: 0, NoData: true}},
		{"msgs", "count==40", row{Pass: true, Observed: 40}},
		{"msgs{scenario:chat}", "count!=30", row{Pass: false, Observed: 30}},
		{"msgs", "rate>=2", row{Pass: true, Observed: 2}}, // 40 over 20s
		{"checks", "rate>0.99", row{Pass: false, Observed: 0.99}},
		{"checks", "rate>=0.99", row{Pass: true, Observed: 0.99}},
		{"checks{check:other}", "rate>0.5", row{Pass: false, NoData: true}},
		{"vus", "value==10", row{Pass: true, Observed: 10}},
		{"vus", "min>5", row{Pass: false, Observed: 5}},
		{"vus", "max<=20", row{Pass: true, Observed: 20}},
		{"gaps", "count==0", row{Pass: true, NoData: true}},
		{"gaps", "count>0", row{Pass: false, NoData: true}},
		{"empty", "p(99)<100", row{Pass: true, NoData: true}},
		{"later", "count==0", row{Pass: true, NoData: true, Missing: true}},
	}
	for _, tt := range tests {
		t.Run(tt.key+" "+tt.expr, func(t *testing.T) {
			s := parse(t, `{"`+tt.key+`": ["`+tt.expr+`"]}`)
			rs := s.Evaluate(reg, 20*time.Second)
			if len(rs) != 1 {
				t.Fatalf("%d results, want 1", len(rs))
			}
			r := rs[0]
			if r.Err != nil {
				t.Fatalf("Err: %v", r.Err)
			}
			// HDR histograms keep 3 significant digits.
			if d := r.Observed - tt.want.Observed; d > tt.want.Observed*0.001 || -d > tt.want.Observed*0.001 {
				t.Errorf("Observed = %v, want %v", r.Observed, tt.want.Observed)
			}
			tt.want.Key, tt.want.Source, tt.want.Observed = tt.key, tt.expr, r.Observed
			got := row{r.Key, r.Source, r.Pass, r.Observed, r.NoData, r.Missing}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if r.Abort {
				t.Error("Abort without abortOnFail")
			}
		})
	}
}

func TestEvaluateWrongAggregation(t *testing.T) {
	reg := registry()
	for key, exprs := range map[string][]string{
		"lat":    {"count<1", "rate<1", "value<1"},
		"msgs":   {"avg<1", "p(95)<1", "value<1", "min<1", "max<1", "med<1"},
		"checks": {"count<1", "avg<1", "value<1", "p(50)<1", "min<1"},
		"vus":    {"avg<1", "rate<1", "count<1", "p(90)<1", "med<1"},
	} {
		for _, e := range exprs {
			s := parse(t, `{"`+key+`": [{"threshold": "`+e+`", "abortOnFail": true}]}`)
			r := s.Evaluate(reg, time.Minute)[0]
			if !errors.Is(r.Err, ErrAggregation) || r.Pass || r.Abort {
				t.Errorf("%s %s: Err %v, Pass %v, Abort %v; want ErrAggregation, failing, no abort", key, e, r.Err, r.Pass, r.Abort)
			}
			if r.Err != nil && !strings.Contains(r.Err.Error(), key) {
				t.Errorf("%s %s: error %q does not name the metric", key, e, r.Err)
			}
			if err := s.Check(reg); !errors.Is(err, ErrAggregation) {
				t.Errorf("%s %s: Check = %v, want ErrAggregation", key, e, err)
			}
		}
	}
}

func TestCheck(t *testing.T) {
	reg := registry()
	s := parse(t, `{"lat": ["p(95)<1"], "gaps": ["count==0"], "recovery_gaps": ["count==0"], "msgs": ["p(95)<1"]}`)
	err := s.Check(reg)
	if !errors.Is(err, ErrUnknownMetric) || !errors.Is(err, ErrAggregation) {
		t.Fatalf("Check = %v, want ErrUnknownMetric and ErrAggregation", err)
	}
	if !strings.Contains(err.Error(), "recovery_gaps") || !strings.Contains(err.Error(), "msgs") {
		t.Errorf("Check = %q, want it to name recovery_gaps and msgs", err)
	}
	if strings.Contains(err.Error(), "lat") {
		t.Errorf("Check = %q names a valid threshold", err)
	}
	reg.Counter("recovery_gaps")
	ok := parse(t, `{"lat": ["p(95)<1"], "recovery_gaps": ["count==0"]}`)
	if err := ok.Check(reg); err != nil {
		t.Errorf("Check = %v, want nil", err)
	}
}

func TestAbort(t *testing.T) {
	reg := registry()
	s := parse(t, `{
		"lat": [{"threshold": "p(95)<10", "abortOnFail": true, "delayAbortEval": "10s"}],
		"checks": [{"threshold": "rate>0.999", "abortOnFail": true}, "rate>0.9999"],
		"msgs": [{"threshold": "count>0", "abortOnFail": true}],
		"vus": [{"threshold": "value<1", "abortOnFail": false, "delayAbortEval": "1s"}]
	}`)
	abortKeys := func(rs []Result) []string {
		var out []string
		for _, r := range ShouldAbort(rs) {
			out = append(out, r.Key+" "+r.Source)
		}
		return out
	}
	tests := []struct {
		elapsed time.Duration
		want    []string
	}{
		{0, []string{"checks rate>0.999"}},
		{9999 * time.Millisecond, []string{"checks rate>0.999"}},
		{10 * time.Second, []string{"checks rate>0.999", "lat p(95)<10"}},
		{time.Hour, []string{"checks rate>0.999", "lat p(95)<10"}},
	}
	for _, tt := range tests {
		rs := s.Evaluate(reg, tt.elapsed)
		if diff := cmp.Diff(tt.want, abortKeys(rs)); diff != "" {
			t.Errorf("at %v, aborting (-want +got):\n%s", tt.elapsed, diff)
		}
		if !Failed(rs) {
			t.Errorf("at %v, Failed = false", tt.elapsed)
		}
	}
	pass := parse(t, `{"msgs": [{"threshold": "count>0", "abortOnFail": true}]}`)
	if rs := pass.Evaluate(reg, time.Hour); Failed(rs) || len(ShouldAbort(rs)) != 0 {
		t.Errorf("passing threshold: Failed %v, aborting %v", Failed(rs), ShouldAbort(rs))
	}
}

func TestEvaluateConcurrentWithSamples(t *testing.T) {
	reg := registry()
	s := parse(t, `{"lat": ["p(95)<2000"], "msgs": ["count>0"], "checks": ["rate>0"]}`)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h := reg.Trend("lat", true).With(metrics.Tags{"scenario": "chat"})
		c := reg.Counter("msgs").With(nil)
		for i := range 2000 {
			h.Observe(time.Duration(i) * time.Microsecond)
			c.Add(1)
		}
	}()
	for range 50 {
		if rs := s.Evaluate(reg, time.Second); Failed(rs) {
			t.Fatalf("failed: %+v", rs)
		}
	}
	<-done
}
