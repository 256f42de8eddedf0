package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// IdleOptions configures an idle-connection memory measurement.
type IdleOptions struct {
	// Dial says where the connections go and as whom. Each subscribes to
	// its own user:<id> channel.
	Dial DialOptions
	// Server is observed through its admin listener.
	Server Server
	// Conns is the number of idle connections. Required.
	Conns int
	// Settle is how long the connections sit idle before the first
	// sample. Zero means 10 s.
	Settle time.Duration
	// Samples is how many after-samples are taken; the last one is
	// reported, the others show whether the figure had settled. Zero
	// means 2.
	Samples int
	// SampleGap is the pause between samples. Zero means 5 s.
	SampleGap time.Duration
	// Log receives progress lines. Nil means none.
	Log io.Writer
}

func (o *IdleOptions) setDefaults() error {
	if o.Conns <= 0 {
		return errors.New("loadtest: idle needs at least one connection")
	}
	if o.Settle < 0 || o.SampleGap < 0 {
		return errors.New("loadtest: durations must not be negative")
	}
	if o.Settle == 0 {
		o.Settle = 10 * time.Second
	}
	if o.Samples <= 0 {
		o.Samples = 2
	}
	if o.SampleGap == 0 {
		o.SampleGap = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return nil
}

// MemorySample is the server's memory and goroutines at one moment, read
// right after a forced garbage collection.
type MemorySample struct {
	At          time.Time
	RSS         float64
	HeapInuse   float64
	StackInuse  float64
	Goroutines  float64
	Connections float64
}

// IdleResult is the outcome of an idle measurement. The per-connection
// figures are the server's growth from Before to the last of After, divided
// by Conns.
type IdleResult struct {
	Conns     int
	DialTime  time.Duration
	Before    MemorySample
	After     []MemorySample
	ClientRSS int64 // the load client's own RSS with every connection open

	RSSPerConn        float64 // bytes
	HeapStackPerConn  float64 // bytes of heap in use plus stack in use
	HeapPerConn       float64
	StackPerConn      float64
	GoroutinesPerConn float64
}

// memorySample forces a GC on the server, lets it finish, and reads the
// metrics.
func memorySample(ctx context.Context, srv *Server) (MemorySample, error) {
	if err := srv.GC(ctx); err != nil {
		return MemorySample{}, err
	}
	if !waitUntil(ctx, time.Now().Add(time.Second)) {
		return MemorySample{}, ctx.Err()
	}
	m, err := srv.Metrics(ctx)
	if err != nil {
		return MemorySample{}, err
	}
	for _, name := range []string{MetricRSS, MetricHeapInuse, MetricStackInuse, MetricGoroutines, MetricConnections} {
		if _, ok := m[name]; !ok {
			return MemorySample{}, fmt.Errorf("loadtest: the server does not export %s", name)
		}
	}
	return MemorySample{
		At:          time.Now(),
		RSS:         m[MetricRSS],
		HeapInuse:   m[MetricHeapInuse],
		StackInuse:  m[MetricStackInuse],
		Goroutines:  m[MetricGoroutines],
		Connections: m[MetricConnections],
	}, nil
}

// RunIdle samples the server, opens the connections (each says hello as
// its own user and subscribes to user:<id>), leaves them idle with a reader
// each so heartbeats are answered, samples again, and closes them.
func RunIdle(ctx context.Context, opts IdleOptions) (IdleResult, error) {
	if err := opts.setDefaults(); err != nil {
		return IdleResult{}, err
	}
	res := IdleResult{Conns: opts.Conns}
	var err error
	if res.Before, err = memorySample(ctx, &opts.Server); err != nil {
		return res, err
	}
	fmt.Fprintf(opts.Log, "before: %s\n", res.Before)

	fmt.Fprintf(opts.Log, "dialing %d connections\n", opts.Conns)
	start := time.Now()
	fleet, err := Dial(ctx, opts.Dial, opts.Conns, OwnUserChannel, nil)
	if err != nil {
		return res, err
	}
	defer fleet.Close()
	res.DialTime = time.Since(start)
	fmt.Fprintf(opts.Log, "dialed in %s; idle for %s\n", res.DialTime.Round(time.Millisecond), opts.Settle)
	if !waitUntil(ctx, time.Now().Add(opts.Settle)) {
		return res, ctx.Err()
	}
	for i := range opts.Samples {
		if i > 0 && !waitUntil(ctx, time.Now().Add(opts.SampleGap)) {
			return res, ctx.Err()
		}
		s, err := memorySample(ctx, &opts.Server)
		if err != nil {
			return res, err
		}
		fmt.Fprintf(opts.Log, "after:  %s\n", s)
		res.After = append(res.After, s)
	}
	if st, err := ReadProcStat(0); err == nil {
		res.ClientRSS = st.RSS
	}
	if lost, err := fleet.Lost(); lost > 0 {
		return res, fmt.Errorf("loadtest: %d connections ended while idle; the first: %w", lost, err)
	}
	last := res.After[len(res.After)-1]
	if got, want := last.Connections-res.Before.Connections, float64(opts.Conns); got != want {
		return res, fmt.Errorf("loadtest: the server counts %.0f new connections, want %.0f", got, want)
	}
	n := float64(opts.Conns)
	res.RSSPerConn = (last.RSS - res.Before.RSS) / n
	res.HeapPerConn = (last.HeapInuse - res.Before.HeapInuse) / n
	res.StackPerConn = (last.StackInuse - res.Before.StackInuse) / n
	res.HeapStackPerConn = res.HeapPerConn + res.StackPerConn
	res.GoroutinesPerConn = (last.Goroutines - res.Before.Goroutines) / n
	return res, nil
}

// String formats a sample in MiB.
func (s MemorySample) String() string {
	const mib = 1 << 20
	return fmt.Sprintf("rss %.1f MiB, heap in use %.1f MiB, stack in use %.1f MiB, %.0f goroutines, %.0f connections",
		s.RSS/mib, s.HeapInuse/mib, s.StackInuse/mib, s.Goroutines, s.Connections)
}

// WriteText writes the result as a short report.
func (r IdleResult) WriteText(w io.Writer) error {
	kb := func(v float64) string { return fmt.Sprintf("%.1f KB (%.1f KiB)", v/1000, v/1024) }
	_, err := fmt.Fprintf(w, `idle: %d connections (dial %s)
  before        %s
`, r.Conns, r.DialTime.Round(time.Millisecond), r.Before)
	for _, s := range r.After {
		if err == nil {
			_, err = fmt.Fprintf(w, "  after         %s\n", s)
		}
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, `  per conn      RSS %s, heap+stack %s (heap %s, stack %s), %.3f goroutines
  client        RSS %.1f MiB
`, kb(r.RSSPerConn), kb(r.HeapStackPerConn), kb(r.HeapPerConn), kb(r.StackPerConn), r.GoroutinesPerConn,
		float64(r.ClientRSS)/(1<<20))
	return err
}
