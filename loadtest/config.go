package loadtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/partyline/partyline/loadtest/executor"
)

// Config is a test: k6's shape, in YAML or JSON.
//
//	target: http://127.0.0.1:8080
//	scenarios:
//	  chat:
//	    exec: chat-fanout
//	    executor: constant-vus
//	    vus: 50
//	    duration: 30s
//	    options: {room_size: 10, rate: 1}
//	thresholds:
//	  ws_fanout_latency{scenario:chat}: ["p(95)<200"]
type Config struct {
	// Target is the server's base URL, such as http://127.0.0.1:8080.
	Target string `json:"target,omitempty"`
	// Scenarios are run side by side, each from its startTime.
	Scenarios map[string]*ScenarioConfig `json:"scenarios"`
	// Thresholds map a metric, optionally with a tag filter, to its
	// expressions: strings or objects with threshold, abortOnFail and
	// delayAbortEval.
	Thresholds map[string]json.RawMessage `json:"thresholds,omitempty"`
}

// ScenarioConfig is one entry of Config.Scenarios: the Go scenario to run
// (exec), its own options, and the executor with k6's option names.
type ScenarioConfig struct {
	Exec    string          `json:"exec"`
	Options json.RawMessage `json:"options,omitempty"`
	executor.Config
}

// ConfigError is a problem with the test's configuration, as opposed to a
// failure during the run; the command exits with its own code for it.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return "config: " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func configErrorf(format string, args ...any) error {
	return &ConfigError{fmt.Errorf(format, args...)}
}

// LoadConfig reads a YAML or JSON test file. Unknown fields are errors, so
// a misspelt option does not silently fall back to its default.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{err}
	}
	return ParseConfig(raw, filepath.Ext(path))
}

// ParseConfig reads a test from YAML or JSON (ext ".json" means JSON;
// anything else is read as YAML, of which JSON is a subset).
func ParseConfig(raw []byte, ext string) (*Config, error) {
	js := raw
	if ext != ".json" {
		var err error
		if js, err = yaml.YAMLToJSON(raw); err != nil {
			return nil, configErrorf("%w", err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, configErrorf("%w", err)
	}
	return &c, nil
}

// Overrides are the command line's one-off settings, applied over the
// file's: with Scenario set, a test of that one scenario is built.
type Overrides struct {
	Target   string
	Scenario string // exec name; with no config file, the test runs it alone
	VUs      int64
	Duration time.Duration
	Stages   []executor.Stage
}

// Apply applies o to c. Like k6, --vus and --duration on their own make a
// constant-vus run, and --stages a ramping-vus run.
func (o Overrides) Apply(c *Config) {
	if o.Target != "" {
		c.Target = o.Target
	}
	if o.Scenario != "" && len(c.Scenarios) == 0 {
		c.Scenarios = map[string]*ScenarioConfig{o.Scenario: {Exec: o.Scenario}}
	}
	for _, sc := range c.Scenarios {
		switch {
		case len(o.Stages) > 0:
			sc.Executor, sc.Stages = executor.RampingVUs, o.Stages
			sc.Duration = 0
		case o.VUs > 0 || o.Duration > 0:
			if sc.Executor == "" || o.Duration > 0 && sc.Executor != executor.ConstantVUs && sc.Executor != executor.ConstantArrivalRate {
				sc.Executor = executor.ConstantVUs
			}
			if o.VUs > 0 {
				sc.VUs = o.VUs
			}
			if o.Duration > 0 {
				sc.Duration = executor.Duration(o.Duration)
			}
		}
		if sc.Executor == "" {
			sc.Executor = executor.PerVUIterations
		}
	}
}

// ParseStages reads --stages: "30s:10,1m:50,10s:0" (duration:target).
func ParseStages(s string) ([]executor.Stage, error) {
	var out []executor.Stage
	for part := range strings.SplitSeq(s, ",") {
		d, t, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, configErrorf("stage %q: want duration:target", part)
		}
		dur, err := executor.ParseDuration(d)
		if err != nil {
			return nil, &ConfigError{err}
		}
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n < 0 {
			return nil, configErrorf("stage %q: the target must be a whole number", part)
		}
		out = append(out, executor.Stage{Duration: executor.Duration(dur), Target: n})
	}
	return out, nil
}

// Validate checks the test: a target URL, at least one scenario, each with
// a known exec and a valid executor.
func (c *Config) Validate() error {
	if c.Target == "" {
		return configErrorf("no target: give --url or target:")
	}
	u, err := url.Parse(c.Target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return configErrorf("target %q: want http://host:port", c.Target)
	}
	if len(c.Scenarios) == 0 {
		return configErrorf("no scenarios")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Scenarios)) {
		sc := c.Scenarios[name]
		if sc == nil {
			return configErrorf("scenario %s is empty", name)
		}
		if sc.Exec == "" {
			sc.Exec = name
		}
		if lookupScenario(sc.Exec) == nil {
			return configErrorf("scenario %s: unknown exec %q (one of %s)", name, sc.Exec, strings.Join(ScenarioNames(), ", "))
		}
		if err := sc.Config.Validate(); err != nil {
			return configErrorf("scenario %s: %w", name, err)
		}
	}
	return nil
}
