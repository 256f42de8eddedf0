package realtimetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
)

// waitFor bounds every wait of the suites. It is generous because a wait
// that succeeds returns as soon as its condition holds.
const waitFor = 10 * time.Second

// name returns a channel or user name no other test uses: prefix, then a
// random suffix.
func name(prefix string) string {
	return fmt.Sprintf("%s_rt%08x", prefix, rand.Uint32())
}

// recorder is a Deliverer that keeps everything it is given. It also
// notes when two deliveries of one channel overlap, which the Deliverer
// contract rules out.
type recorder struct {
	mu       sync.Mutex
	pubs     map[string][]realtime.Publication
	node     [][]byte
	busy     map[string]bool
	overlaps map[string]int
}

func newRecorder() *recorder {
	return &recorder{
		pubs:     make(map[string][]realtime.Publication),
		busy:     make(map[string]bool),
		overlaps: make(map[string]int),
	}
}

// Deliver keeps p. It yields the processor between marking ch busy and
// unmarking it, to give an overlapping delivery a chance to show.
func (r *recorder) Deliver(ch string, p realtime.Publication) {
	r.mu.Lock()
	if r.busy[ch] {
		r.overlaps[ch]++
	}
	r.busy[ch] = true
	r.pubs[ch] = append(r.pubs[ch], p)
	r.mu.Unlock()
	runtime.Gosched()
	r.mu.Lock()
	r.busy[ch] = false
	r.mu.Unlock()
}

// DeliverNode keeps msg.
// Resync is part of realtime.Deliverer; the suites do not count it.
func (r *recorder) Resync(channels []string) {}

func (r *recorder) DeliverNode(msg []byte) {
	r.mu.Lock()
	r.node = append(r.node, msg)
	r.mu.Unlock()
}

// got returns a copy of what ch received so far.
func (r *recorder) got(ch string) []realtime.Publication {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pubs[ch])
}

// count returns how many publications ch received so far.
func (r *recorder) count(ch string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pubs[ch])
}

// nodeMsgs returns a copy of the node messages received so far.
func (r *recorder) nodeMsgs() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.node)
}

// checkNoOverlaps fails the test if any channel had overlapping deliveries.
func (r *recorder) checkNoOverlaps(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for ch, n := range r.overlaps {
		t.Errorf("%s: %d deliveries overlapped another delivery of the channel", ch, n)
	}
}

// run starts b.Run with a new recorder in a goroutine, waits until it
// delivers, and returns the recorder. The test's cleanup stops Run and
// waits for it to return.
func run(t *testing.T, b realtime.Broker) *recorder {
	t.Helper()
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx, rec) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Run returned %v after its context ended, want nil", err)
			}
		case <-time.After(waitFor):
			t.Errorf("Run did not return within %v of its context ending", waitFor)
		}
	})
	waitRunning(t, b, rec)
	return rec
}

// waitRunning publishes events on a probe channel until rec receives one,
// which shows that Run is delivering.
func waitRunning(t *testing.T, b realtime.Broker, rec *recorder) {
	t.Helper()
	ctx := t.Context()
	probe := name("probe:run")
	if err := b.Subscribe(ctx, probe); err != nil {
		t.Fatalf("Subscribe(%q): %v", probe, err)
	}
	testenv.Eventually(t, "the broker's Run to deliver", func() bool {
		if err := b.PublishEvent(ctx, probe, realtime.Publication{Payload: []byte(`{"type":"event"}`)}); err != nil {
			t.Fatalf("PublishEvent(%q): %v", probe, err)
		}
		return rec.count(probe) > 0
	})
	if err := b.Unsubscribe(ctx, probe); err != nil {
		t.Fatalf("Unsubscribe(%q): %v", probe, err)
	}
}

// subscribe subscribes b to ch or fails the test.
func subscribe(t *testing.T, b realtime.Broker, ch string) {
	t.Helper()
	if err := b.Subscribe(t.Context(), ch); err != nil {
		t.Fatalf("Subscribe(%q): %v", ch, err)
	}
}

// unsubscribe unsubscribes b from ch or fails the test.
func unsubscribe(t *testing.T, b realtime.Broker, ch string) {
	t.Helper()
	if err := b.Unsubscribe(t.Context(), ch); err != nil {
		t.Fatalf("Unsubscribe(%q): %v", ch, err)
	}
}

// pub is a publication in a form cmp.Diff prints readably.
type pub struct {
	Epoch   string
	Offset  uint64
	Payload string
}

func pubsOf(ps []realtime.Publication) []pub {
	out := make([]pub, len(ps))
	for i, p := range ps {
		out[i] = pub{Epoch: p.Epoch, Offset: p.Offset, Payload: string(p.Payload)}
	}
	return out
}
