package signaling

import (
	"context"
	"time"
)

// Placement records which node hosts each voice room: the media node that
// holds the room's PeerConnections. A record lives for a TTL unless the
// node that holds it refreshes it, so the rooms of a node that died become
// free within the TTL. The realtime backends' leases implement it, with
// room ids as keys and node ids as holders: realtime.MemoryLeases for one
// node, redisbroker.Leases for a cluster.
//
// Every method is safe for concurrent use, may block on the network, and
// returns an error only when the backing store failed; such errors do not
// wrap a partyline kind, and callers report them as unavailable.
type Placement interface {
	// Claim makes node the host of room unless another node holds it, and
	// returns the host after the call. When the current holder is dead
	// (non-empty), a record held by dead is taken over as if it were
	// absent; a record held by anyone else is left alone. Claim by the
	// holder itself refreshes the TTL.
	Claim(ctx context.Context, room, node, dead string) (host string, err error)
	// Lookup returns the host of room, or "" when none holds it.
	Lookup(ctx context.Context, room string) (host string, err error)
	// Refresh extends the TTL of the given rooms held by node and returns
	// those that node no longer holds (expired, or taken over).
	Refresh(ctx context.Context, node string, rooms []string) (lost []string, err error)
	// Release removes the record of room if node holds it; otherwise it
	// does nothing. It is idempotent.
	Release(ctx context.Context, room, node string) error
	// TTL is how long a record lives unrefreshed; the refresh interval
	// must be well under it.
	TTL() time.Duration
}
