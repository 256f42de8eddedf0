package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"

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
