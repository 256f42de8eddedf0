package realtime

import (
	"context"
	"errors"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/partyline/partyline/realtime/wire"
)

// hubShards is the number of independently locked parts of the Hub's
// channel map. A power of two, so the shard is a mask of the hash.
const hubShards = 64

// Hub maps channels to the local subscriptions on them, and fans each
// publication the broker delivers out to them: the frame is encoded once
// and the same bytes are queued on every subscriber's connection.
//
// The map is sharded to avoid one big lock. A channel's subscriber list is
// copy-on-write, so delivery reads it without locking. The Hub also counts
// local subscribers per channel and subscribes the node to the broker on the
// first and unsubscribes after the last; brokerMu stripes serialize those
// calls per channel, so a subscribe racing an unsubscribe of the same
// channel always leaves the broker subscribed while anyone listens.
type Hub struct {
	broker  Broker
	stream  Stream
	metrics *metrics
	fills   sync.WaitGroup // gap fills in flight
	seed    maphash.Seed
	shards  [hubShards]hubShard
	// brokerMu serializes broker Subscribe/Unsubscribe per channel stripe.
	brokerMu [hubShards]sync.Mutex
}

type hubShard struct {
	mu       sync.RWMutex
	channels map[string]*hubChannel
}

// hubChannel is one channel's local state.
type hubChannel struct {
	name string
	// subs is the current subscriber list, replaced on every change.
	subs atomic.Pointer[[]*subscription]
	// refs counts subscriptions added minus removed; guarded by the shard lock.
	refs int
	// brokered is true once the broker subscription is active; guarded by
	// the channel's brokerMu stripe.
	brokered bool
	// mu serializes changes to subs.
	mu sync.Mutex

	// seqMu guards the live-path sequence state below, and is held while a
	// stream publication is fanned out, so fills and live deliveries reach
	// subscribers in offset order.
	seqMu sync.Mutex
	// last is the position of the last stream publication fanned out here;
	// a zero Epoch means none is known yet.
	last Position
	// filling is true while a fill re-reads the stream after a gap; live
	// publications are held until it is done.
	filling bool
	held    []Publication
}

func newHub(b Broker, st Stream, m *metrics) *Hub {
	h := &Hub{broker: b, stream: st, metrics: m, seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].channels = make(map[string]*hubChannel)
	}
	return h
}

func (h *Hub) index(ch string) int {
	return int(maphash.String(h.seed, ch) & (hubShards - 1))
}

// add registers sub on its channel, subscribing the node to the broker when
// it is the channel's first local subscriber. It returns once deliveries for
// the channel reach sub (buffered, while sub is recovering).
func (h *Hub) add(ctx context.Context, sub *subscription) error {
	i := h.index(sub.channel)
	sh := &h.shards[i]
	sh.mu.Lock()
	hc := sh.channels[sub.channel]
	if hc == nil {
		hc = &hubChannel{name: sub.channel}
		empty := []*subscription{}
		hc.subs.Store(&empty)
		sh.channels[sub.channel] = hc
	}
	hc.refs++
	sh.mu.Unlock()

	hc.mu.Lock()
	old := *hc.subs.Load()
	next := make([]*subscription, len(old), len(old)+1)
	copy(next, old)
	next = append(next, sub)
	hc.subs.Store(&next)
	hc.mu.Unlock()
	sub.hc = hc

	var err error
	h.brokerMu[i].Lock()
	if !hc.brokered {
		if err = h.broker.Subscribe(ctx, sub.channel); err == nil {
			hc.brokered = true
		}
	}
	h.brokerMu[i].Unlock()
	if err != nil {
		h.remove(sub)
		return err
	}
	return nil
}

// remove unregisters sub; after the channel's last local subscriber leaves,
// the node unsubscribes from the broker. It is a no-op for a subscription
// that was never added or was removed already.
func (h *Hub) remove(sub *subscription) {
	hc := sub.hc
	if hc == nil {
		return
	}
	sub.hc = nil
	hc.mu.Lock()
	old := *hc.subs.Load()
	next := make([]*subscription, 0, len(old))
	for _, s := range old {
		if s != sub {
			next = append(next, s)
		}
	}
	hc.subs.Store(&next)
	hc.mu.Unlock()

	i := h.index(sub.channel)
	sh := &h.shards[i]
	sh.mu.Lock()
	hc.refs--
	last := hc.refs == 0
	if last && sh.channels[sub.channel] == hc {
		delete(sh.channels, sub.channel)
	}
	sh.mu.Unlock()
	if !last {
		return
	}
	h.brokerMu[i].Lock()
	defer h.brokerMu[i].Unlock()
	sh.mu.RLock()
	_, again := sh.channels[sub.channel]
	sh.mu.RUnlock()
	if again || !hc.brokered {
		return // a new local subscriber arrived and owns the broker subscription
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.broker.Unsubscribe(ctx, sub.channel) // at worst the node keeps receiving a channel nobody reads
}

// lookup returns the channel's state, or nil when nobody here listens.
func (h *Hub) lookup(ch string) *hubChannel {
	sh := &h.shards[h.index(ch)]
	sh.mu.RLock()
	hc := sh.channels[ch]
	sh.mu.RUnlock()
	return hc
}

// Deliver fans a publication out to the local subscribers of ch. It never
// blocks: each subscriber's connection takes the frame into its bounded
// queue or is closed as a slow consumer.
//
// Stream publications are checked against the last offset seen on the
// channel. A duplicate is dropped. A skipped offset or a new epoch (the
// broker is at most once, and a stream can be lost) starts a fill: the
// stream is re-read from the last position on another goroutine, while
// later publications are held; what is missing is delivered in order, or,
// when it cannot be replayed, subscribers get a gap notification.
func (h *Hub) Deliver(ch string, p Publication) {
	hc := h.lookup(ch)
	if hc == nil {
		return
	}
	if p.Offset == 0 {
		h.fanout(hc, p.Payload, p.Position, time.Now()) // an ephemeral event arrives encoded
		return
	}
	hc.seqMu.Lock()
	defer hc.seqMu.Unlock()
	switch {
	case hc.filling:
		hc.held = append(hc.held, p)
		return
	case hc.last.Epoch == "":
	case p.Epoch == hc.last.Epoch && p.Offset <= hc.last.Offset:
		return // a duplicate
	case p.Epoch == hc.last.Epoch && p.Offset == hc.last.Offset+1:
	default:
		hc.filling = true
		hc.held = append(hc.held, p)
		h.startFill(hc, hc.last, 0)
		return
	}
	hc.last = p.Position
	h.fanoutPub(hc, p)
}

// fanoutPub encodes a stream publication once and fans it out; the caller
// holds hc.seqMu.
func (h *Hub) fanoutPub(hc *hubChannel, p Publication) {
	frame := wire.AppendMsg(make([]byte, 0, len(p.Payload)+len(hc.name)+64), hc.name, p.Position, p.Payload)
	h.fanout(hc, frame, p.Position, time.Now())
}

func (h *Hub) fanout(hc *hubChannel, frame []byte, pos Position, now time.Time) {
	for _, s := range *hc.subs.Load() {
		s.deliver(frame, pos, now)
	}
}

// observe records a stream position read while subscribing, so the first
// live publication after it can be checked for a gap.
func (h *Hub) observe(ch string, pos Position) {
	hc := h.lookup(ch)
	if hc == nil {
		return
	}
	hc.seqMu.Lock()
	if hc.last.Epoch == "" && !hc.filling {
		hc.last = pos
	}
	hc.seqMu.Unlock()
}

// Resync re-reads the streams of channels whose deliveries may have been
// lost, as after the broker's subscription was restarted, and delivers
// what is missing.
func (h *Hub) Resync(channels []string) {
	for _, ch := range channels {
		hc := h.lookup(ch)
		if hc == nil {
			continue
		}
		hc.seqMu.Lock()
		if !hc.filling && hc.last.Epoch != "" {
			hc.filling = true
			h.startFill(hc, hc.last, 0)
		}
		hc.seqMu.Unlock()
	}
}

// fillTimeout bounds one re-read of a stream after a gap.
const fillTimeout = 5 * time.Second

// maxRefills bounds the extra reads one fill may start for publications
// held while it read (see fill).
const maxRefills = 3

func (h *Hub) startFill(hc *hubChannel, from Position, refills int) {
	h.fills.Add(1)
	go func() {
		defer h.fills.Done()
		h.fill(hc, from, refills)
	}()
}

// fill re-reads hc's stream after from, then delivers what was missed and
// what was held meanwhile, in order. A held publication that is still not
// next after what the read returned was published after the read, behind
// others that were lost too: the stream has them, so it reads again from
// there (up to maxRefills times) rather than announce a gap.
func (h *Hub) fill(hc *hubChannel, from Position, refills int) {
	ctx, cancel := context.WithTimeout(context.Background(), fillTimeout)
	pubs, cur, err := h.stream.Since(ctx, hc.name, from)
	cancel()
	if err != nil && !errors.Is(err, ErrUnrecoverable) {
		cur = Position{} // the read failed: the current position is unknown
	}
	hc.seqMu.Lock()
	defer hc.seqMu.Unlock()
	if err == nil {
		h.metrics.gapFills.WithLabelValues("filled").Inc()
		for _, p := range pubs {
			if p.Epoch == hc.last.Epoch && p.Offset <= hc.last.Offset {
				continue
			}
			hc.last = p.Position
			h.fanoutPub(hc, p)
		}
		if hc.last.Epoch == "" || (cur.Epoch == hc.last.Epoch && cur.Offset > hc.last.Offset) {
			hc.last = cur
		}
	} else {
		// What came before the next publication may be lost for good:
		// say so, and carry on from there.
		h.metrics.gapFills.WithLabelValues("gap").Inc()
		next := resumeAt(hc.last, hc.held, cur)
		h.fanout(hc, wire.AppendGap(nil, hc.name, next), Position{}, time.Now())
		hc.last = Position{Epoch: next.Epoch, Offset: next.Offset - 1}
	}
	for i, p := range hc.held {
		if p.Epoch == hc.last.Epoch && p.Offset <= hc.last.Offset {
			continue
		}
		if p.Epoch != hc.last.Epoch || p.Offset != hc.last.Offset+1 {
			if err == nil && p.Epoch == hc.last.Epoch && refills < maxRefills {
				hc.held = slices.Clone(hc.held[i:])
				h.startFill(hc, hc.last, refills+1) // hc stays filling
				return
			}
			h.fanout(hc, wire.AppendGap(nil, hc.name, p.Position), Position{}, time.Now())
		}
		hc.last = p.Position
		h.fanoutPub(hc, p)
	}
	hc.held = nil
	hc.filling = false
}

// resumeAt returns where live delivery goes on after a fill that could not
// replay what was missed, which is the position its gap notification
// carries: the first held publication after last; without one, the
// publication after cur, the stream's current position, when the stream
// told it (cur.Epoch != ""); and otherwise, when the stream is unreachable
// and nothing new has arrived, the publication after last. In that last
// case the notice is an early warning: live delivery is checked against last
// as before, so a publication that shows more were lost starts another fill,
// and another notice if that fails too. The result always has an epoch,
// since a fill starts only once last is known or a publication is held.
func resumeAt(last Position, held []Publication, cur Position) Position {
	for _, p := range held {
		if p.Epoch != last.Epoch || p.Offset > last.Offset {
			return p.Position
		}
	}
	if cur.Epoch != "" {
		return Position{Epoch: cur.Epoch, Offset: cur.Offset + 1}
	}
	return Position{Epoch: last.Epoch, Offset: last.Offset + 1}
}
