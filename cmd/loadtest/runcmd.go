package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/partyline/partyline/loadtest"
	"github.com/partyline/partyline/loadtest/metrics"
	"github.com/partyline/partyline/loadtest/summary"
)

// Exit codes of loadtest run, as k6 has them.
const (
	exitThresholds = 99  // a threshold failed
	exitFailed     = 103 // the run could not be carried out
	exitConfig     = 104 // the test or the flags are wrong
	exitAborted    = 105 // SIGINT or SIGTERM stopped the run
)

// exitError ends the process with code after printing err (when non-nil).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

const runAbout = `Runs a test: the scenarios of CONFIG (YAML or JSON, k6's shape), or one
scenario given with --scenario, against the server at --url. Prints the
end-of-test summary; exits 99 when a threshold failed, 104 on a bad config.
Scenarios: `

type runFlags struct {
	url, tokenURL, jwtSecret, apiKey string
	vus                              int64
	duration                         time.Duration
	stages, scenario                 string
	summaryExport, out, report       string
	localIPs                         string
	agent, coordinator               bool
	listen, agents                   string
	quiet, noSummary                 bool
	verbose                          bool
}

func runRun(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&f.url, "url", "", "the server's base URL, such as http://127.0.0.1:8080 (or target: in the config); for an agent, the node it drives")
	fs.StringVar(&f.tokenURL, "token-url", "", "a dev-mode token endpoint, such as http://127.0.0.1:8080/v1/dev/token")
	fs.StringVar(&f.jwtSecret, "jwt-secret", getenv("PARTYLINE_JWT_SECRET"), "the server's HS256 secret, to mint tokens (env PARTYLINE_JWT_SECRET)")
	fs.StringVar(&f.apiKey, "api-key", getenv("PARTYLINE_API_KEY"), "the server API key, for scenarios that publish server-side (env PARTYLINE_API_KEY)")
	fs.Int64Var(&f.vus, "vus", 0, "VUs of every scenario (a constant-vus run unless --stages)")
	fs.DurationVar(&f.duration, "duration", 0, "duration of every scenario (a constant-vus run)")
	fs.StringVar(&f.stages, "stages", "", "a ramping-vus run: duration:target,... such as 30s:100,1m:100,10s:0")
	fs.StringVar(&f.scenario, "scenario", "", "run this scenario alone, without a config file")
	fs.StringVar(&f.summaryExport, "summary-export", "", "write the summary as JSON to this file")
	fs.StringVar(&f.out, "out", "", "stream every sample: json=FILE (NDJSON)")
	fs.StringVar(&f.report, "report", "", "write a self-contained HTML report to this file")
	fs.StringVar(&f.localIPs, "local-ips", "", "source addresses to spread connections over: list, range or CIDR, such as 127.0.0.2-127.0.0.50")
	fs.BoolVar(&f.agent, "agent", false, "serve as an agent of a distributed run on --listen")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:6565", "the agent's address")
	fs.BoolVar(&f.coordinator, "coordinator", false, "run the test on the --agents and merge their results")
	fs.StringVar(&f.agents, "agents", "", "the agents of a coordinated run: host:port,...")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress line")
	fs.BoolVar(&f.noSummary, "no-summary", false, "no end-of-test summary")
	fs.BoolVar(&f.verbose, "verbose", false, "log run events and the first iteration errors of each scenario to stderr")
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: loadtest run [flags] [CONFIG.yaml]\n\n%s%s\n\nflags:\n", runAbout, strings.Join(loadtest.ScenarioNames(), ", "))
		fs.PrintDefaults()
	}
	// Flags may come before and after the config file.
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{exitConfig, err}
	}
	var files []string
	for rest := fs.Args(); len(rest) > 0; rest = fs.Args() {
		files = append(files, rest[0])
		if err := fs.Parse(rest[1:]); err != nil {
			return &exitError{exitConfig, err}
		}
	}
	logger := slog.New(slog.DiscardHandler)
	if f.verbose {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	ips, err := loadtest.ParseLocalIPs(f.localIPs)
	if err != nil {
		return &exitError{exitConfig, err}
	}
	if f.agent {
		return serveAgent(ctx, f.listen, f.url, ips, logger, stderr)
	}

	cfg, err := buildConfig(&f, files)
	if err != nil {
		return &exitError{exitConfig, err}
	}
	preflight(stderr, cfg)
	job := loadtest.AgentJob{Config: cfg, JWTSecret: f.jwtSecret, TokenURL: f.tokenURL, APIKey: f.apiKey, LocalIPs: ips, UserPrefix: "lt_"}
	progress, tty := io.Writer(nil), false
	if !f.quiet {
		progress, tty = stderr, isTerminal(stderr)
	}
	var flushOut func() error
	var outcome *loadtest.Outcome
	if f.coordinator {
		var agents []string
		for a := range strings.SplitSeq(f.agents, ",") {
			if a = strings.TrimSpace(a); a != "" {
				if !strings.Contains(a, "://") {
					a = "http://" + a
				}
				agents = append(agents, a)
			}
		}
		outcome, err = loadtest.Coordinate(ctx, loadtest.CoordinateOptions{Agents: agents, Job: job, Progress: progress, ProgressTTY: tty})
	} else {
		tokens, terr := tokenSource(&f)
		if terr != nil {
			return &exitError{exitConfig, terr}
		}
		opts := loadtest.RunOptions{Config: cfg, Tokens: tokens, APIKey: f.apiKey, LocalIPs: ips, Progress: progress, ProgressTTY: tty, Logger: logger}
		if f.out != "" {
			kind, path, ok := strings.Cut(f.out, "=")
			if !ok || kind != "json" || path == "" {
				return &exitError{exitConfig, fmt.Errorf("--out %q: want json=FILE", f.out)}
			}
			file, err := os.Create(path)
			if err != nil {
				return &exitError{exitConfig, err}
			}
			defer file.Close()
			opts.Registry = metrics.NewRegistry()
			sample, flush := summary.NewNDJSON(file, opts.Registry)
			opts.Registry.OnSample(sample)
			flushOut = flush
		}
		outcome, err = loadtest.Run(ctx, opts)
	}
	if flushOut != nil {
		if ferr := flushOut(); ferr != nil && err == nil {
			err = fmt.Errorf("--out: %w", ferr)
		}
	}
	var ce *loadtest.ConfigError
	switch {
	case errors.As(err, &ce):
		return &exitError{exitConfig, err}
	case err != nil && outcome == nil:
		return &exitError{exitFailed, err}
	}
	in := outcome.SummaryInput()
	if !f.noSummary {
		if serr := summary.Text(stdout, in); serr != nil {
			return &exitError{exitFailed, serr}
		}
	}
	for _, w := range []struct {
		path  string
		write func(io.Writer, summary.Input) error
	}{{f.summaryExport, summary.Export}, {f.report, summary.HTML}} {
		if w.path == "" {
			continue
		}
		if werr := writeFile(w.path, func(out io.Writer) error { return w.write(out, in) }); werr != nil {
			return &exitError{exitFailed, werr}
		}
	}
	switch {
	case err != nil:
		return &exitError{exitFailed, err}
	case outcome.ThresholdsFailed():
		return &exitError{exitThresholds, errors.New("some thresholds have failed")}
	case outcome.Interrupted:
		return &exitError{exitAborted, errors.New("the run was interrupted")}
	}
	return nil
}

func buildConfig(f *runFlags, files []string) (*loadtest.Config, error) {
	var cfg *loadtest.Config
	switch {
	case len(files) > 1:
		return nil, fmt.Errorf("one config file, not %d", len(files))
	case len(files) == 1:
		var err error
		if cfg, err = loadtest.LoadConfig(files[0]); err != nil {
			return nil, err
		}
	case f.scenario != "":
		cfg = &loadtest.Config{}
	default:
		return nil, errors.New("give a config file or --scenario")
	}
	ov := loadtest.Overrides{Target: f.url, Scenario: f.scenario, VUs: f.vus, Duration: f.duration}
	if f.stages != "" {
		st, err := loadtest.ParseStages(f.stages)
		if err != nil {
			return nil, err
		}
		ov.Stages = st
	}
	ov.Apply(cfg)
	if f.jwtSecret == "" && f.tokenURL == "" && !f.coordinator {
		return nil, errors.New("give --jwt-secret or --token-url for the synthetic users' tokens")
	}
	return cfg, cfg.Validate()
}

func tokenSource(f *runFlags) (loadtest.TokenSource, error) {
	if f.jwtSecret != "" {
		return loadtest.NewSecretTokens(f.jwtSecret)
	}
	return &loadtest.DevTokens{URL: f.tokenURL}, nil
}

func writeFile(path string, write func(io.Writer) error) error {
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(file); err != nil {
		file.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return file.Close()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// preflight reports the limits that cap how many connections this process
// can open, raising the open-file limit to its hard limit when it may.
func preflight(w io.Writer, cfg *loadtest.Config) {
	var facts []string
	files, hard, ok := raiseOpenFiles()
	if ok {
		facts = append(facts, fmt.Sprintf("open files %d (hard limit %d)", files, hard))
	}
	if raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var lo, hi int
		if _, err := fmt.Sscan(string(raw), &lo, &hi); err == nil {
			facts = append(facts, fmt.Sprintf("ephemeral ports %d-%d (%d per source address)", lo, hi, hi-lo+1))
		}
	}
	var vus int64
	for _, sc := range cfg.Scenarios {
		vus += sc.MaxVUsNeeded()
	}
	facts = append(facts, fmt.Sprintf("up to %d VUs", vus))
	fmt.Fprintf(w, "preflight: %s\n", strings.Join(facts, ", "))
	if uint64(vus) > files && files > 0 {
		fmt.Fprintf(w, "preflight: warning: more VUs than open files; connections beyond the limit will fail (spread the run over agents)\n")
	}
}

// serveAgent serves the agent API until ctx ends.
func serveAgent(ctx context.Context, addr, target string, ips []netip.Addr, logger *slog.Logger, stderr io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return &exitError{exitConfig, err}
	}
	a := &loadtest.Agent{LocalIPs: ips, Target: target, Logger: logger}
	srv := &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "agent: listening on %s\n", ln.Addr())
	go func() {
		<-ctx.Done()
		a.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
