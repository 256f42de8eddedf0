package signaling

import (
	"context"
	"sync"
	"time"
)

var _ Placement = (*MemoryPlacement)(nil)

// DefaultPlacementTTL is how long a placement record lives unrefreshed
// when an implementation's TTL option is zero.
const DefaultPlacementTTL = 20 * time.Second

// MemoryPlacementOptions configures a MemoryPlacement.
type MemoryPlacementOptions struct {
	// TTL is how long a record lives unless refreshed. Zero means 20
	// seconds.
	TTL time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// MemoryPlacement is a Placement in process memory. It is correct for one
// node, where every room is on that node, and it serves the tests.
type MemoryPlacement struct {
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	rooms map[string]memoryRecord
}

type memoryRecord struct {
	node    string
	expires time.Time
}

// NewMemoryPlacement returns an empty MemoryPlacement.
func NewMemoryPlacement(opts MemoryPlacementOptions) *MemoryPlacement {
	if opts.TTL <= 0 {
		opts.TTL = DefaultPlacementTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &MemoryPlacement{ttl: opts.TTL, now: opts.Now, rooms: map[string]memoryRecord{}}
}

// TTL returns how long a record lives unrefreshed.
func (p *MemoryPlacement) TTL() time.Duration { return p.ttl }

// get returns the live record of room; the caller holds mu.
func (p *MemoryPlacement) get(room string, now time.Time) (memoryRecord, bool) {
	r, ok := p.rooms[room]
	if ok && !now.Before(r.expires) {
		delete(p.rooms, room)
		return memoryRecord{}, false
	}
	return r, ok
}

// Claim implements Placement.
func (p *MemoryPlacement) Claim(ctx context.Context, room, node, dead string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	r, ok := p.get(room, now)
	if !ok || r.node == node || (dead != "" && r.node == dead) {
		p.rooms[room] = memoryRecord{node: node, expires: now.Add(p.ttl)}
		return node, nil
	}
	return r.node, nil
}

// Lookup implements Placement.
func (p *MemoryPlacement) Lookup(ctx context.Context, room string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, _ := p.get(room, p.now())
	return r.node, nil
}

// Refresh implements Placement.
func (p *MemoryPlacement) Refresh(ctx context.Context, node string, rooms []string) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	var lost []string
	for _, room := range rooms {
		r, ok := p.get(room, now)
		if !ok || r.node != node {
			lost = append(lost, room)
			continue
		}
		r.expires = now.Add(p.ttl)
		p.rooms[room] = r
	}
	return lost, nil
}

// Release implements Placement.
func (p *MemoryPlacement) Release(ctx context.Context, room, node string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.get(room, p.now()); ok && r.node == node {
		delete(p.rooms, room)
	}
	return nil
}
