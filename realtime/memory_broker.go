package realtime

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/partyline/partyline"
)

// memoryShards is how many independently locked parts the memory
// implementations split their maps into. A power of two, so the shard is a
// mask of the hash.
const memoryShards = 64

// MemoryBrokerOptions configures a MemoryBroker.
type MemoryBrokerOptions struct {
	// NodeID is this node's id: the only node SendNode reaches. Zero means
	// "local".
	NodeID string
}

// MemoryBroker is the in-process Broker. It serves exactly one node: every
// publication stays inside the process, and SendNode reaches only the
// node's own id. Use realtime/redisbroker to run more than one node.
//
// Delivery is synchronous: PublishEvent, SendNode and the Publish of a
// MemoryStream built on the broker call the Deliverer on the caller's
// goroutine before they return, and never copy the payload. Deliveries of
// one channel never overlap, because each goes through a mutex picked by
// the channel's hash. So a Deliverer must not publish to the broker (or to
// a Stream on it) from inside Deliver; its methods must not block anyway.
//
// The zero value is not usable; call NewMemoryBroker. Methods are safe for
// concurrent use.
type MemoryBroker struct {
	nodeID string
	seed   maphash.Seed
	shards [memoryShards]brokerShard
	// running holds the Deliverer of the Run in progress, or nil.
	running atomic.Pointer[runningDeliverer]
	// nodeMu serializes DeliverNode calls, and lets Run wait for the one
	// under way, like each shard's deliverMu does for Deliver.
	nodeMu sync.Mutex
}

// brokerShard is one part of the subscription set.
type brokerShard struct {
	// mu guards subs.
	mu   sync.RWMutex
	subs map[string]struct{}
	// deliverMu is held around each delivery to a channel of the shard: it
	// keeps a channel's deliveries one at a time, and lets Run wait for the
	// deliveries under way before it returns.
	deliverMu sync.Mutex
}

// runningDeliverer boxes the Deliverer so it fits an atomic.Pointer.
type runningDeliverer struct {
	d Deliverer
}

var _ Broker = (*MemoryBroker)(nil)

// errBrokerRunning is returned by a second Run while one is in progress.
var errBrokerRunning = errors.New("realtime: memory broker: Run is already running")

// NewMemoryBroker returns a MemoryBroker with no subscriptions. It starts
// no goroutines; deliveries begin when Run is called.
func NewMemoryBroker(opts MemoryBrokerOptions) *MemoryBroker {
	if opts.NodeID == "" {
		opts.NodeID = "local"
	}
	b := &MemoryBroker{nodeID: opts.NodeID, seed: maphash.MakeSeed()}
	for i := range b.shards {
		b.shards[i].subs = make(map[string]struct{})
	}
	return b
}

func (b *MemoryBroker) shard(ch string) *brokerShard {
	return &b.shards[maphash.String(b.seed, ch)&(memoryShards-1)]
}

// Subscribe marks ch as subscribed. It never blocks and is idempotent: one
// Unsubscribe undoes any number of Subscribes. It returns ctx's error if
// ctx is already done.
func (b *MemoryBroker) Subscribe(ctx context.Context, ch string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := b.shard(ch)
	sh.mu.Lock()
	sh.subs[ch] = struct{}{}
	sh.mu.Unlock()
	return nil
}

// Unsubscribe removes ch from the subscribed channels. It is idempotent
// and never blocks; a delivery to ch that is already under way may still
// complete. It returns ctx's error if ctx is already done.
func (b *MemoryBroker) Unsubscribe(ctx context.Context, ch string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := b.shard(ch)
	sh.mu.Lock()
	delete(sh.subs, ch)
	sh.mu.Unlock()
	return nil
}

// subscribed reports whether ch is subscribed.
func (b *MemoryBroker) subscribed(ch string) bool {
	sh := b.shard(ch)
	sh.mu.RLock()
	_, ok := sh.subs[ch]
	sh.mu.RUnlock()
	return ok
}

// PublishEvent hands p to the running Deliverer, on the calling goroutine,
// if ch is subscribed; otherwise, or when Run is not running, it drops p
// and returns nil. p.Payload is passed on without a copy, so the caller
// must not modify it afterwards. It returns ctx's error if ctx is already
// done.
func (b *MemoryBroker) PublishEvent(ctx context.Context, ch string, p Publication) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.deliver(ch, p)
	return nil
}

// deliver hands p to the running Deliverer if ch is subscribed. It
// allocates nothing.
func (b *MemoryBroker) deliver(ch string, p Publication) {
	if b.running.Load() == nil {
		return // the common case of a node that is not running yet
	}
	sh := b.shard(ch)
	sh.mu.RLock()
	_, ok := sh.subs[ch]
	sh.mu.RUnlock()
	if !ok {
		return
	}
	sh.deliverMu.Lock()
	// Loaded again under deliverMu: once Run has cleared it and taken
	// every deliverMu, no delivery can start.
	if r := b.running.Load(); r != nil {
		r.d.Deliver(ch, p)
	}
	sh.deliverMu.Unlock()
}

// SendNode hands msg to the running Deliverer's DeliverNode, on the
// calling goroutine, when node is this broker's NodeID; when Run is not
// running it drops msg and returns nil. msg is passed on without a copy,
// so the caller must not modify it afterwards. Any other node does not
// exist in a one-node broker: the error wraps partyline.ErrNotFound.
func (b *MemoryBroker) SendNode(ctx context.Context, node string, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if node != b.nodeID {
		return fmt.Errorf("realtime: memory broker: send to node %q: %w", node, partyline.ErrNotFound)
	}
	if b.running.Load() == nil {
		return nil
	}
	b.nodeMu.Lock()
	if r := b.running.Load(); r != nil {
		r.d.DeliverNode(msg)
	}
	b.nodeMu.Unlock()
	return nil
}

// Run makes d the receiver of deliveries and blocks until ctx is done. It
// then stops deliveries, waits for the ones under way to return, and
// returns nil, so d is never called after Run returns. Deliveries made
// while Run is not running are dropped. Only one Run may run at a time; a
// second one returns an error at once.
func (b *MemoryBroker) Run(ctx context.Context, d Deliverer) error {
	if d == nil {
		return errors.New("realtime: memory broker: Run needs a Deliverer")
	}
	r := &runningDeliverer{d: d}
	if !b.running.CompareAndSwap(nil, r) {
		return errBrokerRunning
	}
	<-ctx.Done()
	b.running.Store(nil)
	// A delivery loads the Deliverer again under its lock, so taking each
	// lock once waits out the deliveries that still saw d.
	for i := range b.shards {
		b.shards[i].deliverMu.Lock()
		b.shards[i].deliverMu.Unlock()
	}
	b.nodeMu.Lock()
	b.nodeMu.Unlock()
	return nil
}

// Nodes lists the one node the memory broker serves.
func (b *MemoryBroker) Nodes(ctx context.Context) ([]string, error) {
	return []string{b.nodeID}, nil
}
