package executor

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration that reads k6's duration strings ("30s",
// "1m30s", "500ms") and plain numbers of milliseconds.
type Duration time.Duration

// UnmarshalJSON accepts "1m30s" or a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var ms float64
		if err := json.Unmarshal(b, &ms); err != nil {
			return fmt.Errorf("duration %s: want a string like \"30s\" or milliseconds", b)
		}
		*d = Duration(ms * float64(time.Millisecond))
		return nil
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// ParseDuration reads a k6 duration: Go's syntax, plus "d" for days.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "d"); i > 0 {
		var days float64
		if _, err := fmt.Sscanf(s[:i], "%g", &days); err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
		rest := time.Duration(0)
		if s[i+1:] != "" {
			var err error
			if rest, err = time.ParseDuration(s[i+1:]); err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
		}
		return time.Duration(days*float64(24*time.Hour)) + rest, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %w", s, err)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return d, nil
}

// Stage is one step of a ramping executor: reach Target over Duration.
type Stage struct {
	Duration Duration `json:"duration"`
	Target   int64    `json:"target"`
}

// Config is one scenario's executor settings, with k6's option names.
type Config struct {
	Executor string `json:"executor"`
	// StartTime delays the scenario from the start of the test.
	StartTime Duration `json:"startTime,omitempty"`
	// GracefulStop is how long iterations running at the end may finish
	// before they are cancelled. Nil means 30 s, k6's default.
	GracefulStop *Duration `json:"gracefulStop,omitempty"`

	VUs         int64    `json:"vus,omitempty"`
	Duration    Duration `json:"duration,omitempty"`
	Iterations  int64    `json:"iterations,omitempty"`
	MaxDuration Duration `json:"maxDuration,omitempty"`
	StartVUs    int64    `json:"startVUs,omitempty"`
	Stages      []Stage  `json:"stages,omitempty"`
	// GracefulRampDown is how long a VU that ramping-vus retires may finish
	// its iteration. Nil means 30 s.
	GracefulRampDown *Duration `json:"gracefulRampDown,omitempty"`

	Rate            float64  `json:"rate,omitempty"`
	StartRate       float64  `json:"startRate,omitempty"`
	TimeUnit        Duration `json:"timeUnit,omitempty"`
	PreAllocatedVUs int64    `json:"preAllocatedVUs,omitempty"`
	MaxVUs          int64    `json:"maxVUs,omitempty"`
}

// Executor names, as in k6.
const (
	ConstantVUs         = "constant-vus"
	RampingVUs          = "ramping-vus"
	ConstantArrivalRate = "constant-arrival-rate"
	RampingArrivalRate  = "ramping-arrival-rate"
	PerVUIterations     = "per-vu-iterations"
	SharedIterations    = "shared-iterations"
)

const (
	defaultGracefulStop = 30 * time.Second
	defaultMaxDuration  = 10 * time.Minute
)

func (c *Config) gracefulStop() time.Duration {
	if c.GracefulStop == nil {
		return defaultGracefulStop
	}
	return time.Duration(*c.GracefulStop)
}

func (c *Config) gracefulRampDown() time.Duration {
	if c.GracefulRampDown == nil {
		return defaultGracefulStop
	}
	return time.Duration(*c.GracefulRampDown)
}

func (c *Config) timeUnit() time.Duration {
	if c.TimeUnit <= 0 {
		return time.Second
	}
	return time.Duration(c.TimeUnit)
}

// Validate fills in k6's defaults and checks the settings the executor
// needs, with errors that name the option.
func (c *Config) Validate() error {
	switch c.Executor {
	case "":
		return fmt.Errorf("executor is required (one of %s)", strings.Join(Names(), ", "))
	case ConstantVUs:
		if c.VUs == 0 {
			c.VUs = 1
		}
		if c.Duration <= 0 {
			return fmt.Errorf("%s: duration is required", c.Executor)
		}
	case RampingVUs:
		if len(c.Stages) == 0 {
			return fmt.Errorf("%s: stages are required", c.Executor)
		}
		if c.StartVUs == 0 && c.VUs > 0 {
			c.StartVUs = c.VUs
		}
	case ConstantArrivalRate:
		if c.Rate <= 0 {
			return fmt.Errorf("%s: rate must be positive", c.Executor)
		}
		if c.Duration <= 0 {
			return fmt.Errorf("%s: duration is required", c.Executor)
		}
		if c.PreAllocatedVUs <= 0 {
			return fmt.Errorf("%s: preAllocatedVUs must be positive", c.Executor)
		}
	case RampingArrivalRate:
		if len(c.Stages) == 0 {
			return fmt.Errorf("%s: stages are required", c.Executor)
		}
		if c.PreAllocatedVUs <= 0 {
			return fmt.Errorf("%s: preAllocatedVUs must be positive", c.Executor)
		}
	case PerVUIterations, SharedIterations:
		if c.VUs == 0 {
			c.VUs = 1
		}
		if c.Iterations == 0 {
			c.Iterations = 1
		}
		if c.Executor == SharedIterations && c.Iterations < c.VUs {
			return fmt.Errorf("%s: iterations (%d) must be at least vus (%d)", c.Executor, c.Iterations, c.VUs)
		}
		if c.MaxDuration <= 0 {
			c.MaxDuration = Duration(defaultMaxDuration)
		}
	default:
		return fmt.Errorf("unknown executor %q (one of %s)", c.Executor, strings.Join(Names(), ", "))
	}
	if c.VUs < 0 || c.StartVUs < 0 || c.Iterations < 0 || c.PreAllocatedVUs < 0 || c.MaxVUs < 0 || c.Rate < 0 || c.StartRate < 0 {
		return fmt.Errorf("%s: counts and rates must not be negative", c.Executor)
	}
	for i, s := range c.Stages {
		if s.Duration < 0 || s.Target < 0 {
			return fmt.Errorf("%s: stage %d: duration and target must not be negative", c.Executor, i)
		}
	}
	if c.MaxVUs == 0 || c.MaxVUs < c.PreAllocatedVUs {
		c.MaxVUs = c.PreAllocatedVUs
	}
	return nil
}

// Names lists the executors.
func Names() []string {
	return []string{ConstantVUs, RampingVUs, ConstantArrivalRate, RampingArrivalRate, PerVUIterations, SharedIterations}
}

// MaxVUsNeeded is the most VUs the executor may run at once.
func (c *Config) MaxVUsNeeded() int64 {
	switch c.Executor {
	case RampingVUs:
		m := c.StartVUs
		for _, s := range c.Stages {
			m = max(m, s.Target)
		}
		return m
	case ConstantArrivalRate, RampingArrivalRate:
		return c.MaxVUs
	}
	return c.VUs
}

// TotalDuration is how long the executor runs, without graceful stop.
func (c *Config) TotalDuration() time.Duration {
	switch c.Executor {
	case RampingVUs, RampingArrivalRate:
		var d time.Duration
		for _, s := range c.Stages {
			d += time.Duration(s.Duration)
		}
		return d
	case PerVUIterations, SharedIterations:
		return time.Duration(c.MaxDuration)
	}
	return time.Duration(c.Duration)
}
