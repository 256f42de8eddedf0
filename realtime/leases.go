package realtime

import (
	"context"
	"time"
)

// Leases record which node holds each of a set of things, such as the
// media node of a voice room. A lease lives for TTL unless its holder
// refreshes it, so what a dead node held becomes free within the TTL.
// MemoryLeases serve one node; redisbroker.Leases serve a cluster.
//
// Every method is safe for concurrent use, may block on the network, and
// returns an error only when the backing store failed; such errors wrap no
// partyline kind, and callers report them as unavailable.
type Leases interface {
	// Claim makes holder the holder of key unless another holds it, and
	// returns the holder after the call. When dead is non-empty, a lease
	// held by dead is taken over as if it were absent; one held by anyone
	// else is left alone. A Claim by the holder itself refreshes the TTL.
	Claim(ctx context.Context, key, holder, dead string) (string, error)
	// Lookup returns the holder of key, or "" when none holds it.
	Lookup(ctx context.Context, key string) (string, error)
	// Refresh extends the TTL of the given keys held by holder and returns
	// those it no longer holds (expired, or taken over).
	Refresh(ctx context.Context, holder string, keys []string) (lost []string, err error)
	// Release removes the lease of key if holder holds it; otherwise it
	// does nothing. It is idempotent.
	Release(ctx context.Context, key, holder string) error
	// TTL is how long a lease lives unrefreshed.
	TTL() time.Duration
}
