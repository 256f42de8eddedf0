package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/partyline/partyline/loadtest/executor"
)

// Scenario is a Go test function, named in a config by exec. The executor
// calls Iterate on its VUs; a VU's state lives in vu.State, set by the
// scenario on the VU's first iteration and released in Retire.
type Scenario interface {
	// Iterate runs one iteration. It must return soon after ctx is done.
	Iterate(ctx context.Context, vu *executor.VU) error
	// Retire releases vu's state: its connections, its goroutines.
	Retire(vu *executor.VU)
}

// Setupper is a Scenario with work before the first VU starts, such as
// creating rooms. Its ctx is the run's: it ends when the run is
// interrupted or aborted.
type Setupper interface {
	Setup(ctx context.Context) error
}

// Closer is a Scenario with work after its last VU retired. Close runs
// before the run's final metrics are read, so it may wait for work that
// outlives the executor, as long as it returns soon when the run's context
// (given to Setup) is done.
type Closer interface {
	Close() error
}

// Factory builds a scenario from its options (the config's options:, or
// nil) for one run. Bad options are reported as errors and make the run a
// config error.
type Factory func(env *Env, options json.RawMessage) (Scenario, error)

var scenarios = struct {
	sync.Mutex
	m map[string]Factory
	d map[string]string
}{m: map[string]Factory{}, d: map[string]string{}}

// RegisterScenario adds a scenario under name with a one-line description.
// Registering a name twice panics.
func RegisterScenario(name, description string, f Factory) {
	scenarios.Lock()
	defer scenarios.Unlock()
	if _, dup := scenarios.m[name]; dup {
		panic("loadtest: scenario " + name + " registered twice")
	}
	scenarios.m[name] = f
	scenarios.d[name] = description
}

func lookupScenario(name string) Factory {
	scenarios.Lock()
	defer scenarios.Unlock()
	return scenarios.m[name]
}

// ScenarioNames lists the registered scenarios.
func ScenarioNames() []string {
	scenarios.Lock()
	defer scenarios.Unlock()
	return slices.Sorted(maps.Keys(scenarios.m))
}

// ScenarioDescription returns the description name was registered with.
func ScenarioDescription(name string) string {
	scenarios.Lock()
	defer scenarios.Unlock()
	return scenarios.d[name]
}

// decodeOptions reads a scenario's options into v, which holds the
// defaults; unknown fields are errors.
func decodeOptions(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return configErrorf("options: %w", err)
	}
	return nil
}

// vuState returns vu's state, which start makes on the VU's first
// iteration (and again on the next one when it fails).
func vuState[T any](ctx context.Context, vu *executor.VU, start func(context.Context, *executor.VU) (*T, error)) (*T, error) {
	if st, _ := vu.State.(*T); st != nil {
		return st, nil
	}
	st, err := start(ctx, vu)
	if err != nil {
		return nil, err
	}
	vu.State = st
	return st, nil
}

// vuRand is a random source of vu's own.
func vuRand(vu *executor.VU) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(vu.ID), uint64(time.Now().UnixNano())))
}

// jitter is mean times a uniform factor from 0.5 to 1.5, so that VUs that
// started together drift apart.
func jitter(rng *rand.Rand, mean time.Duration) time.Duration {
	return time.Duration((0.5 + rng.Float64()) * float64(mean))
}

// waitUntil sleeps until t and reports whether ctx is still live.
func waitUntil(ctx context.Context, t time.Time) bool {
	return executor.RealClock{}.SleepUntil(ctx, t)
}

// sleepCtx sleeps for d or until ctx is done; it reports whether it slept
// the whole time.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	return waitUntil(ctx, time.Now().Add(d))
}
