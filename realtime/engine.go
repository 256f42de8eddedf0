package realtime

import (
	"context"
	"errors"
	"time"

	"github.com/partyline/partyline/realtime/wire"
)

// Position is a place in a channel's offset stream: an epoch and the offset
// of the last publication within it.
type Position = wire.Position

// Publication is one message travelling from the broker to a node.
type Publication struct {
	// Position is the publication's place in its channel's stream. An
	// Offset of 0 marks an ephemeral event, which is not in the stream.
	Position
	// Payload is, for a stream publication, the payload fragment that
	// Stream.Publish was given (see wire.AppendPayload); for an ephemeral
	// event it is the complete encoded event message. Receivers must not
	// modify it.
	Payload []byte
}

// ErrUnrecoverable is returned by Stream.Since when the publications after
// a position can no longer be replayed: the epoch changed, or history was
// trimmed past it.
var ErrUnrecoverable = errors.New("realtime: history unrecoverable")

// Stream assigns offsets and keeps bounded history per channel.
//
// A Stream is bound to the Broker it was built with: Publish appends and
// hands the publication to that broker for fan-out in one atomic step, so
// offsets are gapless and ordered per channel, and every node receives a
// channel's publications in offset order (in Redis: one Lua script appends
// to the stream and publishes). Methods are safe for concurrent use.
type Stream interface {
	// Publish appends payload to ch's stream and fans it out to every node
	// subscribed to ch. It returns the publication's position. It blocks
	// only for the append; delivery to local subscribers never blocks it.
	// The caller may reuse payload once Publish returns.
	Publish(ctx context.Context, ch string, payload []byte) (Position, error)
	// Since returns, in order, every publication of ch after from, and the
	// current position. It returns at most the retained history (the
	// history size), so it needs no limit. When from is in another epoch, is ahead of the
	// stream, or lies before the retained history, it returns
	// ErrUnrecoverable together with the current position.
	Since(ctx context.Context, ch string, from Position) (pubs []Publication, current Position, err error)
	// Current returns ch's current position. A channel that was never
	// published to gets its epoch now, at offset 0, so the next publication
	// is offset 1 of that same epoch.
	Current(ctx context.Context, ch string) (Position, error)
}

// Deliverer receives what a Broker brings in. Its methods must not block,
// and must not call back into the Broker or the Stream: they run on the
// broker's receive path, in memory even under the channel's lock.
type Deliverer interface {
	// Deliver hands over a publication on ch. Publications of one channel
	// arrive one at a time, in the order the broker received them.
	Deliver(ch string, p Publication)
	// DeliverNode hands over a message sent to this node with SendNode.
	DeliverNode(msg []byte)
	// Resync tells the receiver that deliveries on these channels may have
	// been lost (a broker restarted a stuck or dropped subscription), so
	// it re-reads their streams. The Redis broker calls it; the memory
	// broker loses nothing and never does.
	Resync(channels []string)
}

// Broker moves publications between nodes. Delivery is at most once: a
// node that misses a publication notices the offset gap and re-reads the
// Stream. Methods are safe for concurrent use.
type Broker interface {
	// Subscribe makes this node receive ch's publications. It returns once
	// the subscription is active, so a publication made after it returns is
	// delivered. It is idempotent; the Hub counts local subscribers and
	// calls it once per channel.
	Subscribe(ctx context.Context, ch string) error
	// Unsubscribe stops ch's deliveries to this node. It is idempotent.
	Unsubscribe(ctx context.Context, ch string) error
	// PublishEvent fans out an ephemeral event, which is not in the stream:
	// p.Offset is 0 and p.Payload the complete encoded message. The broker
	// may hand p.Payload to local deliveries as is, so the caller must not
	// modify it afterwards.
	PublishEvent(ctx context.Context, ch string, p Publication) error
	// SendNode sends msg to the node with the given id, at most once. An
	// unknown node is an error wrapping partyline.ErrNotFound. The caller
	// must not modify msg afterwards.
	SendNode(ctx context.Context, node string, msg []byte) error
	// Nodes lists the nodes alive now, this one included. A cluster-wide
	// operation such as the server API's disconnect asks every listed
	// node. A single-node broker lists its own node.
	Nodes(ctx context.Context) ([]string, error)
	// Run delivers to d until ctx is done, then returns nil, or returns an
	// error when the broker fails for good. Deliveries happen only while
	// Run runs.
	Run(ctx context.Context, d Deliverer) error
}

// Member is one connection's entry in a channel's presence.
type Member struct {
	ConnID string `json:"conn"`
	User   string `json:"user"`
	Node   string `json:"node"`
}

// Status is a user's status, as published on status:<user>.
type Status struct {
	Status string `json:"status"`
	Game   string `json:"game,omitempty"`
	Text   string `json:"text,omitempty"`
	TS     int64  `json:"ts"` // when it was set, in Unix milliseconds
}

// Presence tracks who is subscribed to each channel, per connection and
// across nodes, and each user's status. Methods are safe for concurrent use.
type Presence interface {
	// Join adds m to ch. firstForUser is true when m is the user's first
	// connection in ch on any node. Joining twice with one ConnID is a no-op
	// that returns false.
	Join(ctx context.Context, ch string, m Member) (firstForUser bool, err error)
	// Leave removes m from ch. lastForUser is true when it was the user's
	// last connection in ch on any node. Leaving when absent returns false.
	Leave(ctx context.Context, ch string, m Member) (lastForUser bool, err error)
	// Members lists ch's entries, one per connection, in no set order.
	Members(ctx context.Context, ch string) ([]Member, error)
	// SetStatus stores the user's latest status.
	SetStatus(ctx context.Context, user string, st Status) error
	// GetStatus returns the user's latest status; ok is false when none was set.
	GetStatus(ctx context.Context, user string) (st Status, ok bool, err error)

	// ScheduleOffline records that the user's last connection anywhere is
	// gone, so their status is due to turn offline after delay. It replaces
	// the user's earlier record, if any. The record is shared by every node
	// of the Presence and outlives the node that made it: whichever node
	// claims it checks that the user is still gone and publishes offline.
	ScheduleOffline(ctx context.Context, user string, delay time.Duration) error
	// ClaimOffline takes the user's record when it is due. Of all the
	// callers on every node, exactly one gets claimed true per record. When
	// the record is there but not due, claimed is false and wait is how long
	// until it is due; when there is none (never made, or claimed already),
	// both are zero.
	ClaimOffline(ctx context.Context, user string) (claimed bool, wait time.Duration, err error)
	// ClaimDueOffline takes the records that are due and returns their
	// users; each record goes to exactly one caller on any node, as with
	// ClaimOffline. An implementation may take them in batches, leaving
	// the rest to the next call. Every Node calls it periodically, so the
	// record of a node that stopped is still claimed.
	ClaimDueOffline(ctx context.Context) ([]string, error)

	// JoinAtMost is Join, except that when m.User has most connections in
	// ch already (on any node) it adds nothing and returns an error
	// wrapping partyline.ErrLimitExceeded; the count and the join are one
	// atomic step, so joins on several nodes at once never pass the cap.
	// most must be at least 1. The Node caps a user's connections with it.
	JoinAtMost(ctx context.Context, ch string, m Member, most int) (firstForUser bool, err error)
	// Reap returns the departures found since the last call on any node
	// (entries that expired because their node stopped refreshing them);
	// each is returned once, to one caller. The Node calls it every
	// ReapInterval and announces each departure as a Leave would have. A
	// Presence of one node finds none.
	Reap(ctx context.Context) ([]Departure, error)
	// Rejoined returns, as channel and user, the entries a renewal put
	// back since the last call because they were gone while their
	// connection was still open (they expired while the store was slow,
	// or it lost them) and which were their user's first in the channel
	// again. A reaper may have announced them as gone meanwhile, so the
	// Node announces them back every ReapInterval. A Presence that never
	// loses entries returns none.
	Rejoined() []Departure
}

// Departure is a user whose last connection in a channel left presence
// without a Leave, because the node holding it stopped (it died).
type Departure struct {
	Channel string
	User    string
}
