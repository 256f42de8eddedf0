package realtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/partyline/partyline/realtime/wire"
)

// lossyBroker is a memory broker whose deliveries drop the stream
// publications drop selects, as Redis pub/sub may.
type lossyBroker struct {
	*MemoryBroker
	mu   sync.Mutex
	drop func(p Publication) bool
}

// newLossy returns a lossyBroker that drops nothing yet, and a memory
// stream on it.
func newLossy() (*lossyBroker, *MemoryStream) {
	lb := &lossyBroker{MemoryBroker: NewMemoryBroker(MemoryBrokerOptions{NodeID: "gw-test"})}
	return lb, NewMemoryStream(lb.MemoryBroker, MemoryStreamOptions{})
}

// startSubscribed starts a node on b and s, and connects a client
// subscribed to ch.
func startSubscribed(t *testing.T, b Broker, s Stream, ch string) (*testNode, *wsClient) {
	t.Helper()
	n := startNode(t, Options{Broker: b, Stream: s})
	c := connect(t, n.url, "u_g")
	c.ok(map[string]any{"type": "sub", "channel": ch})
	return n, c
}

type lossyDeliverer struct {
	Deliverer
	b *lossyBroker
}

func (d lossyDeliverer) Deliver(ch string, p Publication) {
	d.b.mu.Lock()
	drop := d.b.drop != nil && p.Offset > 0 && d.b.drop(p)
	d.b.mu.Unlock()
	if !drop {
		d.Deliverer.Deliver(ch, p)
	}
}

func (b *lossyBroker) Run(ctx context.Context, d Deliverer) error {
	return b.MemoryBroker.Run(ctx, lossyDeliverer{Deliverer: d, b: b})
}

func (b *lossyBroker) setDrop(f func(Publication) bool) {
	b.mu.Lock()
	b.drop = f
	b.mu.Unlock()
}

// amnesicStream forgets everything when asked to replay.
type amnesicStream struct{ Stream }

func (s amnesicStream) Since(ctx context.Context, ch string, from Position) ([]Publication, Position, error) {
	_, cur, _ := s.Stream.Since(ctx, ch, from)
	return nil, cur, ErrUnrecoverable
}

// failingStream is a stream whose reads fail while fail is set, as a Redis
// stream's do when Redis cannot be reached; publishing still works.
type failingStream struct {
	Stream
	fail atomic.Bool
}

func (s *failingStream) Since(ctx context.Context, ch string, from Position) ([]Publication, Position, error) {
	if s.fail.Load() {
		return nil, Position{}, errors.New("stream unreachable")
	}
	return s.Stream.Since(ctx, ch, from)
}

// staleStream answers its first read as of an earlier moment, when the
// stream ended at offset at: a read that raced the publications after it.
type staleStream struct {
	Stream
	at   uint64
	used atomic.Bool
}

func (s *staleStream) Since(ctx context.Context, ch string, from Position) ([]Publication, Position, error) {
	pubs, cur, err := s.Stream.Since(ctx, ch, from)
	if err != nil || s.used.Swap(true) {
		return pubs, cur, err
	}
	var kept []Publication
	for _, p := range pubs {
		if p.Offset <= s.at {
			kept = append(kept, p)
		}
	}
	cur.Offset = min(cur.Offset, s.at)
	return kept, cur, nil
}

// seqLocked lists ch's msg and gap notifications as "msg:offset" and
// "gap:offset", and their epochs, for use inside waitUntil.
func seqLocked(c *wsClient, ch string) (seq, epochs []string) {
	for _, m := range c.notes {
		if m.Channel == ch && (m.Type == wire.TypeMsg || m.Type == wire.TypeGap) {
			seq = append(seq, fmt.Sprintf("%s:%d", m.Type, m.Offset))
			epochs = append(epochs, m.Epoch)
		}
	}
	return seq, epochs
}

// expectSeq waits until c has as many msg and gap notifications on ch as
// want lists, and fails the test unless they are want (in seqLocked's
// form) and, when epoch is not empty, all of epoch.
func expectSeq(t *testing.T, c *wsClient, ch string, want []string, epoch string) {
	t.Helper()
	var seq, epochs []string
	c.waitUntil(fmt.Sprintf("%d msgs and gaps", len(want)), 5*time.Second, func() bool {
		seq, epochs = seqLocked(c, ch)
		return len(seq) >= len(want)
	})
	if fmt.Sprint(seq) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", seq, want)
	}
	for i, e := range epochs {
		if epoch != "" && e != epoch {
			t.Errorf("%s has epoch %q; want %q", seq[i], e, epoch)
		}
	}
}

// offsetsLocked is offsets for use inside waitUntil, which holds c.mu.
func offsetsLocked(c *wsClient, ch string) []uint64 {
	var out []uint64
	for _, m := range c.notes {
		if m.Type == wire.TypeMsg && m.Channel == ch {
			out = append(out, m.Offset)
		}
	}
	return out
}

func offsets(c *wsClient, ch string) []uint64 {
	var out []uint64
	for _, m := range c.msgs(ch) {
		out = append(out, m.Offset)
	}
	return out
}

func TestGapOnTheLivePath(t *testing.T) {
	ch := "broadcast:gap"
	t.Run("a skipped offset is filled from the stream, in order", func(t *testing.T) {
		lb, ms := newLossy()
		n, c := startSubscribed(t, lb, ms, ch)
		lb.setDrop(func(p Publication) bool { return p.Offset == 3 || p.Offset == 7 || p.Offset == 8 })
		for i := 1; i <= 10; i++ {
			n.publish(t, ch, fmt.Sprintf(`{"i":%d}`, i))
		}
		c.waitUntil("10 msgs", 5*time.Second, func() bool { return len(offsetsLocked(c, ch)) >= 10 })
		got := offsets(c, ch)
		for i, off := range got {
			if off != uint64(i+1) {
				t.Fatalf("offsets %v, want 1..10", got)
			}
		}
	})
	t.Run("an unrecoverable gap is announced, then delivery goes on", func(t *testing.T) {
		lb, ms := newLossy()
		n, c := startSubscribed(t, lb, amnesicStream{ms}, ch)
		lb.setDrop(func(p Publication) bool { return p.Offset == 2 })
		for i := 1; i <= 4; i++ {
			n.publish(t, ch, fmt.Sprintf(`{"i":%d}`, i))
		}
		expectSeq(t, c, ch, []string{"msg:1", "gap:3", "msg:3", "msg:4"}, "")
	})
	t.Run("Resync delivers what a stuck subscription missed", func(t *testing.T) {
		lb, ms := newLossy()
		n, c := startSubscribed(t, lb, ms, ch)
		n.publish(t, ch, `{"i":1}`)
		c.waitUntil("msg 1", 5*time.Second, func() bool { return len(offsetsLocked(c, ch)) >= 1 })
		lb.setDrop(func(Publication) bool { return true }) // stuck
		for i := 2; i <= 5; i++ {
			n.publish(t, ch, fmt.Sprintf(`{"i":%d}`, i))
		}
		lb.setDrop(nil)
		n.Resync([]string{ch, "broadcast:nobody"})
		c.waitUntil("5 msgs", 5*time.Second, func() bool { return len(offsetsLocked(c, ch)) >= 5 })
		if got := offsets(c, ch); fmt.Sprint(got) != "[1 2 3 4 5]" {
			t.Fatalf("offsets %v", got)
		}
		for _, m := range c.notifications() {
			if m.Type == wire.TypeGap {
				t.Fatalf("unexpected gap %s", m.Raw)
			}
		}
	})
	t.Run("a failed re-read is announced with the epoch, and later gaps are caught", func(t *testing.T) {
		lb, ms := newLossy()
		st := &failingStream{Stream: ms}
		n, c := startSubscribed(t, lb, st, ch)
		st.fail.Store(true)
		lb.setDrop(func(p Publication) bool { return p.Offset == 2 || p.Offset == 5 })
		var epoch string
		for i := 1; i <= 6; i++ {
			epoch = n.publish(t, ch, fmt.Sprintf(`{"i":%d}`, i)).Epoch
		}
		expectSeq(t, c, ch, []string{"msg:1", "gap:3", "msg:3", "msg:4", "gap:6", "msg:6"}, epoch)
	})
	t.Run("a failed Resync is announced with the epoch, and the next gap is caught", func(t *testing.T) {
		lb, ms := newLossy()
		st := &failingStream{Stream: ms}
		n, c := startSubscribed(t, lb, st, ch)
		epoch := n.publish(t, ch, `{"i":1}`).Epoch
		c.waitUntil("msg 1", 5*time.Second, func() bool { return len(offsetsLocked(c, ch)) >= 1 })

		// Nothing is held and the stream cannot say where it is: the
		// notice carries the last known epoch and the next offset.
		st.fail.Store(true)
		n.Resync([]string{ch})
		c.waitUntil("a gap", 5*time.Second, func() bool {
			seq, _ := seqLocked(c, ch)
			return len(seq) >= 2
		})

		// Offsets are still checked: the lost 2 is announced before 3.
		lb.setDrop(func(p Publication) bool { return p.Offset == 2 })
		for i := 2; i <= 4; i++ {
			n.publish(t, ch, fmt.Sprintf(`{"i":%d}`, i))
		}
		expectSeq(t, c, ch, []string{"msg:1", "gap:2", "gap:3", "msg:3", "msg:4"}, epoch)
	})
	t.Run("a publication held behind a read that raced it is filled by another read", func(t *testing.T) {
		lb, ms := newLossy()
		st := &staleStream{Stream: ms, at: 3}
		n, c := startSubscribed(t, lb, st, ch)
		lb.setDrop(func(p Publication) bool { return p.Offset == 4 })
		for i := 1; i <= 6; i++ {
			n.publish(t, ch, fmt.Sprintf(`{"i":%d}`, i))
		}
		// Offset 4 is in the stream, so no gap.
		expectSeq(t, c, ch, []string{"msg:1", "msg:2", "msg:3", "msg:4", "msg:5", "msg:6"}, "")
		if !st.used.Load() {
			t.Error("the fill never read the stream")
		}
	})
}
