package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime"
)

// Broker is the realtime.Broker on Redis pub/sub. Each channel has one
// pub/sub channel (see doc.go for names); a single Redis uses SUBSCRIBE
// and PUBLISH, a cluster uses sharded pub/sub (SSUBSCRIBE, SPUBLISH) with
// one connection per master. Delivery is at most once; receivers catch
// gaps by offsets.
//
// The zero value is not usable; New makes one. Methods are safe for
// concurrent use.
type Broker struct {
	client     goredis.UniversalClient
	cluster    *goredis.ClusterClient // nil for a single Redis
	keys       keyspace
	nodeID     string
	nodeCh     string // this node's pub/sub channel
	probeEvery time.Duration
	nodeTTL    time.Duration
	pub        *publisher

	// mu guards wanted and run, and everything of the runState but its
	// channels. It is held while subscribe and unsubscribe commands are
	// written, so they reach Redis in the order the shards counted them.
	// Lock order: Broker.mu, then shard.mu.
	mu     sync.Mutex
	wanted map[string]struct{} // the channels subscribed by the caller
	run    *runState           // nil while Run is not running
}

var _ realtime.Broker = (*Broker)(nil)

var (
	errRunning   = errors.New("redis: broker: Run is already running")
	errNoDeliver = errors.New("redis: broker: Run needs a Deliverer")
)

func newBroker(opts Options) *Broker {
	b := &Broker{
		client:     opts.Client,
		keys:       keyspace{prefix: opts.Prefix},
		nodeID:     opts.NodeID,
		probeEvery: opts.ProbeInterval,
		nodeTTL:    3 * opts.ProbeInterval,
		pub:        newPublisher(opts.Client, opts.HistorySize, opts.HistoryTTL+historyKeyMargin),
		wanted:     make(map[string]struct{}),
	}
	b.cluster, _ = opts.Client.(*goredis.ClusterClient)
	b.nodeCh = b.keys.node(opts.NodeID)
	return b
}

// NodeID returns the id SendNode reaches this node by.
func (b *Broker) NodeID() string { return b.nodeID }

// Subscribe makes this node receive ch's publications. While Run runs, it
// returns once Redis has confirmed the subscription, so a publication
// made after it returns is delivered; if Run is still starting, it waits
// for that first. While Run does not run, it only records ch, which the
// next Run subscribes. It is idempotent. When ctx ends first, it returns
// ctx's error and withdraws the subscription if this call made it.
func (b *Broker) Subscribe(ctx context.Context, ch string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name := b.keys.channel(ch)
	for {
		b.mu.Lock()
		_, had := b.wanted[ch]
		b.wanted[ch] = struct{}{}
		rs := b.run
		if rs == nil {
			b.mu.Unlock()
			return nil
		}
		// await waits for done; it reports false when Run stopped first,
		// and returns ctx's error, withdrawing ch if this call added it,
		// when ctx ended first.
		await := func(done <-chan struct{}) (bool, error) {
			select {
			case <-done:
				return true, nil
			case <-rs.stopped:
				return false, nil
			case <-ctx.Done():
				if !had {
					_ = b.Unsubscribe(context.WithoutCancel(ctx), ch)
				}
				return false, ctx.Err()
			}
		}
		if !rs.started {
			b.mu.Unlock()
			if ready, err := await(rs.ready); !ready {
				return err
			}
			continue
		}
		wait, err := b.subscribeLocked(rs, name, ch, kindApp)
		if err != nil && !had {
			delete(b.wanted, ch)
		}
		b.mu.Unlock()
		if err != nil {
			return fmt.Errorf("redis: subscribe to %s: %w", ch, err)
		}
		_, err = await(wait)
		return err
	}
}

// Unsubscribe stops ch's deliveries to this node: none starts after it
// returns, even before Redis confirms. It is idempotent, and returns
// without waiting for Redis; a failure to send the command restarts the
// connection, which leaves ch out.
func (b *Broker) Unsubscribe(ctx context.Context, ch string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.wanted[ch]; !ok {
		return nil
	}
	delete(b.wanted, ch)
	if rs := b.run; rs != nil && rs.started {
		b.unsubscribeLocked(rs, b.keys.channel(ch))
	}
	return nil
}

// PublishEvent publishes an ephemeral event on ch's pub/sub channel, with
// offset 0, to every node subscribed to ch (this one included). Events
// share the batching of Stream.Publish. p.Position is ignored.
func (b *Broker) PublishEvent(ctx context.Context, ch string, p realtime.Publication) error {
	cmd := "publish"
	if b.cluster != nil {
		cmd = "spublish"
	}
	msg := appendEvent(make([]byte, 0, 3+len(p.Payload)), p.Payload)
	if _, err := b.pub.do(ctx, &pubCall{args: []any{cmd, b.keys.channel(ch), msg}}); err != nil {
		return fmt.Errorf("redis: publish event to %s: %w", ch, err)
	}
	return nil
}

// SendNode publishes msg on the channel of the node with the given id, at
// most once. When no connection received it, it checks the node registry:
// a node that is not live is an error wrapping partyline.ErrNotFound, and
// a live one (which may be re-subscribing) lost the message. msg is copied.
func (b *Broker) SendNode(ctx context.Context, node string, msg []byte) error {
	buf := make([]byte, 0, 1+len(msg))
	buf = append(append(buf, nodeMessage), msg...)
	n, err := b.publish(ctx, b.keys.node(node), buf)
	if err != nil {
		return fmt.Errorf("redis: send to node %s: %w", node, err)
	}
	if n > 0 {
		return nil
	}
	live, err := nodesScript.Run(ctx, b.client, []string{b.keys.nodes()}, node).StringSlice()
	if err != nil {
		return fmt.Errorf("redis: send to node %s: %w", node, err)
	}
	if len(live) == 0 {
		return fmt.Errorf("redis: send to node %s: %w", node, partyline.ErrNotFound)
	}
	return nil
}

// Nodes returns the ids of the live nodes, in no set order: those whose
// Run has registered them and renewed the registration within three
// probe intervals.
func (b *Broker) Nodes(ctx context.Context) ([]string, error) {
	ids, err := nodesScript.Run(ctx, b.client, []string{b.keys.nodes()}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redis: list nodes: %w", err)
	}
	return ids, nil
}

// publish publishes msg on the pub/sub channel name and returns how many
// connections received it (on the channel's shard, in a cluster).
func (b *Broker) publish(ctx context.Context, name string, msg []byte) (int64, error) {
	if b.cluster != nil {
		return b.client.SPublish(ctx, name, msg).Result()
	}
	return b.client.Publish(ctx, name, msg).Result()
}

// runState is what one Run owns. Its fields are guarded by Broker.mu,
// except those that say otherwise.
type runState struct {
	// ctx carries Run's values without its cancellation: subscription
	// commands and probes use it, so a caller's deadline never breaks a
	// shared connection.
	ctx      context.Context
	d        realtime.Deliverer // set once
	shards   map[string]*shard  // by master address; "" for a single Redis
	where    map[string]*shard  // the shard of each subscribed pub/sub name
	orphans  []carried          // channels waiting for a shard (cluster state unknown)
	started  bool               // the node channel is subscribed and the node registered
	failures int                // restarts since the last good probe round; only Run's goroutine
	ready    chan struct{}      // closed when started
	stopped  chan struct{}      // closed when Run stops delivering
	wake     chan struct{}      // a shard asked for a restart; 1-buffered
}

// Run subscribes this node's channel, registers the node, subscribes the
// channels recorded so far, and delivers to d until ctx is done. Then it
// sends the publishes still queued, closes its pub/sub connections, waits
// for the deliveries under way, removes the node from the registry and
// returns nil; d is never called after Run returns. Run survives Redis
// going away and coming back: go-redis reconnects, and Run re-subscribes.
// Only one Run may run at a time; another returns an error at once.
//
// After Run replaces a pub/sub connection (it broke, or a probe found it
// stuck) or notices that go-redis silently re-subscribed on a new
// connection, publications on it may have been lost without a later one
// to reveal the gap: once the channels are subscribed again, Run calls
// d.Resync with them from its receive loop.
func (b *Broker) Run(ctx context.Context, d realtime.Deliverer) error {
	if d == nil {
		return errNoDeliver
	}
	rs := &runState{
		ctx:     context.WithoutCancel(ctx),
		d:       d,
		shards:  make(map[string]*shard),
		where:   make(map[string]*shard),
		ready:   make(chan struct{}),
		stopped: make(chan struct{}),
		wake:    make(chan struct{}, 1),
	}
	b.mu.Lock()
	if b.run != nil {
		b.mu.Unlock()
		return errRunning
	}
	b.run = rs
	b.mu.Unlock()
	b.pub.start(ctx)

	var nodeReady <-chan struct{}
	subscribeNode := func() {
		b.mu.Lock()
		w, err := b.subscribeLocked(rs, b.nodeCh, "", kindNode)
		b.mu.Unlock()
		if err == nil {
			nodeReady = w
		}
	}
	subscribeNode()
	tick := time.NewTicker(b.probeEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			b.stop(rs)
			return nil
		case <-nodeReady:
			nodeReady = nil
			b.heartbeat(rs)
			b.mu.Lock()
			rs.started = true
			close(rs.ready)
			for ch := range b.wanted {
				name := b.keys.channel(ch)
				if _, err := b.subscribeLocked(rs, name, ch, kindApp); err != nil {
					rs.orphans = append(rs.orphans, carried{name: name, app: ch, kind: kindApp})
				}
			}
			b.mu.Unlock()
		case <-rs.wake:
			if delay := restartDelay(rs.failures); delay > 0 {
				t := time.NewTimer(delay)
				select {
				case <-ctx.Done():
					t.Stop()
					b.stop(rs)
					return nil
				case <-t.C:
				}
			}
			rs.failures++
			b.restart(rs)
		case <-tick.C:
			b.adoptOrphans(rs)
			if !rs.started {
				if nodeReady == nil {
					subscribeNode()
				}
				continue
			}
			if b.probe(rs) {
				rs.failures = 0
			}
			b.heartbeat(rs)
		}
	}
}

// restartDelay spaces out restarts that keep failing: none for the first,
// then 50 ms doubling up to 2 s.
func restartDelay(failures int) time.Duration {
	if failures == 0 {
		return 0
	}
	return min(50*time.Millisecond<<min(failures-1, 6), 2*time.Second)
}

// stop ends a Run: no new publish is queued and the queued ones are sent,
// the shards close (which waits for their receive loops), waiting
// Subscribes return, and the node leaves the registry.
func (b *Broker) stop(rs *runState) {
	b.pub.shutdown()
	b.mu.Lock()
	b.run = nil
	shards := rs.shards
	rs.shards = nil
	b.mu.Unlock()
	for _, sh := range shards {
		sh.close()
		for _, c := range sh.take() {
			c.release()
		}
	}
	for _, c := range rs.orphans {
		c.release()
	}
	close(rs.stopped)
	ctx, cancel := context.WithTimeout(rs.ctx, time.Second)
	defer cancel()
	_ = b.client.ZRem(ctx, b.keys.nodes(), b.nodeID).Err() // it expires anyway
}

// heartbeat registers the node in the registry for three probe
// intervals. A failure is left for the next tick.
func (b *Broker) heartbeat(rs *runState) {
	ctx, cancel := context.WithTimeout(rs.ctx, b.probeEvery)
	defer cancel()
	_ = heartbeatScript.Run(ctx, b.client, []string{b.keys.nodes()}, b.nodeID, b.nodeTTL.Milliseconds()).Err()
}

// probe checks that every shard answered the previous probe, asking for a
// restart of those that did not, and sends the next probe through each,
// in one pipeline. It reports whether every shard answered.
func (b *Broker) probe(rs *runState) bool {
	b.mu.Lock()
	shards := make([]*shard, 0, len(rs.shards))
	for _, sh := range rs.shards {
		shards = append(shards, sh)
	}
	b.mu.Unlock()
	ok := true
	cmd := "publish"
	if b.cluster != nil {
		cmd = "spublish"
	}
	ctx, cancel := context.WithTimeout(rs.ctx, b.probeEvery)
	defer cancel()
	pipe := b.client.Pipeline()
	for _, sh := range shards {
		if sent := sh.probeSent.Load(); sent > 0 && sh.probeSeen.Load() < sent {
			ok = false
			sh.requestRestart()
			continue
		}
		if !sh.probeActive() {
			// A probe now would be lost. Give a new connection one more
			// interval to confirm its probe channel.
			if sh.probeWaited {
				ok = false
				sh.requestRestart()
			}
			sh.probeWaited = true
			continue
		}
		token := sh.probeSent.Add(1)
		msg := strconv.AppendUint([]byte{probeMessage}, token, 10)
		pipe.Do(ctx, cmd, sh.probeCh, msg)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		ok = false // the unanswered probe restarts the shard next time
	}
	return ok
}

// subscribeLocked subscribes the pub/sub channel name on its shard,
// creating the shard if needed, and returns a channel closed once Redis
// has confirmed it. A failure to send the command asks for a restart of
// the shard, which subscribes it again. b.mu is held.
func (b *Broker) subscribeLocked(rs *runState, name, app string, kind chanKind) (<-chan struct{}, error) {
	sh := rs.where[name]
	if sh == nil {
		var err error
		if sh, err = b.shardFor(rs, name); err != nil {
			return nil, err
		}
		rs.where[name] = sh
	}
	w, send := sh.add(name, app, kind, false, nil)
	if send {
		if err := sh.send(true, name); err != nil {
			sh.requestRestart()
		}
	}
	return w, nil
}

// unsubscribeLocked unsubscribes the pub/sub channel name. b.mu is held.
func (b *Broker) unsubscribeLocked(rs *runState, name string) {
	sh := rs.where[name]
	if sh == nil {
		for i, c := range rs.orphans {
			if c.name == name {
				c.release()
				rs.orphans = append(rs.orphans[:i], rs.orphans[i+1:]...)
				break
			}
		}
		return
	}
	delete(rs.where, name)
	if sh.remove(name) {
		if err := sh.send(false, name); err != nil {
			sh.requestRestart()
		}
	}
}

// shardFor returns the shard that serves the pub/sub channel name,
// starting it if there is none: the master that owns name's slot in a
// cluster, the one connection otherwise. b.mu is held.
func (b *Broker) shardFor(rs *runState, name string) (*shard, error) {
	key, err := b.shardKey(rs.ctx, name)
	if err != nil {
		return nil, err
	}
	if sh := rs.shards[key]; sh != nil {
		return sh, nil
	}
	probeCh, err := b.probeChannel(rs.ctx, key)
	if err != nil {
		return nil, err
	}
	sh := b.startShard(rs, key, probeCh)
	rs.shards[key] = sh
	return sh, nil
}

// shardKey returns the address of the master that owns name's slot, or ""
// for a single Redis.
func (b *Broker) shardKey(ctx context.Context, name string) (string, error) {
	if b.cluster == nil {
		return "", nil
	}
	c, err := b.cluster.MasterForKey(ctx, name)
	if err != nil {
		return "", err
	}
	return c.Options().Addr, nil
}

// maxProbeCandidates bounds the search for a probe channel on a master.
// A master that owns a single slot of 16384 needs that many tries on
// average; any real one far fewer.
const maxProbeCandidates = 1 << 18

// probeChannel picks the channel that probes the shard of the given key:
// the node's own channel when it lives there (always, for a single
// Redis), else the first probe channel candidate whose slot that master
// owns.
func (b *Broker) probeChannel(ctx context.Context, key string) (string, error) {
	home, err := b.shardKey(ctx, b.nodeCh)
	if err != nil {
		return "", err
	}
	if home == key {
		return b.nodeCh, nil
	}
	for n := range maxProbeCandidates {
		name := b.keys.probe(b.nodeID, n)
		if k, err := b.shardKey(ctx, name); err != nil {
			return "", err
		} else if k == key {
			return name, nil
		}
	}
	return "", fmt.Errorf("redis: no probe channel found for master %s", key)
}

// startShard opens a pub/sub connection for the master at key, subscribes
// its probe channel and starts its receive loop. b.mu is held.
func (b *Broker) startShard(rs *runState, key, probeCh string) *shard {
	sh := &shard{
		b:       b,
		rs:      rs,
		key:     key,
		probeCh: probeCh,
		chans:   make(map[string]*chanState),
		done:    make(chan struct{}),
	}
	if b.cluster != nil {
		sh.ps = b.cluster.SSubscribe(rs.ctx)
	} else {
		sh.ps = b.client.Subscribe(rs.ctx)
	}
	kind := kindProbe
	if probeCh == b.nodeCh {
		kind = kindNode
	}
	// The probe channel goes first: in a cluster, go-redis connects to the
	// node of the first channel, so the receive loop must not start before.
	sh.add(probeCh, "", kind, false, nil)
	if err := sh.send(true, probeCh); err != nil {
		sh.requestRestart()
	}
	if kind == kindNode {
		rs.where[probeCh] = sh
	}
	go sh.loop()
	return sh
}

// restart replaces every shard that asked for it: it closes the old
// connection, and subscribes its channels again on fresh ones, grouped by
// their current master in a cluster. The channels' waiting Subscribes go
// along, and the Deliverer's Resync hears about the channels once they are
// confirmed.
func (b *Broker) restart(rs *runState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var moved []carried
	for key, sh := range rs.shards {
		if !sh.restartWanted.Load() {
			continue
		}
		delete(rs.shards, key)
		sh.close()
		moved = append(moved, sh.take()...)
	}
	if len(moved) == 0 {
		return
	}
	if b.cluster != nil {
		b.cluster.ReloadState(rs.ctx) // slots may have moved
	}
	for _, c := range moved {
		delete(rs.where, c.name)
		b.place(rs, c)
	}
}

// adoptOrphans retries placing the channels that found no shard.
func (b *Broker) adoptOrphans(rs *runState) {
	b.mu.Lock()
	defer b.mu.Unlock()
	orphans := rs.orphans
	rs.orphans = nil
	for _, c := range orphans {
		b.place(rs, c)
	}
}

// place subscribes a carried channel on its shard, marked for a resync,
// unless it is no longer wanted. b.mu is held.
func (b *Broker) place(rs *runState, c carried) {
	switch c.kind {
	case kindProbe:
		c.release() // every shard subscribes its own
		return
	case kindApp:
		if _, ok := b.wanted[c.app]; !ok {
			c.release()
			return
		}
	}
	sh, err := b.shardFor(rs, c.name)
	if err != nil {
		rs.orphans = append(rs.orphans, c)
		return
	}
	rs.where[c.name] = sh
	if _, send := sh.add(c.name, c.app, c.kind, true, c.waiters); send {
		if err := sh.send(true, c.name); err != nil {
			sh.requestRestart()
		}
	}
}
