package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"
)

// Fan-out modes.
const (
	// ModeBroadcast subscribes every connection to one channel and
	// publishes every publication there: each reaches every subscriber.
	ModeBroadcast = "broadcast"
	// ModeUsers subscribes each connection to its own user:<id> channel and
	// publishes each publication to one user picked at random: each reaches
	// one subscriber.
	ModeUsers = "users"
)

// FanoutOptions configures a fan-out measurement.
type FanoutOptions struct {
	// Dial says where the subscribers connect and as whom.
	Dial DialOptions
	// Server is observed for CPU time and metrics.
	Server Server
	// APIURL is the server's main listener, like http://127.0.0.1:8080,
	// where publications go through the server API with APIKey.
	APIURL, APIKey string
	// Mode is ModeBroadcast or ModeUsers. Zero means ModeBroadcast.
	Mode string
	// Conns is the number of subscribers. Required.
	Conns int
	// Channel is the broadcast channel. Zero means broadcast:bench.
	Channel string
	// Rates are publications per second in total, one measurement each,
	// run one after the other on the same subscribers. Required.
	Rates []float64
	// Warmup is how long publishing runs before each measured window.
	// Zero means 10 s.
	Warmup time.Duration
	// Duration is the measured window. Zero means 30 s.
	Duration time.Duration
	// Drain bounds the wait for the window's last deliveries after
	// publishing stops. Zero means 10 s.
	Drain time.Duration
	// Quiet is how long no frame may arrive before the setup traffic (such
	// as presence join events on a shared channel) counts as over and
	// publishing starts. Zero means 2 s.
	Quiet time.Duration
	// SettleMax bounds the wait for that quiet. Zero means 3 minutes.
	SettleMax time.Duration
	// Publishers is the number of concurrent publish requests (and HTTP
	// connections). Zero means 4.
	Publishers int
	// DataBytes is the size of each publication's JSON data. Zero means 64.
	DataBytes int
	// Shards is the number of latency recorder shards. Zero means 16.
	Shards int
	// ServerProfile, when set, is called for each rate and returns where
	// the server's CPU profile over that measured window goes (from the
	// admin listener's pprof); a nil writer skips that rate.
	ServerProfile func(rate float64) io.Writer
	// Log receives progress lines. Nil means none.
	Log io.Writer
}

func (o *FanoutOptions) setDefaults() error {
	if o.Mode == "" {
		o.Mode = ModeBroadcast
	}
	if o.Mode != ModeBroadcast && o.Mode != ModeUsers {
		return fmt.Errorf("loadtest: mode %q is neither %s nor %s", o.Mode, ModeBroadcast, ModeUsers)
	}
	if o.Conns <= 0 {
		return errors.New("loadtest: fanout needs at least one connection")
	}
	if len(o.Rates) == 0 {
		return errors.New("loadtest: fanout needs a publication rate")
	}
	for _, r := range o.Rates {
		if r <= 0 {
			return fmt.Errorf("loadtest: publication rate %g is not above 0", r)
		}
	}
	if o.Channel == "" {
		o.Channel = "broadcast:bench"
	}
	if o.Warmup < 0 || o.Duration < 0 || o.Drain < 0 || o.Quiet < 0 || o.SettleMax < 0 {
		return errors.New("loadtest: durations must not be negative")
	}
	if o.Warmup == 0 {
		o.Warmup = 10 * time.Second
	}
	if o.Duration == 0 {
		o.Duration = 30 * time.Second
	}
	if o.Drain == 0 {
		o.Drain = 10 * time.Second
	}
	if o.Quiet == 0 {
		o.Quiet = 2 * time.Second
	}
	if o.SettleMax == 0 {
		o.SettleMax = 3 * time.Minute
	}
	if o.Publishers <= 0 {
		o.Publishers = 4
	}
	if o.DataBytes <= 0 {
		o.DataBytes = 64
	}
	if o.Shards <= 0 {
		o.Shards = 16
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

// FanoutResult is the outcome of one rate of a fan-out measurement. Counts
// and rates cover the publications sent inside the measured window.
type FanoutResult struct {
	Mode     string
	Channel  string `json:",omitempty"`
	Conns    int
	Rate     float64 // publications per second asked for
	Window   time.Duration
	DialTime time.Duration
	// SettleTime is how long after the last subscription the setup
	// traffic took to stop, and SetupEvents how many events it carried.
	SettleTime  time.Duration
	SetupEvents int64

	Published     int64 // publications in the window the server API accepted
	PublishErrors int64 // failed publish requests, in the window or not
	Skipped       int64 // publications not sent because the publishers fell behind
	Expected      int64 // deliveries owed for Published
	Latency       Latency
	Counts        Counts
	// DeliveredPerSec is Delivered over the window: the rate at which the
	// window's publications were delivered, if they all arrived in time.
	DeliveredPerSec float64
	// ReceivedPerSec is every msg received during the window over its
	// length: the throughput actually seen, which is lower than
	// DeliveredPerSec when the server falls behind.
	ReceivedPerSec float64

	ServerCPU float64 // share of one core over the window
	ClientCPU float64 // the load client's own share of one core
	// OtherCPU is the CPU that processes other than the server and the
	// client used on the machine during the window, in cores: anything
	// well above zero means the figures were disturbed.
	OtherCPU       float64
	ServerRSS      int64   // at the window's end
	ServerMsgs     float64 // messages the server wrote during the window
	ServerFrames   float64 // frames the server wrote during the window
	SlowConsumers  float64 // 4009 closes from the warm-up to the drain's end
	QueueDrops     float64 // messages dropped from send queues in the same time
	Lost           int64   // connections that ended since the subscribers were set up
	LostErr        string  `json:",omitempty"`
	Drained        bool    // every expected delivery arrived before the drain deadline
	DrainWait      time.Duration
	ServerFanoutMs float64 // the server's own mean enqueue-to-write time over the window
}

// sample is what is read at the start and the end of the window.
type sample struct {
	at        time.Time
	serverCPU time.Duration
	clientCPU time.Duration
	busy      time.Duration
	metrics   Metrics
	received  int64
}

func takeSample(ctx context.Context, srv *Server, rec *Recorder) (sample, error) {
	s := sample{at: time.Now()}
	var err error
	if s.serverCPU, err = srv.CPU(ctx); err != nil {
		return s, err
	}
	if s.metrics, err = srv.Metrics(ctx); err != nil {
		return s, err
	}
	if st, err := ReadProcStat(0); err == nil {
		s.clientCPU = st.CPU
	}
	if b, err := MachineBusy(); err == nil {
		s.busy = b
	}
	s.received = rec.Counts().Received
	return s, nil
}

// RunFanout connects the subscribers and waits for their setup traffic to
// stop; then, for each rate, it publishes through a warm-up and the
// measured window and waits for the window's deliveries; at the end it
// closes everything. It returns one result per rate measured. The run is
// bounded: dialing, settling, warm-up, window and drain each have a limit.
func RunFanout(ctx context.Context, opts FanoutOptions) ([]FanoutResult, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	channel := SameChannel(opts.Channel)
	if opts.Mode == ModeUsers {
		channel = OwnUserChannel
	}
	pub, err := NewPublisher(opts.APIURL, opts.APIKey, opts.Publishers, opts.DataBytes)
	if err != nil {
		return nil, err
	}
	defer pub.Close()

	fmt.Fprintf(opts.Log, "dialing %d connections (%s)\n", opts.Conns, opts.Mode)
	start := time.Now()
	setup := NewRecorder(opts.Shards)
	fleet, err := Dial(ctx, opts.Dial, opts.Conns, channel, setup)
	if err != nil {
		return nil, err
	}
	defer fleet.Close()
	dialTime := time.Since(start)
	fmt.Fprintf(opts.Log, "dialed in %s; waiting for %s without frames\n", dialTime.Round(time.Millisecond), opts.Quiet)
	settleTime, err := settle(ctx, setup, opts.Quiet, opts.SettleMax)
	if err != nil {
		if lost, lostErr := fleet.Lost(); lost > 0 {
			err = fmt.Errorf("%w; %d connections lost, the first with: %w", err, lost, lostErr)
		}
		return nil, err
	}
	events := setup.Counts().Events
	fmt.Fprintf(opts.Log, "quiet after %s (%d events received)\n", settleTime.Round(time.Millisecond), events)

	var results []FanoutResult
	for _, rate := range opts.Rates {
		res := FanoutResult{
			Mode: opts.Mode, Conns: opts.Conns, Rate: rate, Window: opts.Duration,
			DialTime: dialTime, SettleTime: settleTime, SetupEvents: events,
		}
		if opts.Mode == ModeBroadcast {
			res.Channel = opts.Channel
		}
		var profile io.Writer
		if opts.ServerProfile != nil {
			profile = opts.ServerProfile(rate)
		}
		if err := runRate(ctx, &opts, fleet, pub, rate, profile, &res); err != nil {
			return results, err
		}
		results = append(results, res)
	}
	return results, nil
}

// runRate measures one rate on fleet and fills res in.
func runRate(ctx context.Context, opts *FanoutOptions, fleet *Fleet, pub *Publisher, rate float64, profile io.Writer, res *FanoutResult) error {
	before, err := opts.Server.Metrics(ctx)
	if err != nil {
		return err
	}
	rec := NewRecorder(opts.Shards)
	t0 := time.Now().Add(opts.Warmup)
	t1 := t0.Add(opts.Duration)
	window := Window{Start: t0.UnixNano(), End: t1.UnixNano()}
	rec.SetWindow(window)
	fleet.SetRecorder(rec)

	var published, publishErrs atomic.Int64
	var firstErr atomic.Value
	publish := func(ctx context.Context, seq int64) {
		ch := opts.Channel
		if opts.Mode == ModeUsers {
			ch = "user:" + opts.Dial.User(rand.IntN(opts.Conns))
		}
		sent := time.Now().UnixNano()
		if err := pub.Publish(ctx, ch, sent); err != nil {
			publishErrs.Add(1)
			firstErr.CompareAndSwap(nil, err)
			return
		}
		if window.Contains(sent) {
			published.Add(1)
		}
	}
	fmt.Fprintf(opts.Log, "publishing %s/s: warm-up %s, then measuring %s\n",
		strconv.FormatFloat(rate, 'g', -1, 64), opts.Warmup, opts.Duration)
	paced := make(chan PaceStats, 1)
	go func() { paced <- Pace(ctx, rate, t1, opts.Publishers, publish) }()

	var s0, s1 sample
	var sampleErr error
	profiled := make(chan error, 1)
	if waitUntil(ctx, t0) {
		s0, sampleErr = takeSample(ctx, &opts.Server, rec)
		if profile != nil {
			go func() { profiled <- opts.Server.CPUProfile(ctx, opts.Duration, profile) }()
		} else {
			profiled <- nil
		}
	} else {
		profiled <- nil
	}
	if sampleErr == nil && waitUntil(ctx, t1) {
		s1, sampleErr = takeSample(ctx, &opts.Server, rec)
	}
	ps := <-paced
	profErr := <-profiled
	if err := ctx.Err(); err != nil {
		return err
	}
	if sampleErr != nil {
		return sampleErr
	}
	if profErr != nil {
		return fmt.Errorf("loadtest: server profile: %w", profErr)
	}
	if e, ok := firstErr.Load().(error); ok {
		fmt.Fprintf(opts.Log, "first publish error: %v\n", e)
	}
	res.Skipped = ps.Skipped
	res.Published = published.Load()
	res.PublishErrors = publishErrs.Load()
	res.Expected = res.Published
	if opts.Mode == ModeBroadcast {
		res.Expected *= int64(opts.Conns)
	}

	// Wait for the window's deliveries: until all arrived, nothing arrived
	// for a while, or the drain limit.
	drainStart := time.Now()
	deadline := drainStart.Add(opts.Drain)
	last, lastChange := int64(-1), drainStart
	for {
		got := rec.Counts().Delivered
		now := time.Now()
		if got >= res.Expected {
			res.Drained = true
			break
		}
		if got != last {
			last, lastChange = got, now
		}
		if now.After(deadline) || now.Sub(lastChange) > 3*time.Second {
			break
		}
		if !waitUntil(ctx, now.Add(50*time.Millisecond)) {
			return ctx.Err()
		}
	}
	res.DrainWait = time.Since(drainStart)
	after, err := opts.Server.Metrics(ctx)
	if err != nil {
		return err
	}

	res.Latency, res.Counts = rec.Snapshot()
	wall := s1.at.Sub(s0.at)
	res.DeliveredPerSec = float64(res.Counts.Delivered) / window.Duration().Seconds()
	res.ReceivedPerSec = float64(s1.received-s0.received) / wall.Seconds()
	res.ServerCPU = CPUShare(s1.serverCPU-s0.serverCPU, wall)
	res.ClientCPU = CPUShare(s1.clientCPU-s0.clientCPU, wall)
	res.OtherCPU = max(0, CPUShare(s1.busy-s0.busy, wall)-res.ServerCPU-res.ClientCPU)
	res.ServerRSS = int64(s1.metrics[MetricRSS])
	res.ServerMsgs = s1.metrics[MetricMessagesOut] - s0.metrics[MetricMessagesOut]
	res.ServerFrames = s1.metrics[MetricFramesOut] - s0.metrics[MetricFramesOut]
	if n := s1.metrics[MetricFanoutCount] - s0.metrics[MetricFanoutCount]; n > 0 {
		res.ServerFanoutMs = (s1.metrics[MetricFanoutSumSecs] - s0.metrics[MetricFanoutSumSecs]) / n * 1000
	}
	res.SlowConsumers = after[MetricSlowConsumers] - before[MetricSlowConsumers]
	res.QueueDrops = after[MetricQueueDrops] - before[MetricQueueDrops]
	lost, lostErr := fleet.Lost()
	res.Lost = lost
	if lostErr != nil {
		res.LostErr = lostErr.Error()
	}
	return nil
}

// settle waits until no frame has arrived for quiet, and returns how long
// the frames went on. It fails after limit.
func settle(ctx context.Context, rec *Recorder, quiet, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	last, lastChange := rec.Counts().Frames, start
	for {
		now := time.Now()
		if got := rec.Counts().Frames; got != last {
			last, lastChange = got, now
		}
		if now.Sub(lastChange) >= quiet {
			return lastChange.Sub(start), nil
		}
		if now.Sub(start) > limit {
			c := rec.Counts()
			return 0, fmt.Errorf("loadtest: frames still arriving %s after the last subscription (%d frames, %d events)", limit, c.Frames, c.Events)
		}
		if !waitUntil(ctx, now.Add(50*time.Millisecond)) {
			return 0, ctx.Err()
		}
	}
}

// WriteText writes the result as a short report.
func (r FanoutResult) WriteText(w io.Writer) error {
	target := r.Channel
	if r.Mode == ModeUsers {
		target = "own user:<id> channel each"
	}
	pct := func(v float64) string { return strconv.FormatFloat(v*100, 'f', 1, 64) + "%" }
	perFrame := 0.0
	if r.ServerFrames > 0 {
		perFrame = r.ServerMsgs / r.ServerFrames
	}
	_, err := fmt.Fprintf(w, `fanout %s: %d subscribers (%s), %g pub/s, window %s
  setup         dial %s, then %s of setup traffic (%d events)
  published     %d in window (errors %d, skipped %d)
  delivered     %d of %d expected (%.4f%%), drained %v after %s
  rate          %.0f deliveries/s from the window's publications, %.0f msgs/s received during it
  latency       %s
  server        CPU %s of one core, RSS %.1f MiB, %.2f msgs/frame, fan-out queue mean %.3f ms
  client        CPU %s of one core; other processes %s of one core
  problems      missing %d, duplicates %d, gaps %d, lost conns %d, 4009 closes %.0f, queue drops %.0f
`,
		r.Mode, r.Conns, target, r.Rate, r.Window,
		r.DialTime.Round(time.Millisecond), r.SettleTime.Round(time.Millisecond), r.SetupEvents,
		r.Published, r.PublishErrors, r.Skipped,
		r.Counts.Delivered, r.Expected, ratio(r.Counts.Delivered, r.Expected)*100, r.Drained, r.DrainWait.Round(time.Millisecond),
		r.DeliveredPerSec, r.ReceivedPerSec,
		r.Latency,
		pct(r.ServerCPU), float64(r.ServerRSS)/(1<<20), perFrame, r.ServerFanoutMs,
		pct(r.ClientCPU), pct(r.OtherCPU),
		r.Counts.Missing, r.Counts.Duplicates, r.Counts.Gaps, r.Lost, r.SlowConsumers, r.QueueDrops)
	if err == nil && r.LostErr != "" {
		_, err = fmt.Fprintf(w, "  first lost connection error: %s\n", r.LostErr)
	}
	return err
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
