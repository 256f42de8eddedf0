package loadtest

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to maxLatency, with three
// significant digits: a value is off by at most 0.1%.
const (
	maxLatencyMicros = int64(5 * time.Minute / time.Microsecond)
	latencyDigits    = 3
)

// Window is a half-open interval of wall-clock time in Unix nanoseconds.
// Deliveries count towards a measurement only when the publication was sent
// inside it, so warm-up traffic and stragglers from before it stay out.
type Window struct {
	Start, End int64
}

// Contains reports whether t is in [Start, End).
func (w Window) Contains(t int64) bool { return t >= w.Start && t < w.End }

// Duration is the length of the window.
func (w Window) Duration() time.Duration { return time.Duration(w.End - w.Start) }

// Recorder collects delivery latencies from many reader goroutines. It is
// split into shards, each with its own lock and histogram, so readers rarely
// wait on each other; a reader always uses the same shard. Snapshot merges
// the shards. Until SetWindow is called the window is empty: messages are
// counted, but no latency is recorded.
type Recorder struct {
	start, end atomic.Int64 // the Window
	shards     []recorderShard
}

type recorderShard struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
	Counts
	maxNanos int64
	_        [64]byte // keep neighbouring shards' locks off one cache line
}

// Counts are what a Recorder counts besides latencies.
type Counts struct {
	// Delivered is msgs received whose publication was sent in the window.
	Delivered int64
	// Received is every msg received, in the window or not.
	Received int64
	// Frames is WebSocket frames received with at least one message.
	Frames int64
	// Missing is offsets skipped on a subscription: publications that did
	// not arrive.
	Missing int64
	// Duplicates is msgs whose offset was not above the last one seen.
	Duplicates int64
	// Gaps is gap notifications received.
	Gaps int64
	// Events is ephemeral events received (join, leave, ...).
	Events int64
	// Overflow is latencies above the histogram's range, recorded as its
	// maximum.
	Overflow int64
}

func (c *Counts) add(o Counts) {
	c.Delivered += o.Delivered
	c.Received += o.Received
	c.Frames += o.Frames
	c.Missing += o.Missing
	c.Duplicates += o.Duplicates
	c.Gaps += o.Gaps
	c.Events += o.Events
	c.Overflow += o.Overflow
}

// NewRecorder returns a Recorder with shards shards (at least 1).
func NewRecorder(shards int) *Recorder {
	if shards < 1 {
		shards = 1
	}
	r := &Recorder{shards: make([]recorderShard, shards)}
	for i := range r.shards {
		r.shards[i].h = hdrhistogram.New(1, maxLatencyMicros, latencyDigits)
	}
	return r
}

// SetWindow sets the measured window: from then on, msgs whose publication
// was sent within w are recorded. Set it before the first such publication
// is sent.
func (r *Recorder) SetWindow(w Window) {
	r.start.Store(w.Start)
	r.end.Store(w.End)
}

// Window returns the measured window.
func (r *Recorder) Window() Window { return Window{Start: r.start.Load(), End: r.end.Load()} }

// Shards returns the number of shards.
func (r *Recorder) Shards() int { return len(r.shards) }

// Frame accounts one received frame, read at recvNanos (Unix ns), on a
// subscription whose last seen offset is *last (0 when none yet). It splits
// the frame into messages, and for each msg carrying a "sent" time it
// records the latency, checks the offset against *last and advances it.
// shard selects the shard modulo the shard count. It is safe for concurrent
// use; calls for the same *last must not overlap.
func (r *Recorder) Frame(shard int, recvNanos int64, frame []byte, last *uint64) {
	window := r.Window()
	sh := &r.shards[shard%len(r.shards)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	nonEmpty := false
	for len(frame) > 0 {
		var msg []byte
		msg, frame = nextMessage(frame)
		if len(msg) == 0 {
			continue
		}
		nonEmpty = true
		m := scanMessage(msg)
		switch m.kind {
		case kindGap:
			sh.Gaps++
			continue
		case kindEvent:
			sh.Events++
			continue
		case kindMsg:
		default:
			continue
		}
		if m.hasOffset {
			switch {
			case *last == 0:
			case m.offset <= *last:
				sh.Duplicates++
			case m.offset > *last+1:
				sh.Missing += int64(m.offset - *last - 1)
			}
			if m.offset > *last {
				*last = m.offset
			}
		}
		if !m.hasSent {
			continue
		}
		sh.Received++
		if !window.Contains(m.sent) {
			continue
		}
		sh.Delivered++
		lat := recvNanos - m.sent
		if lat < 0 {
			lat = 0
		}
		if lat > sh.maxNanos {
			sh.maxNanos = lat
		}
		us := lat / int64(time.Microsecond)
		if us > maxLatencyMicros {
			us = maxLatencyMicros
			sh.Overflow++
		}
		_ = sh.h.RecordValue(us) // in range by construction
	}
	if nonEmpty {
		sh.Frames++
	}
}

// Counts returns the counters summed over the shards. It is cheap enough
// to poll while readers run.
func (r *Recorder) Counts() Counts {
	var c Counts
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		c.add(sh.Counts)
		sh.mu.Unlock()
	}
	return c
}

// Snapshot merges the shards into one latency summary and the counters.
func (r *Recorder) Snapshot() (Latency, Counts) {
	all := hdrhistogram.New(1, maxLatencyMicros, latencyDigits)
	var c Counts
	var maxNanos int64
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		all.Merge(sh.h)
		c.add(sh.Counts)
		maxNanos = max(maxNanos, sh.maxNanos)
		sh.mu.Unlock()
	}
	return summarize(all, maxNanos), c
}

// Latency summarizes a latency distribution.
type Latency struct {
	Count                     int64
	Mean, P50, P99, P999, Max time.Duration
}

func summarize(h *hdrhistogram.Histogram, maxNanos int64) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	return Latency{
		Count: h.TotalCount(),
		Mean:  time.Duration(h.Mean() * float64(time.Microsecond)),
		P50:   us(h.ValueAtQuantile(50)),
		P99:   us(h.ValueAtQuantile(99)),
		P999:  us(h.ValueAtQuantile(99.9)),
		Max:   time.Duration(maxNanos),
	}
}

// String formats the summary in milliseconds.
func (l Latency) String() string {
	return fmt.Sprintf("p50 %s  p99 %s  p99.9 %s  max %s  mean %s  (n=%d)",
		FormatMillis(l.P50), FormatMillis(l.P99), FormatMillis(l.P999), FormatMillis(l.Max), FormatMillis(l.Mean), l.Count)
}

// FormatMillis formats d in milliseconds with enough digits to keep three
// significant ones down to 1 µs: "0.412 ms", "8.13 ms", "345 ms".
func FormatMillis(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms == 0:
		return "0 ms"
	case ms < 1:
		return fmt.Sprintf("%.3f ms", ms)
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.0f ms", math.Round(ms))
	}
}
