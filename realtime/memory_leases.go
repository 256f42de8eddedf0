package realtime

import (
	"context"
	"sync"
	"time"
)

var _ Leases = (*MemoryLeases)(nil)

// DefaultLeaseTTL is how long a lease lives unrenewed when an
// implementation's TTL option is zero.
const DefaultLeaseTTL = 20 * time.Second

// MemoryLeasesOptions configures MemoryLeases.
type MemoryLeasesOptions struct {
	// TTL is how long a lease lives unless refreshed. Zero means 20
	// seconds.
	TTL time.Duration
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// MemoryLeases are Leases in process memory. They are correct for one
// node, which holds everything, and serve the tests.
type MemoryLeases struct {
	ttl time.Duration
	now func() time.Time

	mu     sync.Mutex
	leases map[string]memoryLease
}

type memoryLease struct {
	holder  string
	expires time.Time
}

// NewMemoryLeases returns empty MemoryLeases.
func NewMemoryLeases(opts MemoryLeasesOptions) *MemoryLeases {
	if opts.TTL <= 0 {
		opts.TTL = DefaultLeaseTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &MemoryLeases{ttl: opts.TTL, now: opts.Now, leases: map[string]memoryLease{}}
}

// TTL returns how long a lease lives unrefreshed.
func (p *MemoryLeases) TTL() time.Duration { return p.ttl }

// get returns the live lease of key; the caller holds mu.
func (p *MemoryLeases) get(key string, now time.Time) (memoryLease, bool) {
	r, ok := p.leases[key]
	if ok && !now.Before(r.expires) {
		delete(p.leases, key)
		return memoryLease{}, false
	}
	return r, ok
}

// Claim implements Leases.
func (p *MemoryLeases) Claim(ctx context.Context, key, holder, dead string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	r, ok := p.get(key, now)
	if !ok || r.holder == holder || (dead != "" && r.holder == dead) {
		p.leases[key] = memoryLease{holder: holder, expires: now.Add(p.ttl)}
		return holder, nil
	}
	return r.holder, nil
}

// Lookup implements Leases.
func (p *MemoryLeases) Lookup(ctx context.Context, key string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, _ := p.get(key, p.now())
	return r.holder, nil
}

// Refresh implements Leases.
func (p *MemoryLeases) Refresh(ctx context.Context, holder string, keys []string) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	var lost []string
	for _, key := range keys {
		r, ok := p.get(key, now)
		if !ok || r.holder != holder {
			lost = append(lost, key)
			continue
		}
		r.expires = now.Add(p.ttl)
		p.leases[key] = r
	}
	return lost, nil
}

// Release implements Leases.
func (p *MemoryLeases) Release(ctx context.Context, key, holder string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, ok := p.get(key, p.now()); ok && r.holder == holder {
		delete(p.leases, key)
	}
	return nil
}
