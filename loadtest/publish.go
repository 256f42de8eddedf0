package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/partyline/partyline/realtime/wire"
)

// BenchKind is the kind of every publication the load client makes.
const BenchKind = "bench"

// Publisher publishes through the server API (POST /v1/server/publish) over
// keep-alive HTTP connections. It is safe for concurrent use; each
// concurrent caller uses its own connection.
type Publisher struct {
	url    string
	auth   string
	client *http.Client
	pad    string
	bufs   sync.Pool
}

// NewPublisher returns a Publisher for the server at baseURL (like
// http://127.0.0.1:8080) with the API key, keeping up to conns connections
// open, whose publications' data is dataBytes long (at least the size
// of the send time; 64 when zero).
func NewPublisher(baseURL, apiKey string, conns, dataBytes int) (*Publisher, error) {
	if baseURL == "" || apiKey == "" {
		return nil, errors.New("loadtest: publishing needs the server URL and the API key")
	}
	if conns <= 0 {
		conns = 1
	}
	if dataBytes <= 0 {
		dataBytes = 64
	}
	return &Publisher{
		url:  strings.TrimRight(baseURL, "/") + "/v1/server/publish",
		auth: "Bearer " + apiKey,
		client: &http.Client{
			Timeout: 10 * time.Second,
			Transport: &http.Transport{
				MaxIdleConns:        conns,
				MaxIdleConnsPerHost: conns,
				MaxConnsPerHost:     conns,
				IdleConnTimeout:     time.Minute,
				DisableCompression:  true,
			},
		},
		pad:  padFor(dataBytes),
		bufs: sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }},
	}, nil
}

// Publish sends one publication on channel whose data carries sent (Unix
// ns) and padding.
func (p *Publisher) Publish(ctx context.Context, channel string, sent int64) error {
	bp := p.bufs.Get().(*[]byte)
	defer p.bufs.Put(bp)
	*bp = appendPublishBody((*bp)[:0], channel, sent, p.pad)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(*bp))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", p.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body) // read to the end so the connection is reused
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("loadtest: publish: %s", resp.Status)
	}
	return nil
}

// Close drops the idle connections.
func (p *Publisher) Close() { p.client.CloseIdleConnections() }

// dataOverhead is the length of data without padding:
// {"sent":<19 digits>,"pad":""}.
const dataOverhead = len(`{"sent":`) + 19 + len(`,"pad":""}`)

// padFor returns the padding that makes data dataBytes long with a 19-digit
// send time (any Unix ns time between 2001 and 2286).
func padFor(dataBytes int) string {
	return strings.Repeat("x", max(0, dataBytes-dataOverhead))
}

// appendPublishBody appends the server API body of a bench publication.
func appendPublishBody(b []byte, channel string, sent int64, pad string) []byte {
	b = append(b, `{"channel":`...)
	b = wire.AppendString(b, channel)
	b = append(b, `,"kind":"`+BenchKind+`","data":{"sent":`...)
	b = strconv.AppendInt(b, sent, 10)
	b = append(b, `,"pad":"`...)
	b = append(b, pad...)
	return append(b, `"}}`...)
}

// PaceStats counts what a paced run issued.
type PaceStats struct {
	// Issued is the ticks handed to a worker.
	Issued int64
	// Skipped is ticks dropped because every worker was busy and the queue
	// was full: the publisher could not keep the rate.
	Skipped int64
}

// Pace calls fn rate times a second from workers goroutines until the
// deadline or ctx ends, and waits for the calls in flight. A ticker paces
// the calls: each tick issues whatever is due since the start, so a late
// tick catches up instead of lowering the rate. fn gets the sequence
// number of the call, from 0.
func Pace(ctx context.Context, rate float64, deadline time.Time, workers int, fn func(ctx context.Context, seq int64)) PaceStats {
	if rate <= 0 || workers <= 0 {
		return PaceStats{}
	}
	tick := time.Duration(float64(time.Second) / rate)
	tick = min(max(tick, time.Millisecond), 10*time.Millisecond)
	// About a quarter second of backlog; past it the workers are too slow
	// and waiting longer would only hide that.
	jobs := make(chan int64, min(max(int(rate/4), workers), 1<<14))
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range jobs {
				fn(ctx, seq)
			}
		}()
	}
	var st PaceStats
	var seq int64
	start := time.Now()
	t := time.NewTicker(tick)
	defer t.Stop()
loop:
	for {
		now := time.Now()
		if !now.Before(deadline) {
			break
		}
		due := int64(now.Sub(start).Seconds()*rate) + 1
		for ; seq < due; seq++ {
			select {
			case jobs <- seq:
				st.Issued++
			default:
				st.Skipped++
			}
		}
		select {
		case <-ctx.Done():
			break loop
		case <-t.C:
		}
	}
	close(jobs)
	wg.Wait()
	return st
}
