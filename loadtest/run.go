package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/partyline/partyline/loadtest/executor"
	"github.com/partyline/partyline/loadtest/metrics"
	"github.com/partyline/partyline/loadtest/summary"
	"github.com/partyline/partyline/loadtest/threshold"
)

// RunOptions configures a run of a test.
type RunOptions struct {
	// Config is the test. Required; Run validates it.
	Config *Config
	// Tokens hands out the synthetic users' JWTs. Required.
	Tokens TokenSource
	// APIKey is the server API key, for scenarios that publish server-side.
	APIKey string
	// UserPrefix starts every synthetic user id. Zero means "lt_"; agents
	// of a distributed run get one each.
	UserPrefix string
	// LocalIPs spread connections over these source addresses. Empty
	// means the system's choice.
	LocalIPs []netip.Addr
	// Segment and Segments split the test between the agents of a
	// distributed run: this process runs its share, segment Segment (from
	// 0) of Segments. Zero Segments means the whole test.
	Segment, Segments int
	// Registry receives the metrics. Nil means a new one.
	Registry *metrics.Registry
	// Progress receives a progress line every second: rewritten in place
	// when ProgressTTY, one line at a time otherwise. Nil means none.
	Progress    io.Writer
	ProgressTTY bool
	// Logger receives iteration errors (the first few of each scenario)
	// and run events. Nil means none.
	Logger *slog.Logger
	// ThresholdInterval is how often thresholds are evaluated during the
	// run. Zero means 2 s.
	ThresholdInterval time.Duration
}

// Outcome is what a run measured and decided.
type Outcome struct {
	Registry   *metrics.Registry
	Thresholds []threshold.Result
	Elapsed    time.Duration
	Scenarios  []summary.Scenario
	// Aborted is set when a threshold with abortOnFail stopped the run.
	Aborted bool
	// Interrupted is set when the run's context ended it early.
	Interrupted bool
}

// ThresholdsFailed reports whether any threshold failed.
func (o *Outcome) ThresholdsFailed() bool { return threshold.Failed(o.Thresholds) }

// SummaryInput is the outcome as the summary package takes it.
func (o *Outcome) SummaryInput() summary.Input {
	return summary.Input{Registry: o.Registry, Thresholds: o.Thresholds, Elapsed: o.Elapsed, Scenarios: o.Scenarios}
}

// standardMetrics registers the metrics every run shows, so that a
// threshold may name them before their first sample.
func standardMetrics(r *metrics.Registry) {
	r.Counter("iterations")
	r.Counter("dropped_iterations")
	r.Trend("iteration_duration", true)
	r.Gauge("vus")
	r.Gauge("vus_max")
	r.Rate("checks")
}

// Run runs the test to its end and evaluates its thresholds. A problem
// with the configuration is a *ConfigError; other errors mean the run
// could not be carried out. Failed thresholds are not an error: see
// Outcome.ThresholdsFailed.
func Run(ctx context.Context, o RunOptions) (*Outcome, error) {
	cfg := o.Config
	if cfg == nil || o.Tokens == nil {
		return nil, errors.New("loadtest: RunOptions.Config and Tokens are required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Segments > 1 {
		cfg = cfg.segment(o.Segment, o.Segments)
	}
	target, _ := url.Parse(cfg.Target)
	ths, err := threshold.Parse(cfg.Thresholds)
	if err != nil {
		return nil, &ConfigError{err}
	}
	reg := o.Registry
	if reg == nil {
		reg = metrics.NewRegistry()
	}
	standardMetrics(reg)
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	prefix := o.UserPrefix
	if prefix == "" {
		prefix = "lt_"
	}
	interval := o.ThresholdInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	httpClient := NewHTTPClient(NewSpreadDialer(o.LocalIPs, 15*time.Second))
	defer httpClient.CloseIdleConnections()

	// Build every scenario before anything runs, so bad options fail fast.
	type prepared struct {
		name string
		sc   *ScenarioConfig
		impl Scenario
	}
	var runs []prepared
	var scs []Scenario // the same, for closing
	out := &Outcome{Registry: reg}
	for _, name := range slices.Sorted(maps.Keys(cfg.Scenarios)) {
		sc := cfg.Scenarios[name]
		env := &Env{
			Scenario: name, Tags: metrics.Tags{"scenario": name}, Target: target,
			Tokens: o.Tokens, APIKey: o.APIKey, UserPrefix: prefix, Metrics: reg,
			HTTP: httpClient, Loopback: isLoopbackHost(target.Hostname()), Segment: o.Segment,
			Logger: logger.With("scenario", name),
		}
		impl, err := lookupScenario(sc.Exec)(env, sc.Options)
		if err != nil {
			var ce *ConfigError
			if errors.As(err, &ce) {
				return nil, configErrorf("scenario %s: %w", name, ce.Err)
			}
			return nil, fmt.Errorf("loadtest: scenario %s: %w", name, err)
		}
		runs = append(runs, prepared{name, sc, impl})
		scs = append(scs, impl)
		out.Scenarios = append(out.Scenarios, scenarioInfo(name, sc))
	}
	if err := ths.Check(reg); err != nil {
		closeAll(scs)
		return nil, &ConfigError{err}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, p := range runs {
		if s, ok := p.impl.(Setupper); ok {
			if err := s.Setup(runCtx); err != nil {
				closeAll(scs)
				return nil, fmt.Errorf("loadtest: scenario %s: setup: %w", p.name, err)
			}
		}
	}
	closed := false
	defer func() {
		if !closed {
			closeAll(scs)
		}
	}()

	start := time.Now()
	var aborted atomic.Bool
	var errCount atomic.Int64
	monitorDone := make(chan struct{})
	var monitor sync.WaitGroup
	monitor.Add(1)
	go func() {
		defer monitor.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		lastEval := start
		for {
			select {
			case <-monitorDone:
				return
			case now := <-tick.C:
				reg.Tick(now)
				if o.Progress != nil {
					writeProgress(o.Progress, o.ProgressTTY, reg, now.Sub(start), errCount.Load())
				}
				if now.Sub(lastEval) >= interval {
					lastEval = now
					if ab := threshold.ShouldAbort(ths.Evaluate(reg, now.Sub(start))); len(ab) > 0 {
						logger.Warn("threshold failed with abortOnFail: stopping the run", "threshold", ab[0].Key+" "+ab[0].Source)
						aborted.Store(true)
						cancel()
					}
				}
			}
		}
	}()

	g, gctx := errgroup.WithContext(runCtx)
	for _, p := range runs {
		var logged atomic.Int64
		g.Go(func() error {
			_, err := executor.Run(gctx, executor.Options{
				Scenario: p.name, Config: p.sc.Config, Registry: reg,
				Iterate: p.impl.Iterate, Retire: p.impl.Retire,
				OnError: func(vu *executor.VU, err error) {
					errCount.Add(1)
					if logged.Add(1) <= 5 {
						logger.Warn("iteration failed", "scenario", p.name, "vu", vu.ID, "err", err)
					}
				},
			})
			if err != nil && gctx.Err() == nil {
				return fmt.Errorf("loadtest: scenario %s: %w", p.name, err)
			}
			return nil
		})
	}
	runErr := g.Wait()
	// Scenarios may hold work past their executors (connections held for
	// their time): it belongs to the run, so it ends before the metrics
	// are read.
	closeAll(scs)
	closed = true
	close(monitorDone)
	monitor.Wait()
	out.Elapsed = time.Since(start)
	reg.Tick(time.Now())
	if o.Progress != nil {
		writeProgress(o.Progress, o.ProgressTTY, reg, out.Elapsed, errCount.Load())
		if o.ProgressTTY {
			fmt.Fprintln(o.Progress)
		}
	}
	out.Thresholds = ths.Evaluate(reg, out.Elapsed)
	out.Aborted = aborted.Load()
	out.Interrupted = ctx.Err() != nil
	return out, runErr
}

func scenarioInfo(name string, sc *ScenarioConfig) summary.Scenario {
	return summary.Scenario{
		Name: name, Executor: sc.Executor, VUs: int(sc.MaxVUsNeeded()),
		Duration: sc.TotalDuration() + time.Duration(sc.StartTime),
	}
}

func closeAll(scs []Scenario) {
	for _, sc := range scs {
		if c, ok := sc.(Closer); ok {
			_ = c.Close()
		}
	}
}

// writeProgress writes k6's kind of progress line.
func writeProgress(w io.Writer, tty bool, reg *metrics.Registry, elapsed time.Duration, errs int64) {
	vus := reg.Lookup("vus").Stats(nil, 0).Value
	maxVUs := reg.Lookup("vus_max").Stats(nil, 0).Value
	its := reg.Lookup("iterations").Stats(nil, elapsed)
	line := fmt.Sprintf("running (%s), %03.0f/%03.0f VUs, %.0f complete iterations, %.1f it/s, %d errors",
		fmtElapsed(elapsed), vus, maxVUs, its.Count, its.PerSecond, errs)
	if tty {
		fmt.Fprintf(w, "\r\033[K%s", line)
		return
	}
	fmt.Fprintln(w, line)
}

func fmtElapsed(d time.Duration) string {
	m := int(d / time.Minute)
	s := (d % time.Minute).Seconds()
	return fmt.Sprintf("%02dm%04.1fs", m, s)
}

// segment returns the share of the test that agent i of n runs: VUs,
// iterations and rates are split as evenly as whole numbers allow, the
// first agents taking the remainders. A scenario whose share is nothing is
// left out.
func (c *Config) segment(i, n int) *Config {
	share := func(v int64) int64 {
		s := v / int64(n)
		if int64(i) < v%int64(n) {
			s++
		}
		return s
	}
	shareF := func(v float64) float64 { return v / float64(n) }
	out := *c
	out.Scenarios = map[string]*ScenarioConfig{}
	for name, sc := range c.Scenarios {
		cp := *sc
		cp.VUs, cp.StartVUs, cp.Iterations = share(sc.VUs), share(sc.StartVUs), share(sc.Iterations)
		cp.PreAllocatedVUs, cp.MaxVUs = max(share(sc.PreAllocatedVUs), 1), max(share(sc.MaxVUs), 1)
		cp.Rate, cp.StartRate = shareF(sc.Rate), shareF(sc.StartRate)
		cp.Stages = slices.Clone(sc.Stages)
		empty := cp.VUs == 0 && cp.StartVUs == 0 && cp.Rate == 0 && cp.StartRate == 0
		for j := range cp.Stages {
			cp.Stages[j].Target = share(sc.Stages[j].Target)
			empty = empty && cp.Stages[j].Target == 0
		}
		if cp.Executor == executor.SharedIterations || cp.Executor == executor.PerVUIterations {
			empty = cp.VUs == 0 || cp.Iterations == 0
			cp.VUs = min(cp.VUs, max(cp.Iterations, 1))
		}
		if empty {
			continue // this agent's share of the scenario is nothing
		}
		out.Scenarios[name] = &cp
	}
	return &out
}
