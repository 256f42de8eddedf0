package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/partyline/partyline/loadtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	var ee *exitError
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ee):
		if ee.code != exitThresholds {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
		}
		os.Exit(ee.code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	}
}

const usage = `usage: loadtest <command> [flags]

commands:
  run      run a test: scenarios, executors and thresholds as in k6 (loadtest run -h)
  idle     open idle connections and report the server's memory per connection
  fanout   publish through the server API and report delivery latency and throughput

Run "loadtest <command> -h" for the flags. idle and fanout accept only
loopback servers.
`

// run is the whole command; main only wires the process into it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "run":
		return runRun(ctx, args[1:], getenv, stdout, stderr)
	case "idle":
		return runIdle(ctx, args[1:], getenv, stdout, stderr)
	case "fanout":
		return runFanout(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// common holds the flags both commands share.
type common struct {
	addr, adminAddr string
	jwtSecret       string
	serverPID       int
	conns           int
	userPrefix      string
	dialConcurrency int
	timeout         time.Duration
	jsonOut         bool
	cpuProfile      string
}

func (c *common) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "the server's main listener (WebSocket and server API); loopback only")
	fs.StringVar(&c.adminAddr, "admin-addr", "127.0.0.1:9090", "the server's admin listener (/metrics, pprof); loopback only")
	fs.StringVar(&c.jwtSecret, "jwt-secret", getenv("PARTYLINE_JWT_SECRET"), "the server's HS256 secret, to mint tokens (env PARTYLINE_JWT_SECRET)")
	fs.IntVar(&c.serverPID, "server-pid", 0, "the server's pid, to read its CPU time from /proc; 0 reads process_cpu_seconds_total")
	fs.IntVar(&c.conns, "conns", 10000, "connections to open, each a distinct user")
	fs.StringVar(&c.userPrefix, "user-prefix", "lt_", "user ids are <prefix><n>")
	fs.IntVar(&c.dialConcurrency, "dial-concurrency", 64, "connections set up at once")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "hard limit on the whole run")
	fs.BoolVar(&c.jsonOut, "json", false, "print the result as JSON instead of text")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write the load client's own CPU profile to this file")
}

func (c *common) check() error {
	for _, a := range []string{c.addr, c.adminAddr} {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return fmt.Errorf("address %q: %w", a, err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("address %q is not a loopback IP: loadtest only targets this machine", a)
		}
	}
	if c.jwtSecret == "" {
		return errors.New("-jwt-secret (or PARTYLINE_JWT_SECRET) is required")
	}
	if c.conns < 1 {
		return errors.New("-conns must be at least 1")
	}
	return nil
}

func (c *common) dial() loadtest.DialOptions {
	return loadtest.DialOptions{
		URL:         "ws://" + c.addr + "/v1/ws",
		JWTSecret:   c.jwtSecret,
		UserPrefix:  c.userPrefix,
		Concurrency: c.dialConcurrency,
	}
}

func (c *common) server() loadtest.Server {
	return loadtest.Server{AdminURL: "http://" + c.adminAddr, PID: c.serverPID}
}

// start applies the run's time limit and starts the client profile; the
// returned func undoes both.
func (c *common) start(ctx context.Context) (context.Context, func(), error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	if c.cpuProfile == "" {
		return ctx, cancel, nil
	}
	f, err := os.Create(c.cpuProfile)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		cancel()
		return nil, nil, err
	}
	return ctx, func() { pprof.StopCPUProfile(); f.Close(); cancel() }, nil
}

type textResult interface{ WriteText(io.Writer) error }

func (c *common) print(stdout io.Writer, res textResult) error {
	if c.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return res.WriteText(stdout)
}

func parse(fs *flag.FlagSet, args []string, stderr io.Writer, about string) error {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: loadtest %s [flags]\n\n%s\n\nflags:\n", fs.Name(), about)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return nil
}

func runIdle(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	var c common
	c.register(fs, getenv)
	var opts loadtest.IdleOptions
	fs.DurationVar(&opts.Settle, "settle", 10*time.Second, "how long the connections sit idle before the first sample")
	fs.IntVar(&opts.Samples, "samples", 2, "samples taken after settling; the last is reported")
	fs.DurationVar(&opts.SampleGap, "sample-gap", 5*time.Second, "pause between samples")
	about := `Opens -conns connections; each says hello as its own user and subscribes
to user:<id>, then stays idle. Reports the server's growth in RSS, heap
plus stack in use (after a forced GC) and goroutines, per connection.`
	if err := parse(fs, args, stderr, about); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	opts.Dial, opts.Server, opts.Conns, opts.Log = c.dial(), c.server(), c.conns, stderr
	ctx, done, err := c.start(ctx)
	if err != nil {
		return err
	}
	defer done()
	res, err := loadtest.RunIdle(ctx, opts)
	if err != nil {
		return err
	}
	return c.print(stdout, res)
}

func runFanout(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	var c common
	c.register(fs, getenv)
	var opts loadtest.FanoutOptions
	fs.StringVar(&opts.Mode, "mode", loadtest.ModeBroadcast, "broadcast: everyone on -channel; users: each on its own user:<id>, publications to random users")
	fs.StringVar(&opts.Channel, "channel", "broadcast:bench", "the channel of -mode broadcast")
	rates := fs.String("rate", "1", "publications per second in total; a comma-separated list measures each rate in turn on the same subscribers")
	fs.DurationVar(&opts.Warmup, "warmup", 10*time.Second, "publishing before the measured window")
	fs.DurationVar(&opts.Duration, "duration", 30*time.Second, "the measured window")
	fs.DurationVar(&opts.Drain, "drain", 10*time.Second, "longest wait for the window's deliveries after publishing stops")
	fs.DurationVar(&opts.Quiet, "quiet", 2*time.Second, "after dialing, wait until no frame has arrived for this long (setup traffic such as join events) before publishing")
	fs.IntVar(&opts.Publishers, "publishers", 4, "concurrent publish requests (keep-alive HTTP connections)")
	fs.IntVar(&opts.DataBytes, "data-bytes", 64, "size of each publication's JSON data, which carries its send time")
	fs.IntVar(&opts.Shards, "shards", 16, "latency recorder shards")
	fs.StringVar(&opts.APIKey, "api-key", getenv("PARTYLINE_API_KEY"), "the server API key (env PARTYLINE_API_KEY)")
	publishAddr := fs.String("publish-addr", "", "publish through the server API of this node instead of -addr, to measure delivery across nodes; loopback only")
	serverProfile := fs.String("server-profile", "", "write the server's CPU profile over each measured window to this file, with the rate inserted before the extension (cpu.pprof: cpu-5.pprof)")
	about := `Opens -conns subscribers and waits until their setup traffic stops
(-quiet). Then, for each -rate, publishes that many publications per second
through POST /v1/server/publish for -warmup and then -duration, and reports,
for the publications sent in the measured window: deliveries against the expected
count, delivery latency (receive time minus send time: p50, p99, p99.9, max),
throughput, and the server's CPU over the window.`
	err := parse(fs, args, stderr, about)
	if err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	if opts.APIKey == "" {
		return errors.New("-api-key (or PARTYLINE_API_KEY) is required")
	}
	opts.Dial, opts.Server, opts.Conns, opts.Log = c.dial(), c.server(), c.conns, stderr
	opts.APIURL = "http://" + c.addr
	if *publishAddr != "" {
		host, _, err := net.SplitHostPort(*publishAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("-publish-addr %q is not a loopback IP and port: loadtest only targets this machine", *publishAddr)
		}
		opts.APIURL = "http://" + *publishAddr
	}
	if opts.Rates, err = parseRates(*rates); err != nil {
		return err
	}
	var profiles []*os.File
	defer func() {
		for _, f := range profiles {
			f.Close()
		}
	}()
	if *serverProfile != "" {
		opts.ServerProfile = func(rate float64) io.Writer {
			ext := filepath.Ext(*serverProfile)
			name := strings.TrimSuffix(*serverProfile, ext) + "-" + strconv.FormatFloat(rate, 'g', -1, 64) + ext
			f, err := os.Create(name)
			if err != nil {
				fmt.Fprintf(stderr, "server profile: %v\n", err)
				return nil
			}
			profiles = append(profiles, f)
			return f
		}
	}
	ctx, done, err := c.start(ctx)
	if err != nil {
		return err
	}
	defer done()
	results, err := loadtest.RunFanout(ctx, opts)
	for _, res := range results {
		if perr := c.print(stdout, res); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}

// parseRates parses a comma-separated list of positive rates.
func parseRates(s string) ([]float64, error) {
	var rates []float64
	for _, f := range strings.Split(s, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || r <= 0 {
			return nil, fmt.Errorf("-rate %q: %q is not a positive number", s, f)
		}
		rates = append(rates, r)
	}
	return rates, nil
}
