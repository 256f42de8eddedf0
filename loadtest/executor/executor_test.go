package executor

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/partyline/partyline/loadtest/metrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock jumps to each time the scheduler sleeps until. Before each
// jump it calls settle with the number of jumps so far, so a test can wait
// until the iterations dispatched before have been handled.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps int
	settle func(n int)
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) bool {
	c.mu.Lock()
	n := c.sleeps
	c.sleeps++
	c.mu.Unlock()
	if c.settle != nil {
		c.settle(n)
	}
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
	return ctx.Err() == nil
}

func durs(ms ...float64) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m * float64(time.Millisecond))
	}
	return out
}

func TestSchedule(t *testing.T) {
	ramp := func(start float64, stages ...Stage) *Config {
		return &Config{Executor: RampingArrivalRate, StartRate: start, Stages: stages, PreAllocatedVUs: 1}
	}
	for _, tc := range []struct {
		name string
		cfg  *Config
		want []time.Duration
	}{
		{"constant 4/s for 1s", &Config{Executor: ConstantArrivalRate, Rate: 4, Duration: Duration(time.Second)}, durs(0, 250, 500, 750)},
		{"timeUnit 1m", &Config{Executor: ConstantArrivalRate, Rate: 120, TimeUnit: Duration(time.Minute), Duration: Duration(2 * time.Second)}, durs(0, 500, 1000, 1500)},
		// 0 to 10/s over 2 s: n(t) = 2.5 t², so t_n = sqrt(n/2.5).
		{"ramp up", ramp(0, Stage{Duration(2 * time.Second), 10}), durs(0, 632.456, 894.427, 1095.445, 1264.911, 1414.214, 1549.193, 1673.320, 1788.854, 1897.367)},
		// 2/s flat for 1 s, then down to 0 over 1 s: one more iteration
		// is due only at the very end, which is not in the run.
		{"flat then down", ramp(2, Stage{Duration(time.Second), 2}, Stage{Duration(time.Second), 0}), durs(0, 500, 1000)},
		// 4/s down to 0 over 1 s: n(t) = 4t - 2t², so t_n = 1 - sqrt(1 - n/2).
		{"ramp down", ramp(4, Stage{Duration(time.Second), 0}), durs(0, 292.893)},
		{"zero rate", ramp(0, Stage{Duration(time.Second), 0}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSchedule(tc.cfg)
			var got []time.Duration
			for n := int64(0); n < 100; n++ {
				off, ok := s.offset(n)
				if !ok {
					break
				}
				got = append(got, off)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d iterations %v, want %d %v", len(got), got, len(tc.want), tc.want)
			}
			for i := range got {
				if math.Abs(float64(got[i]-tc.want[i])) > float64(time.Millisecond) {
					t.Errorf("iteration %d at %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestArrivalRateOnFakeClock checks that each iteration starts at its
// intended time and that VUs are reused.
func TestArrivalRateOnFakeClock(t *testing.T) {
	reg := metrics.NewRegistry()
	var mu sync.Mutex
	var started []time.Time
	var done atomic.Int64
	t0 := time.Unix(1000, 0)
	clock := &fakeClock{now: t0}
	clock.settle = func(n int) {
		// The first sleep is the start time; iteration k is dispatched
		// after sleep k+1.
		for deadline := time.Now().Add(5 * time.Second); done.Load() < int64(n-1) && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	res, err := Run(t.Context(), Options{
		Scenario: "s",
		Config:   Config{Executor: ConstantArrivalRate, Rate: 10, Duration: Duration(time.Second), PreAllocatedVUs: 2, MaxVUs: 5},
		Registry: reg,
		Clock:    clock,
		Iterate: func(ctx context.Context, vu *VU) error {
			mu.Lock()
			started = append(started, vu.Scheduled)
			mu.Unlock()
			done.Add(1)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []time.Time
	for i := range 10 {
		want = append(want, t0.Add(time.Duration(i)*100*time.Millisecond))
	}
	if diff := cmp.Diff(want, started); diff != "" {
		t.Errorf("iteration start times (-want +got):\n%s", diff)
	}
	if res.Iterations != 10 || res.Dropped != 0 || res.MaxVUs != 2 {
		t.Errorf("result %+v, want 10 iterations, none dropped, 2 VUs", res)
	}
	if got := reg.Lookup("iterations").Stats(metrics.Tags{"scenario": "s"}, 0).Count; got != 10 {
		t.Errorf("iterations metric = %v, want 10", got)
	}
}

// TestDroppedIterations runs out of VUs: every iteration blocks until the
// end, so after maxVUs iterations the rest are dropped.
func TestDroppedIterations(t *testing.T) {
	reg := metrics.NewRegistry()
	var started atomic.Int64
	clock := &fakeClock{now: time.Unix(0, 0)}
	clock.settle = func(n int) {
		dropped := func() int64 { return int64(reg.Lookup("dropped_iterations").Stats(nil, 0).Count) }
		for deadline := time.Now().Add(5 * time.Second); started.Load()+dropped() < int64(n-1) && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	grace := Duration(time.Second)
	res, err := Run(t.Context(), Options{
		Scenario: "s",
		Config:   Config{Executor: ConstantArrivalRate, Rate: 10, Duration: Duration(time.Second), PreAllocatedVUs: 1, MaxVUs: 3, GracefulStop: &grace},
		Registry: reg,
		Clock:    clock,
		Iterate: func(ctx context.Context, vu *VU) error {
			started.Add(1)
			<-ctx.Done()
			return ctx.Err()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dropped != 7 || res.Interrupted != 3 || res.Iterations != 0 || res.MaxVUs != 3 {
		t.Errorf("result %+v, want 7 dropped, 3 interrupted, 3 VUs", res)
	}
	if got := reg.Lookup("dropped_iterations").Stats(nil, 0).Count; got != 7 {
		t.Errorf("dropped_iterations = %v, want 7", got)
	}
}

func TestIterationExecutors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cfg        Config
		wantTotal  int64
		wantPerVU  map[int64]int64
		wantMaxVUs int64
	}{
		{"per-vu-iterations", Config{Executor: PerVUIterations, VUs: 3, Iterations: 4}, 12, map[int64]int64{1: 4, 2: 4, 3: 4}, 3},
		{"shared-iterations", Config{Executor: SharedIterations, VUs: 3, Iterations: 10}, 10, nil, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			perVU := map[int64]int64{}
			retired := map[int64]bool{}
			res, err := Run(t.Context(), Options{
				Scenario: tc.name, Config: tc.cfg, Registry: metrics.NewRegistry(),
				Iterate: func(ctx context.Context, vu *VU) error {
					mu.Lock()
					perVU[vu.ID]++
					mu.Unlock()
					return nil
				},
				Retire: func(vu *VU) { mu.Lock(); retired[vu.ID] = true; mu.Unlock() },
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Iterations != tc.wantTotal || res.MaxVUs != tc.wantMaxVUs {
				t.Errorf("result %+v, want %d iterations on %d VUs", res, tc.wantTotal, tc.wantMaxVUs)
			}
			if tc.wantPerVU != nil {
				if diff := cmp.Diff(tc.wantPerVU, perVU); diff != "" {
					t.Errorf("iterations per VU (-want +got):\n%s", diff)
				}
			}
			if int64(len(retired)) != tc.wantMaxVUs {
				t.Errorf("%d VUs retired, want %d", len(retired), tc.wantMaxVUs)
			}
		})
	}
}

func TestTimedVUExecutors(t *testing.T) {
	grace := Duration(50 * time.Millisecond)
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantMax int64
	}{
		{"constant-vus", Config{Executor: ConstantVUs, VUs: 3, Duration: Duration(300 * time.Millisecond), GracefulStop: &grace}, 3},
		{"ramping-vus", Config{Executor: RampingVUs, Stages: []Stage{{Duration(300 * time.Millisecond), 4}, {Duration(300 * time.Millisecond), 0}}, GracefulStop: &grace, GracefulRampDown: &grace}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var retired int64
			reg := metrics.NewRegistry()
			res, err := Run(t.Context(), Options{
				Scenario: tc.name, Config: tc.cfg, Registry: reg,
				Iterate: func(ctx context.Context, vu *VU) error {
					select {
					case <-time.After(10 * time.Millisecond):
						return nil
					case <-ctx.Done():
						return ctx.Err()
					}
				},
				Retire: func(vu *VU) { mu.Lock(); retired++; mu.Unlock() },
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Iterations == 0 {
				t.Error("no iterations ran")
			}
			if res.MaxVUs < tc.wantMax-1 || res.MaxVUs > tc.wantMax {
				t.Errorf("max VUs %d, want %d", res.MaxVUs, tc.wantMax)
			}
			if retired != res.MaxVUs {
				t.Errorf("%d VUs retired of %d", retired, res.MaxVUs)
			}
			if got := reg.Lookup("vus").Stats(nil, 0); got.Value != 0 || got.Max < float64(tc.wantMax-1) {
				t.Errorf("vus gauge %+v: want 0 at the end and a max near %d", got, tc.wantMax)
			}
		})
	}
}

func TestIterationErrors(t *testing.T) {
	var got []string
	res, err := Run(t.Context(), Options{
		Scenario: "e", Config: Config{Executor: PerVUIterations, VUs: 1, Iterations: 3}, Registry: metrics.NewRegistry(),
		Iterate: func(ctx context.Context, vu *VU) error {
			if vu.Iteration == 1 {
				return errors.New("boom")
			}
			return nil
		},
		OnError: func(vu *VU, err error) { got = append(got, err.Error()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Iterations != 2 || res.Errors != 1 || len(got) != 1 {
		t.Errorf("result %+v, errors %v; want 2 iterations and 1 error", res, got)
	}
}

func TestAbort(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := Run(ctx, Options{
		Scenario: "a", Config: Config{Executor: ConstantVUs, VUs: 2, Duration: Duration(time.Hour)}, Registry: metrics.NewRegistry(),
		Iterate: func(ctx context.Context, vu *VU) error { <-ctx.Done(); return ctx.Err() },
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel = %v, want context.Canceled", err)
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		json    string
		wantErr string
	}{
		{`{"executor":"constant-vus","vus":10,"duration":"30s"}`, ""},
		{`{"executor":"constant-vus","duration":"1m30s","gracefulStop":"0s"}`, ""},
		{`{"executor":"ramping-vus","startVUs":0,"stages":[{"duration":"10s","target":5}],"gracefulRampDown":"5s"}`, ""},
		{`{"executor":"constant-arrival-rate","rate":100,"timeUnit":"1s","duration":"1m","preAllocatedVUs":10,"maxVUs":50}`, ""},
		{`{"executor":"ramping-arrival-rate","startRate":1,"stages":[{"duration":"1m","target":50}],"preAllocatedVUs":5}`, ""},
		{`{"executor":"per-vu-iterations","vus":2,"iterations":5,"maxDuration":"1m"}`, ""},
		{`{"executor":"shared-iterations","vus":2,"iterations":5,"startTime":"10s"}`, ""},
		{`{"executor":"constant-vus","duration":"1d2h"}`, ""},
		{`{"executor":"constant-vus","duration":1500}`, ""},
		{`{"executor":"constant-vus"}`, "duration is required"},
		{`{"vus":1}`, "executor is required"},
		{`{"executor":"closed-loop"}`, "unknown executor"},
		{`{"executor":"constant-arrival-rate","duration":"1m","preAllocatedVUs":1}`, "rate must be positive"},
		{`{"executor":"constant-arrival-rate","rate":5,"duration":"1m"}`, "preAllocatedVUs must be positive"},
		{`{"executor":"ramping-vus"}`, "stages are required"},
		{`{"executor":"shared-iterations","vus":5,"iterations":2}`, "must be at least vus"},
		{`{"executor":"constant-vus","vus":-1,"duration":"1s"}`, "must not be negative"},
		{`{"executor":"constant-vus","duration":"soon"}`, "duration \"soon\""},
		{`{"executor":"constant-vus","duration":"-5s"}`, "negative"},
	} {
		var c Config
		err := json.Unmarshal([]byte(tc.json), &c)
		if err == nil {
			err = c.Validate()
		}
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.json, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", tc.json, err, tc.wantErr)
		}
	}
}
