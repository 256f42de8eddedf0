// Package redisbroker implements the realtime backends on Redis, so gateway
// nodes scale out: a Broker (pub/sub between nodes, node-to-node messages,
// the registry of live nodes), a Stream (per-channel offsets and bounded
// history) and a Presence (per-channel members across nodes, user
// statuses and their offline schedule). It runs on one Redis or on a Redis
// Cluster (7.0 or later) through one go-redis v9 UniversalClient, which
// the caller owns and closes. The realtimetest suites run against it.
//
// Every name of one realtime channel carries the same hash tag, so in a
// cluster its keys and its pub/sub channel share a slot and one Lua script
// can change them all and publish. keys.go names the keys (docs/operations.md
// lists them for operators); scripts.go holds the scripts. Every change is
// one script, which Redis runs with nothing in between: that is what makes
// offsets gapless and ordered per channel, a lost history a new epoch
// (never a silent gap), and first/last-for-user exact across nodes. Scripts
// read Redis's clock, so expiries do not depend on the nodes' clocks. In a
// cluster the Broker uses sharded pub/sub, one PubSub per master.
//
// # Delivery
//
// Subscribe returns once Redis confirmed the subscription, so a publication
// made after it is delivered. A channel lives on one pub/sub connection,
// whose receive loop delivers one message at a time in Redis's order; the
// Deliverer must not block. Delivery is at most once, as Redis pub/sub is:
// receivers catch gaps by offsets and re-read the Stream. After a connection
// is replaced, the receiver is told which channels may have lost
// publications, so it re-reads them even if no later publication shows it.
//
// While Run runs, publishes that arrive while others are in flight are
// queued and sent as one pipeline (on one Redis, one script call per
// pipeline); each caller still gets its own position or error. A lone
// publish, or any publish without Run, goes straight to Redis. A publish
// whose reply was lost may or may not have happened; go-redis retries such
// a command unless the client's MaxRetries is -1, and a retry appends the
// payload again at the next offset.
//
// # Goroutines and locks
//
// Constructors start none. Broker.Run is a supervisor on the caller's
// goroutine: it starts one receive loop per pub/sub connection (one for a
// single Redis, one per master in a cluster) and the publisher goroutines.
// Every ProbeInterval it publishes a probe through each connection, renews
// the node's registration, and replaces a connection whose probe did not
// come back, whose loop failed, or that lost a sharded subscription,
// backing off up to 2 s; it returns only when its context ends. Before it
// returns it stops the publishers (sending what is queued), closes the
// connections, waits for every loop and removes the node from the
// registry, so the Deliverer is never called after Run returns. Presence.Run renews
// the entries joined through that Presence every PresenceTTL/3 on the
// caller's goroutine and starts nothing. go-redis's own goroutines belong
// to the client.
//
// Lock order: Broker.mu, then a shard's mu. Broker.mu is also held while
// subscribe commands are written. The publisher's and the Presence's
// mutexes are never held with another.
package redisbroker
