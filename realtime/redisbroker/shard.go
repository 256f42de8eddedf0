package redisbroker

import (
	"strconv"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
)

// chanKind tells what a pub/sub channel carries.
type chanKind uint8

const (
	kindApp   chanKind = iota // a realtime channel's publications and events
	kindNode                  // this node's channel: SendNode messages and probes
	kindProbe                 // a channel that only carries this node's probes
)

// shard is one pub/sub connection and its receive loop: the only one for
// a single Redis, one per master in a cluster. Each pub/sub channel is on
// exactly one shard, and a shard's loop delivers one message at a time,
// so a channel's deliveries never overlap and keep Redis's order. A
// replaced shard's loop has returned before its channels are subscribed
// elsewhere.
//
// The shard counts the SUBSCRIBE and UNSUBSCRIBE commands it sends per
// channel and matches Redis's confirmations against them, which arrive in
// command order on the connection. That tells when a Subscribe is active,
// lets the loop drop what arrives for a channel being unsubscribed, and
// exposes confirmations nobody asked for: go-redis re-subscribing on a
// new connection by itself (the channel may have lost messages), or Redis
// dropping a sharded subscription whose slot moved (the shard must be
// replaced).
type shard struct {
	b       *Broker
	rs      *runState
	key     string // master address; "" for a single Redis
	ps      *goredis.PubSub
	probeCh string
	done    chan struct{} // closed when loop returns

	restartWanted atomic.Bool
	probeSent     atomic.Uint64 // token of the last probe sent
	probeSeen     atomic.Uint64 // token of the last probe received
	probeWaited   bool          // a probe round found the probe channel unconfirmed; only Run's goroutine

	mu         sync.Mutex
	closed     bool
	chans      map[string]*chanState // by pub/sub name
	resyncs    []string              // confirmed channels waiting for the Resync call
	resyncLeft int                   // channels still to confirm before the call
}

// chanState is one pub/sub channel on a shard. Guarded by shard.mu.
type chanState struct {
	app    string // the realtime channel, for kindApp
	kind   chanKind
	wanted bool // the last command sent is a subscribe
	// subSent and subAcked count the subscribe commands sent and
	// confirmed; unsubPending counts unsubscribes not yet confirmed.
	subSent, subAcked uint64
	unsubPending      int
	active            bool // Redis confirmed a subscribe after any unsubscribe
	resync            bool // report the channel to the Deliverer's Resync once confirmed
	waiters           []waiter
}

// waiter is a Subscribe (or a Run starting) waiting for a confirmation.
type waiter struct {
	target uint64 // closes ch once subAcked reaches it
	ch     chan struct{}
}

// carried is a channel taken off a closed shard, with the waiters that
// move to its next shard.
type carried struct {
	name, app string
	kind      chanKind
	waiters   []waiter
}

// release lets c's waiters go: their channel was dropped or Run stopped.
func (c carried) release() {
	for _, w := range c.waiters {
		close(w.ch)
	}
}

// closedChan is returned to a Subscribe that has nothing to wait for.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// add records a subscribe of name and returns a channel closed once Redis
// confirms it, with the carried waiters retargeted to that confirmation.
// send tells the caller to send the command: it is false when name is
// already subscribed or on its way. resync marks name for the Deliverer's Resync.
// The caller holds Broker.mu and sends the commands in the order of add
// and remove calls.
func (sh *shard) add(name, app string, kind chanKind, resync bool, carried []waiter) (wait <-chan struct{}, send bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	cs := sh.chans[name]
	if cs == nil {
		cs = &chanState{app: app, kind: kind}
		sh.chans[name] = cs
	}
	if !cs.wanted {
		cs.wanted, send = true, true
		cs.subSent++
		if resync && kind == kindApp && !cs.resync {
			cs.resync = true
			sh.resyncLeft++
		}
	}
	for _, w := range carried {
		w.target = cs.subSent
		cs.waiters = append(cs.waiters, w)
	}
	if cs.subAcked >= cs.subSent && cs.active {
		cs.releaseWaiters()
		return closedChan, send
	}
	w := waiter{target: cs.subSent, ch: make(chan struct{})}
	cs.waiters = append(cs.waiters, w)
	return w.ch, send
}

// remove records an unsubscribe of name and reports whether to send it.
// The caller holds Broker.mu.
func (sh *shard) remove(name string) (send bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	cs := sh.chans[name]
	if cs == nil || !cs.wanted {
		return false
	}
	cs.wanted = false
	cs.unsubPending++
	return true
}

// send writes a subscribe (or unsubscribe) command for names. A single
// Redis takes them in one command; a cluster takes one per channel, since
// one SSUBSCRIBE may only name channels of one slot. The caller holds
// Broker.mu.
func (sh *shard) send(subscribe bool, names ...string) error {
	ctx := sh.rs.ctx
	if sh.b.cluster == nil {
		if subscribe {
			return sh.ps.Subscribe(ctx, names...)
		}
		return sh.ps.Unsubscribe(ctx, names...)
	}
	for _, name := range names {
		var err error
		if subscribe {
			err = sh.ps.SSubscribe(ctx, name)
		} else {
			err = sh.ps.SUnsubscribe(ctx, name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// probeActive reports whether Redis has confirmed the probe channel.
func (sh *shard) probeActive() bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	cs := sh.chans[sh.probeCh]
	return cs != nil && cs.active
}

// requestRestart asks Run's goroutine to replace the shard.
func (sh *shard) requestRestart() {
	if sh.restartWanted.CompareAndSwap(false, true) {
		select {
		case sh.rs.wake <- struct{}{}:
		default:
		}
	}
}

// close closes the connection and waits for the receive loop to return.
// Closing may wait for a reconnect that go-redis has under way.
func (sh *shard) close() {
	sh.mu.Lock()
	sh.closed = true
	sh.mu.Unlock()
	_ = sh.ps.Close()
	<-sh.done
}

// take empties a closed shard: it returns the wanted channels with their
// waiters, and lets go the waiters of the others.
func (sh *shard) take() []carried {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var out []carried
	for name, cs := range sh.chans {
		c := carried{name: name, app: cs.app, kind: cs.kind, waiters: cs.waiters}
		cs.waiters = nil
		if cs.wanted {
			out = append(out, c)
		} else {
			c.release()
		}
	}
	clear(sh.chans)
	return out
}

// releaseWaiters lets go the waiters whose confirmation has arrived.
func (cs *chanState) releaseWaiters() {
	kept := cs.waiters[:0]
	for _, w := range cs.waiters {
		if w.target <= cs.subAcked {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	clear(cs.waiters[len(kept):])
	cs.waiters = kept
}

// loop receives until the connection is closed. Any error (a broken
// connection, or an error reply such as MOVED) asks for a restart and
// ends the loop: the shard's replacement subscribes everything again on a
// fresh connection, which is simpler to reason about than following
// go-redis's own reconnect.
func (sh *shard) loop() {
	defer close(sh.done)
	for {
		msg, err := sh.ps.Receive(sh.rs.ctx)
		if err != nil {
			sh.mu.Lock()
			closed := sh.closed
			sh.mu.Unlock()
			if !closed {
				sh.requestRestart()
			}
			return
		}
		switch m := msg.(type) {
		case *goredis.Message:
			sh.message(m)
		case *goredis.Subscription:
			sh.confirm(m)
		}
	}
}

// confirm handles a subscribe or unsubscribe confirmation.
func (sh *shard) confirm(m *goredis.Subscription) {
	var resync []string
	sh.mu.Lock()
	cs := sh.chans[m.Channel]
	if cs == nil {
		sh.mu.Unlock()
		return
	}
	switch m.Kind {
	case "subscribe", "ssubscribe":
		if cs.subAcked < cs.subSent {
			cs.subAcked++
			cs.active = true
			cs.releaseWaiters()
			if cs.resync && cs.subAcked == cs.subSent {
				cs.resync = false
				sh.resyncs = append(sh.resyncs, cs.app)
				if sh.resyncLeft--; sh.resyncLeft == 0 {
					resync, sh.resyncs = sh.resyncs, nil
				}
			}
		} else {
			// Not ours: go-redis re-subscribed on a new connection, so
			// messages may have been lost in between.
			cs.active = true
			if cs.kind == kindApp && cs.wanted {
				resync = []string{cs.app}
			}
		}
	case "unsubscribe", "sunsubscribe":
		if cs.unsubPending > 0 {
			cs.unsubPending--
			cs.active = false
			if !cs.wanted && cs.unsubPending == 0 && cs.subAcked == cs.subSent {
				delete(sh.chans, m.Channel)
			}
		} else if cs.wanted {
			// Not ours: Redis dropped the subscription, as it does when a
			// slot moves to another master.
			cs.active = false
			sh.requestRestart()
		}
	}
	sh.mu.Unlock()
	if len(resync) > 0 {
		sh.rs.d.Resync(resync)
	}
}

// message hands a message to the Deliverer, unless its channel is being
// unsubscribed.
func (sh *shard) message(m *goredis.Message) {
	sh.mu.Lock()
	cs := sh.chans[m.Channel]
	ok := cs != nil && cs.active && cs.unsubPending == 0
	var kind chanKind
	var app string
	if ok {
		kind, app = cs.kind, cs.app
	}
	sh.mu.Unlock()
	if !ok {
		return
	}
	if kind == kindApp {
		p, err := decodePublication(m.Payload)
		if err != nil {
			return // not ours to deliver; the receivers' offsets catch a lost publication
		}
		sh.rs.d.Deliver(app, p)
		return
	}
	if m.Payload == "" {
		return
	}
	switch m.Payload[0] {
	case probeMessage:
		if token, err := strconv.ParseUint(m.Payload[1:], 10, 64); err == nil {
			sh.probeSeen.Store(token)
		}
	case nodeMessage:
		if kind == kindNode {
			sh.rs.d.DeliverNode([]byte(m.Payload[1:]))
		}
	}
}
