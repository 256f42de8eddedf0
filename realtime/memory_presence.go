package realtime

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/partyline/partyline"
)

// MemoryPresence is the in-process Presence. It sees only the Joins and
// Leaves made on it, so it spans nodes only when they share it, as they do
// in tests; a real multi-node cluster uses realtime/redisbroker. Entries have no
// TTL: a connection stays until it leaves.
//
// Channels and statuses live in sharded maps, so callers on different
// channels or users rarely contend. The zero value is not usable; call
// NewMemoryPresence. Methods are safe for concurrent use, never block on
// anything but short critical sections, and fail only when ctx is already
// done. Offline records (ScheduleOffline) live in the same shards as the
// statuses and are lost with the process, as everything else here is.
type MemoryPresence struct {
	seed   maphash.Seed
	shards [memoryShards]presenceShard
}

// presenceShard holds the channels, and the statuses and offline records
// of the users, whose names hash to it. A channel and a user with the same
// name share a shard, which is harmless.
type presenceShard struct {
	mu       sync.RWMutex // guards channels, statuses and offline
	channels map[string]*presenceChannel
	statuses map[string]Status
	offline  map[string]time.Time // user -> when their offline is due
}

// presenceChannel is one channel's presence. An empty channel is removed.
type presenceChannel struct {
	conns map[string]Member // by ConnID
	users map[string]int    // connections per user
}

var _ Presence = (*MemoryPresence)(nil)

// NewMemoryPresence returns an empty MemoryPresence. It starts no
// goroutines.
func NewMemoryPresence() *MemoryPresence {
	p := &MemoryPresence{seed: maphash.MakeSeed()}
	for i := range p.shards {
		p.shards[i].channels = make(map[string]*presenceChannel)
		p.shards[i].statuses = make(map[string]Status)
		p.shards[i].offline = make(map[string]time.Time)
	}
	return p
}

func (p *MemoryPresence) shard(key string) *presenceShard {
	return &p.shards[maphash.String(p.seed, key)&(memoryShards-1)]
}

var _ Presence = (*MemoryPresence)(nil)

// Join adds m to ch. firstForUser is true when no other connection of
// m.User is in ch. A second Join with the same ConnID changes nothing,
// even if the other fields differ, and returns false.
func (p *MemoryPresence) Join(ctx context.Context, ch string, m Member) (firstForUser bool, err error) {
	return p.join(ctx, ch, m, 0)
}

// JoinAtMost is Join, except that it adds nothing and returns an error
// wrapping partyline.ErrLimitExceeded when m.User has most connections in
// ch already.
func (p *MemoryPresence) JoinAtMost(ctx context.Context, ch string, m Member, most int) (firstForUser bool, err error) {
	if most < 1 {
		return false, partyline.Errorf(partyline.ErrInvalid, "a cap of %d connections", most)
	}
	return p.join(ctx, ch, m, most)
}

func (p *MemoryPresence) join(ctx context.Context, ch string, m Member, most int) (firstForUser bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	sh := p.shard(ch)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	pc := sh.channels[ch]
	if pc == nil {
		pc = &presenceChannel{conns: make(map[string]Member), users: make(map[string]int)}
		sh.channels[ch] = pc
	}
	if _, ok := pc.conns[m.ConnID]; ok {
		return false, nil
	}
	if most > 0 && pc.users[m.User] >= most {
		return false, partyline.Errorf(partyline.ErrLimitExceeded, "%s has %d connections already", m.User, most)
	}
	pc.conns[m.ConnID] = m
	pc.users[m.User]++
	return pc.users[m.User] == 1, nil
}

// Leave removes the connection m.ConnID from ch; the other fields of m
// are not consulted. lastForUser is true when it was the last connection
// of its user in ch. Leaving a connection that is not in ch returns false.
func (p *MemoryPresence) Leave(ctx context.Context, ch string, m Member) (lastForUser bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	sh := p.shard(ch)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	pc := sh.channels[ch]
	if pc == nil {
		return false, nil
	}
	joined, ok := pc.conns[m.ConnID]
	if !ok {
		return false, nil
	}
	delete(pc.conns, m.ConnID)
	pc.users[joined.User]--
	if pc.users[joined.User] > 0 {
		return false, nil
	}
	delete(pc.users, joined.User)
	if len(pc.conns) == 0 {
		delete(sh.channels, ch)
	}
	return true, nil
}

// Members returns a new slice with one entry per connection in ch, in no
// set order; it is empty (nil) when nobody is in ch.
func (p *MemoryPresence) Members(ctx context.Context, ch string) ([]Member, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sh := p.shard(ch)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	pc := sh.channels[ch]
	if pc == nil {
		return nil, nil
	}
	ms := make([]Member, 0, len(pc.conns))
	for _, m := range pc.conns {
		ms = append(ms, m)
	}
	return ms, nil
}

// SetStatus stores st as the user's status, replacing any earlier one.
func (p *MemoryPresence) SetStatus(ctx context.Context, user string, st Status) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := p.shard(user)
	sh.mu.Lock()
	sh.statuses[user] = st
	sh.mu.Unlock()
	return nil
}

// GetStatus returns the user's latest status; ok is false when none was
// set.
func (p *MemoryPresence) GetStatus(ctx context.Context, user string) (st Status, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return Status{}, false, err
	}
	sh := p.shard(user)
	sh.mu.RLock()
	st, ok = sh.statuses[user]
	sh.mu.RUnlock()
	return st, ok, nil
}

// ScheduleOffline records that user's offline is due after delay,
// replacing an earlier record of user's.
func (p *MemoryPresence) ScheduleOffline(ctx context.Context, user string, delay time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	sh := p.shard(user)
	sh.mu.Lock()
	sh.offline[user] = time.Now().Add(delay)
	sh.mu.Unlock()
	return nil
}

// ClaimOffline takes user's offline record when it is due: claimed is
// true for one caller per record. A record not yet due is left, and wait
// says how long until it is due.
func (p *MemoryPresence) ClaimOffline(ctx context.Context, user string) (claimed bool, wait time.Duration, err error) {
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	sh := p.shard(user)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	due, ok := sh.offline[user]
	if !ok {
		return false, 0, nil
	}
	if wait := time.Until(due); wait > 0 {
		return false, wait, nil
	}
	delete(sh.offline, user)
	return true, 0, nil
}

// ClaimDueOffline takes every offline record that is due and returns its
// user, in no set order.
func (p *MemoryPresence) ClaimDueOffline(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := time.Now()
	var users []string
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		for user, due := range sh.offline {
			if !due.After(now) {
				delete(sh.offline, user)
				users = append(users, user)
			}
		}
		sh.mu.Unlock()
	}
	return users, nil
}

// Reap finds nothing: memory presence lives and dies with its one node.
func (p *MemoryPresence) Reap(ctx context.Context) ([]Departure, error) { return nil, nil }

// Rejoined returns nothing: memory presence never loses an entry.
func (p *MemoryPresence) Rejoined() []Departure { return nil }
