package realtimetest

import (
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/partyline/partyline/realtime"
)

// Recorder is a Deliverer that keeps everything it is given: publications
// by channel, node messages, and how often each channel was resynced. It
// also notes when two deliveries of one channel overlap, which the
// Deliverer contract rules out. Make one with NewRecorder.
type Recorder struct {
	mu       sync.Mutex
	pubs     map[string][]realtime.Publication
	node     [][]byte
	resyncs  map[string]int
	busy     map[string]bool
	overlaps map[string]int
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{
		pubs:     make(map[string][]realtime.Publication),
		resyncs:  make(map[string]int),
		busy:     make(map[string]bool),
		overlaps: make(map[string]int),
	}
}

// Deliver keeps p. It yields the processor between marking ch busy and
// unmarking it, to give an overlapping delivery a chance to show.
func (r *Recorder) Deliver(ch string, p realtime.Publication) {
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
func (r *Recorder) DeliverNode(msg []byte) {
	r.mu.Lock()
	r.node = append(r.node, msg)
	r.mu.Unlock()
}

// Resync counts one resync of each of channels.
func (r *Recorder) Resync(channels []string) {
	r.mu.Lock()
	for _, ch := range channels {
		r.resyncs[ch]++
	}
	r.mu.Unlock()
}

// Got returns a copy of what ch received so far.
func (r *Recorder) Got(ch string) []realtime.Publication {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pubs[ch])
}

// Count returns how many publications ch received so far.
func (r *Recorder) Count(ch string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pubs[ch])
}

// HasPayload reports whether ch received a publication with payload p.
func (r *Recorder) HasPayload(ch, p string) bool {
	for _, got := range r.Got(ch) {
		if string(got.Payload) == p {
			return true
		}
	}
	return false
}

// NodeMsgs returns a copy of the node messages received so far.
func (r *Recorder) NodeMsgs() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.node)
}

// Resynced returns how many times ch was resynced so far.
func (r *Recorder) Resynced(ch string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resyncs[ch]
}

// CheckNoOverlaps fails the test if any channel had overlapping
// deliveries.
func (r *Recorder) CheckNoOverlaps(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for ch, n := range r.overlaps {
		t.Errorf("%s: %d deliveries overlapped another delivery of the channel", ch, n)
	}
}
