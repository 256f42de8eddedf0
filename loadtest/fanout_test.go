package loadtest

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestRunFanout(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway for a few seconds")
	}
	for _, tt := range []struct {
		mode  string
		conns int
		rate  float64
	}{
		{ModeBroadcast, 50, 20},
		{ModeUsers, 50, 200},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			s := startServer(t)
			var log bytes.Buffer
			results, err := RunFanout(context.Background(), FanoutOptions{
				Dial:       s.dial(),
				Server:     s.observer(),
				APIURL:     s.main.URL,
				APIKey:     testAPIKey,
				Mode:       tt.mode,
				Conns:      tt.conns,
				Rates:      []float64{tt.rate, 2 * tt.rate},
				Warmup:     200 * time.Millisecond,
				Duration:   time.Second,
				Drain:      5 * time.Second,
				Quiet:      200 * time.Millisecond,
				Publishers: 2,
				Log:        &log,
			})
			if err != nil {
				t.Fatalf("RunFanout: %v\n%s", err, log.String())
			}
			if len(results) != 2 {
				t.Fatalf("%d results, want one per rate", len(results))
			}
			perPub := int64(1)
			if tt.mode == ModeBroadcast {
				perPub = int64(tt.conns)
			}
			for i, res := range results {
				if res.Rate != tt.rate*float64(i+1) {
					t.Errorf("result %d is for rate %g, want %g", i, res.Rate, tt.rate*float64(i+1))
				}
				if res.Published == 0 || res.Expected != res.Published*perPub {
					t.Errorf("published %d, expected %d: want %d deliveries per publication", res.Published, res.Expected, perPub)
				}
				if res.Counts.Delivered != res.Expected || !res.Drained {
					t.Errorf("delivered %d of %d (drained %v)", res.Counts.Delivered, res.Expected, res.Drained)
				}
				if res.Counts.Missing != 0 || res.Counts.Duplicates != 0 || res.Lost != 0 || res.PublishErrors != 0 {
					t.Errorf("problems: %+v, lost %d, publish errors %d", res.Counts, res.Lost, res.PublishErrors)
				}
				if res.Latency.Count != res.Counts.Delivered || res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P99 {
					t.Errorf("latency %+v does not fit %d deliveries", res.Latency, res.Counts.Delivered)
				}
				var out strings.Builder
				if err := res.WriteText(&out); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(out.String(), "fanout "+tt.mode) {
					t.Errorf("report:\n%s", out.String())
				}
			}
		})
	}
}

func TestRunFanoutBadOptions(t *testing.T) {
	for _, opts := range []FanoutOptions{
		{Conns: 0, Rates: []float64{1}},
		{Conns: 1},
		{Conns: 1, Rates: []float64{1, 0}},
		{Conns: 1, Rates: []float64{1}, Mode: "everyone"},
		{Conns: 1, Rates: []float64{1}, Duration: -time.Second},
		{Conns: 1, Rates: []float64{1}}, // no API URL or key
	} {
		if _, err := RunFanout(context.Background(), opts); err == nil {
			t.Errorf("RunFanout(%+v) succeeded, want an error", opts)
		}
	}
}

func TestRunIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway for a few seconds")
	}
	s := startServer(t)
	res, err := RunIdle(context.Background(), IdleOptions{
		Dial:      s.dial(),
		Server:    s.observer(),
		Conns:     100,
		Settle:    100 * time.Millisecond,
		Samples:   1,
		SampleGap: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("RunIdle: %v", err)
	}
	// The test process is both ends, so only what the server's own
	// metrics say exactly can be checked.
	if got := res.After[0].Connections - res.Before.Connections; got != 100 {
		t.Errorf("the server gained %v connections, want 100", got)
	}
	if res.GoroutinesPerConn < 1 {
		t.Errorf("%.2f goroutines per connection; the test process's readers alone are 1", res.GoroutinesPerConn)
	}
	var out strings.Builder
	if err := res.WriteText(&out); err != nil || !strings.Contains(out.String(), "per conn") {
		t.Errorf("report (%v):\n%s", err, out.String())
	}
}

func TestDialRefused(t *testing.T) {
	s := startServer(t)
	opts := s.dial()
	opts.JWTSecret = "another-secret-0123456789abcdef0123456"
	opts.Attempts = 1
	_, err := Dial(context.Background(), opts, 3, OwnUserChannel, nil)
	if err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("Dial with the wrong secret: %v, want an unauthorized error", err)
	}
}
