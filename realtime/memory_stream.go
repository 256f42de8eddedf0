package realtime

import (
	"bytes"
	"context"
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryStreamOptions configures a MemoryStream.
type MemoryStreamOptions struct {
	// HistorySize is how many publications each channel keeps for
	// recovery; older ones are dropped. Zero or negative means 1000.
	HistorySize int
	// HistoryTTL is how long a publication is kept for recovery. It is also
	// how long a channel must go unused (no Publish, Since or Current) and
	// unsubscribed before the stream forgets it; a forgotten channel comes
	// back under a new epoch. Zero or negative means 10 minutes.
	HistoryTTL time.Duration
	// Now tells the time; tests set it to move the clock by hand. Nil
	// means time.Now.
	Now func() time.Time
}

// MemoryStream is the in-process Stream, bound to a MemoryBroker: Publish
// appends and delivers through the broker while it holds the channel's
// lock, so one channel's publications reach the Deliverer in offset order
// even with concurrent publishers. Like the broker, it serves one node,
// and its history is lost with the process.
//
// Each channel has an epoch, drawn at random when the channel is first
// used, and a ring of at most HistorySize publications younger than
// HistoryTTL. Channels live in a sharded map and each has its own mutex,
// so publishers to different channels do not contend. Channels unused for
// HistoryTTL and not subscribed on the broker are forgotten during later
// calls that touch their shard; no goroutine sweeps them.
//
// Lock order: shard, then channel, then the broker's locks. Publish holds
// the channel's lock while the broker calls the Deliverer, which therefore
// must not publish to the same stream.
//
// The zero value is not usable; call NewMemoryStream. Methods are safe for
// concurrent use and never block on anything but these locks.
type MemoryStream struct {
	broker     *MemoryBroker
	size       int
	ttl        time.Duration
	now        func() time.Time
	base       time.Time     // stream times are durations since base
	sweepEvery time.Duration // how often a shard looks for quiet channels
	seed       maphash.Seed
	shards     [memoryShards]streamShard
}

// streamShard is one part of the channel map.
type streamShard struct {
	mu       sync.RWMutex // guards channels
	channels map[string]*streamChannel
	// nextSweep is the stream time at or after which the shard is next
	// swept for quiet channels.
	nextSweep atomic.Int64
}

// streamChannel is one channel's offset stream. Every field is guarded by
// mu.
type streamChannel struct {
	mu    sync.Mutex
	epoch string
	last  uint64 // offset of the latest publication; 0 before the first
	// ring holds the retained publications, the oldest at head: n of them,
	// with offsets last-n+1 through last. It grows on demand up to the
	// history size and is released when it empties.
	ring    []retainedPub
	head, n int
	// used is the stream time the channel was last used at. It never goes
	// back, so the append times in ring never do either.
	used time.Duration
	// gone is set when a sweep removed the channel from its shard; whoever
	// finds it set looks the channel up again.
	gone bool
}

// retainedPub is one publication kept for recovery.
type retainedPub struct {
	at      time.Duration // stream time of the append
	payload []byte
}

var _ Stream = (*MemoryStream)(nil)

// NewMemoryStream returns an empty MemoryStream that fans publications out
// through b. A nil b makes a stream that only keeps history. It starts no
// goroutines.
func NewMemoryStream(b *MemoryBroker, opts MemoryStreamOptions) *MemoryStream {
	if opts.HistorySize <= 0 {
		opts.HistorySize = 1000
	}
	if opts.HistoryTTL <= 0 {
		opts.HistoryTTL = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &MemoryStream{
		broker:     b,
		size:       opts.HistorySize,
		ttl:        opts.HistoryTTL,
		now:        opts.Now,
		base:       opts.Now(),
		sweepEvery: opts.HistoryTTL,
		seed:       maphash.MakeSeed(),
	}
	for i := range s.shards {
		s.shards[i].channels = make(map[string]*streamChannel)
	}
	return s
}

// Publish appends a copy of payload to ch's stream, gives it the next
// offset, and hands it to the broker's Deliverer (if the broker runs and
// is subscribed to ch) before it returns. The caller may reuse payload
// afterwards. It returns ctx's error if ctx is already done, and no other.
func (s *MemoryStream) Publish(ctx context.Context, ch string, payload []byte) (Position, error) {
	if err := ctx.Err(); err != nil {
		return Position{}, err
	}
	c, now := s.lock(ch)
	c.trim(now - s.ttl)
	data := bytes.Clone(payload)
	c.last++
	c.push(retainedPub{at: now, payload: data}, s.size)
	pos := Position{Epoch: c.epoch, Offset: c.last}
	if s.broker != nil {
		s.broker.deliver(ch, Publication{Position: pos, Payload: data})
	}
	c.mu.Unlock()
	return pos, nil
}

// Since returns the retained publications of ch after from, oldest first,
// and ch's current position. It returns ErrUnrecoverable with the current
// position when from has another epoch, is ahead of the stream, or when a
// publication after it was trimmed by count or by age. The payloads are
// shared with the stream: callers must not modify them. A channel never
// used before is created, so its current position is offset 0 of a new
// epoch. It returns ctx's error if ctx is already done.
func (s *MemoryStream) Since(ctx context.Context, ch string, from Position) ([]Publication, Position, error) {
	if err := ctx.Err(); err != nil {
		return nil, Position{}, err
	}
	c, now := s.lock(ch)
	defer c.mu.Unlock()
	c.trim(now - s.ttl)
	cur := Position{Epoch: c.epoch, Offset: c.last}
	if from.Epoch != c.epoch || from.Offset > c.last || c.last-from.Offset > uint64(c.n) {
		return nil, cur, ErrUnrecoverable
	}
	k := int(c.last - from.Offset)
	if k == 0 {
		return nil, cur, nil
	}
	pubs := make([]Publication, k)
	first := c.head + c.n - k
	for i := range pubs {
		pubs[i] = Publication{
			Position: Position{Epoch: c.epoch, Offset: from.Offset + uint64(i) + 1},
			Payload:  c.ring[(first+i)%len(c.ring)].payload,
		}
	}
	return pubs, cur, nil
}

// Current returns ch's current position, creating the channel at offset 0
// of a new epoch if it is not known. It returns ctx's error if ctx is
// already done.
func (s *MemoryStream) Current(ctx context.Context, ch string) (Position, error) {
	if err := ctx.Err(); err != nil {
		return Position{}, err
	}
	c, _ := s.lock(ch)
	pos := Position{Epoch: c.epoch, Offset: c.last}
	c.mu.Unlock()
	return pos, nil
}

func (s *MemoryStream) shard(ch string) *streamShard {
	return &s.shards[maphash.String(s.seed, ch)&(memoryShards-1)]
}

// lock finds or creates ch, locks it, marks it used, and returns it with
// the stream time of the use. The caller unlocks c.mu.
func (s *MemoryStream) lock(ch string) (c *streamChannel, now time.Duration) {
	now = s.now().Sub(s.base)
	sh := s.shard(ch)
	if now >= time.Duration(sh.nextSweep.Load()) {
		s.sweep(sh, now)
	}
	for {
		sh.mu.RLock()
		c = sh.channels[ch]
		sh.mu.RUnlock()
		if c == nil {
			sh.mu.Lock()
			if c = sh.channels[ch]; c == nil {
				c = &streamChannel{epoch: NewEpoch(8), used: now}
				sh.channels[ch] = c
			}
			sh.mu.Unlock()
		}
		c.mu.Lock()
		if !c.gone {
			break
		}
		c.mu.Unlock() // swept between the lookup and the lock
	}
	if now > c.used {
		c.used = now
	}
	return c, c.used
}

// sweep forgets the shard's channels that have gone unused for the TTL,
// hold no history and are not subscribed on the broker, unless another
// goroutine has just swept the shard. Channels busy right now are skipped,
// since they are in use.
func (s *MemoryStream) sweep(sh *streamShard, now time.Duration) {
	next := sh.nextSweep.Load()
	if now < time.Duration(next) || !sh.nextSweep.CompareAndSwap(next, int64(now+s.sweepEvery)) {
		return
	}
	cutoff := now - s.ttl
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for name, c := range sh.channels {
		if !c.mu.TryLock() {
			continue
		}
		if c.used <= cutoff {
			c.trim(cutoff)
			if c.n == 0 && (s.broker == nil || !s.broker.subscribed(name)) {
				c.gone = true
				delete(sh.channels, name)
			}
		}
		c.mu.Unlock()
	}
}

// trim drops the publications appended at or before cutoff.
func (c *streamChannel) trim(cutoff time.Duration) {
	for c.n > 0 && c.ring[c.head].at <= cutoff {
		c.ring[c.head] = retainedPub{} // let the payload be collected
		c.head = (c.head + 1) % len(c.ring)
		c.n--
	}
	if c.n == 0 && c.ring != nil {
		c.ring, c.head = nil, 0
	}
}

// push appends r, dropping the oldest publication when size are retained.
func (c *streamChannel) push(r retainedPub, size int) {
	if c.n == len(c.ring) {
		if c.n >= size {
			c.ring[c.head] = r
			c.head = (c.head + 1) % len(c.ring)
			return
		}
		grown := make([]retainedPub, min(max(2*len(c.ring), 8), size))
		for i := range c.n {
			grown[i] = c.ring[(c.head+i)%len(c.ring)]
		}
		c.ring, c.head = grown, 0
	}
	c.ring[(c.head+c.n)%len(c.ring)] = r
	c.n++
}

// epochAlphabet spells epochs: lowercase base32 without i, l, o and u,
// which are easy to misread.
const epochAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// NewEpoch returns a new random epoch of n characters of 5 bits each, for
// any Stream; n is at most 12. The memory stream's are 8 long (40 bits).
func NewEpoch(n int) string {
	var b [12]byte
	r := rand.Uint64()
	for i := range n {
		b[i] = epochAlphabet[r&31]
		r >>= 5
	}
	return string(b[:n])
}
