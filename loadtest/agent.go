package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/partyline/partyline/loadtest/metrics"
	"github.com/partyline/partyline/loadtest/threshold"
)

// AgentJob is what a coordinator asks an agent to run: its segment of the
// test, with the settings of the coordinator's command line.
type AgentJob struct {
	Config     *Config      `json:"config"`
	Segment    int          `json:"segment"`
	Segments   int          `json:"segments"`
	UserPrefix string       `json:"user_prefix"`
	JWTSecret  string       `json:"jwt_secret,omitempty"`
	TokenURL   string       `json:"token_url,omitempty"`
	APIKey     string       `json:"api_key,omitempty"`
	LocalIPs   []netip.Addr `json:"local_ips,omitempty"`
}

// AgentState is an agent's answer to the coordinator's poll.
type AgentState struct {
	Running bool             `json:"running"`
	Done    bool             `json:"done"`
	Error   string           `json:"error,omitempty"`
	Config  bool             `json:"config_error,omitempty"` // Error is a config error
	Metrics metrics.Snapshot `json:"metrics"`
}

// Agent runs jobs for a coordinator, one at a time, over HTTP:
// POST /run starts one, GET /state reports it with the metrics so far,
// POST /abort stops it.
type Agent struct {
	// LocalIPs, when set, override a job's: they are this host's.
	LocalIPs []netip.Addr
	// Target, when set, overrides the job's target, so that each agent
	// of a run can drive its own node of a cluster.
	Target string
	Logger *slog.Logger

	mu      sync.Mutex
	reg     *metrics.Registry
	cancel  context.CancelFunc
	running bool
	done    bool
	err     error
	wg      sync.WaitGroup
}

// ServeHTTP serves the agent API.
func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/run":
		var job AgentJob
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&job); err != nil || job.Config == nil {
			http.Error(w, "bad job", http.StatusBadRequest)
			return
		}
		if err := a.start(job); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodGet && r.URL.Path == "/state":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a.state())
	case r.Method == http.MethodPost && r.URL.Path == "/abort":
		a.mu.Lock()
		if a.cancel != nil {
			a.cancel()
		}
		a.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

func (a *Agent) start(job AgentJob) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.running {
		return errors.New("a job is running")
	}
	tokens, err := jobTokens(job)
	if err != nil {
		return err
	}
	ips := job.LocalIPs
	if len(a.LocalIPs) > 0 {
		ips = a.LocalIPs
	}
	if a.Target != "" {
		cfg := *job.Config
		cfg.Target = a.Target
		job.Config = &cfg
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.reg, a.cancel, a.running, a.done, a.err = metrics.NewRegistry(), cancel, true, false, nil
	reg := a.reg
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer cancel()
		_, err := Run(ctx, RunOptions{
			Config: job.Config, Tokens: tokens, APIKey: job.APIKey, UserPrefix: job.UserPrefix,
			LocalIPs: ips, Segment: job.Segment, Segments: job.Segments, Registry: reg, Logger: a.Logger,
		})
		a.mu.Lock()
		a.running, a.done, a.err = false, true, err
		a.mu.Unlock()
	}()
	return nil
}

func (a *Agent) state() AgentState {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := AgentState{Running: a.running, Done: a.done}
	if a.err != nil {
		st.Error = a.err.Error()
		var ce *ConfigError
		st.Config = errors.As(a.err, &ce)
	}
	if a.reg != nil {
		st.Metrics = a.reg.Snapshot()
	}
	return st
}

// Close aborts a running job and waits for it.
func (a *Agent) Close() {
	a.mu.Lock()
	if a.cancel != nil {
		a.cancel()
	}
	a.mu.Unlock()
	a.wg.Wait()
}

func jobTokens(job AgentJob) (TokenSource, error) {
	switch {
	case job.JWTSecret != "":
		return NewSecretTokens(job.JWTSecret)
	case job.TokenURL != "":
		return &DevTokens{URL: job.TokenURL}, nil
	}
	return nil, configErrorf("no token source: give --jwt-secret or --token-url")
}

// CoordinateOptions configures a distributed run.
type CoordinateOptions struct {
	// Agents are the agents' base URLs, such as http://127.0.0.1:6565.
	Agents []string
	// Job is the test; Segment, Segments and UserPrefix are set per agent.
	Job AgentJob
	// Progress, ProgressTTY and ThresholdInterval are as in RunOptions.
	Progress          io.Writer
	ProgressTTY       bool
	ThresholdInterval time.Duration
	Client            *http.Client
}

// Coordinate runs the test on every agent at once and merges their
// metrics into one Outcome: histograms merge exactly, so the percentiles
// are those of all samples. Thresholds are evaluated on the merged metrics
// during the run, every ThresholdInterval, and at the end.
func Coordinate(ctx context.Context, o CoordinateOptions) (*Outcome, error) {
	if len(o.Agents) == 0 {
		return nil, configErrorf("no agents")
	}
	cfg := o.Job.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ths, err := threshold.Parse(cfg.Thresholds)
	if err != nil {
		return nil, &ConfigError{err}
	}
	if _, err := jobTokens(o.Job); err != nil {
		return nil, err
	}
	hc := o.Client
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	interval := o.ThresholdInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	post := func(ctx context.Context, agent, path string, body any) error {
		raw, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, agent+path, bytes.NewReader(raw))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			return fmt.Errorf("%s%s: %s: %s", agent, path, resp.Status, bytes.TrimSpace(msg))
		}
		return nil
	}
	abortAll := func() {
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, ag := range o.Agents {
			_ = post(actx, ag, "/abort", nil)
		}
	}
	start := time.Now()
	for i, ag := range o.Agents {
		job := o.Job
		job.Segment, job.Segments = i, len(o.Agents)
		job.UserPrefix = fmt.Sprintf("%sa%d_", o.Job.UserPrefix, i)
		if err := post(ctx, ag, "/run", job); err != nil {
			abortAll()
			return nil, fmt.Errorf("loadtest: start agent: %w", err)
		}
	}
	poll := func(ctx context.Context) (*metrics.Registry, []AgentState, error) {
		reg := metrics.NewRegistry()
		standardMetrics(reg)
		states := make([]AgentState, len(o.Agents))
		for i, ag := range o.Agents {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, ag+"/state", nil)
			if err != nil {
				return nil, nil, err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return nil, nil, fmt.Errorf("loadtest: agent %s: %w", ag, err)
			}
			err = json.NewDecoder(resp.Body).Decode(&states[i])
			resp.Body.Close()
			if err != nil {
				return nil, nil, fmt.Errorf("loadtest: agent %s: %w", ag, err)
			}
			if err := reg.Merge(states[i].Metrics); err != nil {
				return nil, nil, fmt.Errorf("loadtest: agent %s: %w", ag, err)
			}
		}
		return reg, states, nil
	}
	out := &Outcome{}
	for name, sc := range cfg.Scenarios {
		out.Scenarios = append(out.Scenarios, scenarioInfo(name, sc))
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	done := ctx.Done()
	for {
		select {
		case <-done:
			done = nil // from now on, wait for the agents to stop
			abortAll()
			out.Interrupted = true
		case <-tick.C:
		}
		reg, states, err := poll(context.WithoutCancel(ctx))
		if err != nil {
			abortAll()
			return nil, err
		}
		elapsed := time.Since(start)
		if o.Progress != nil {
			writeProgress(o.Progress, o.ProgressTTY, reg, elapsed, int64(reg.Counter("iteration_errors").Stats(nil, 0).Count))
		}
		running := false
		for _, st := range states {
			running = running || st.Running
		}
		if !running {
			for i, st := range states {
				if st.Error != "" && !out.Interrupted {
					if st.Config {
						return nil, configErrorf("agent %s: %s", o.Agents[i], st.Error)
					}
					return nil, fmt.Errorf("loadtest: agent %s: %s", o.Agents[i], st.Error)
				}
			}
			if o.Progress != nil && o.ProgressTTY {
				fmt.Fprintln(o.Progress)
			}
			out.Registry, out.Elapsed = reg, elapsed
			out.Thresholds = ths.Evaluate(reg, elapsed)
			return out, nil
		}
		if out.Interrupted {
			continue // wait for the agents to stop
		}
		if ab := threshold.ShouldAbort(ths.Evaluate(reg, elapsed)); len(ab) > 0 && !out.Aborted {
			out.Aborted = true
			abortAll()
		}
	}
}
