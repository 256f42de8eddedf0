package realtime

import (
	"context"
	"hash/maphash"
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
	metrics *metrics
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
}

func newHub(b Broker, m *metrics) *Hub {
	h := &Hub{broker: b, metrics: m, seed: maphash.MakeSeed()}
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

// channelCount returns how many channels have local subscribers.
func (h *Hub) channelCount() int {
	n := 0
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		n += len(sh.channels)
		sh.mu.RUnlock()
	}
	return n
}

// Deliver fans a publication out to the local subscribers of ch. It never
// blocks: each subscriber's connection takes the frame into its bounded
// queue or is closed as a slow consumer.
func (h *Hub) Deliver(ch string, p Publication) {
	hc := h.lookup(ch)
	if hc == nil {
		return
	}
	subs := *hc.subs.Load()
	if len(subs) == 0 {
		return
	}
	now := time.Now()
	var frame []byte
	if p.Offset == 0 {
		frame = p.Payload // an ephemeral event arrives encoded
	} else {
		frame = wire.AppendMsg(make([]byte, 0, len(p.Payload)+len(ch)+64), ch, p.Position, p.Payload)
	}
	for _, s := range subs {
		s.deliver(frame, p.Position, now)
	}
}
