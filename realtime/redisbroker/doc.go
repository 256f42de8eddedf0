// Package redis implements the realtime backends on Redis, so gateway
// nodes scale out: a Broker (pub/sub between nodes, node-to-node
// messages, a registry of live nodes), a Stream (per-channel offsets and
// bounded history, appended and published in one Lua script) and a
// Presence (per-channel members across nodes, and user statuses). It runs
// on one Redis or on a Redis Cluster (7.0 or later), through one
// go-redis v9 UniversalClient.
//
// # Who calls it
//
// cmd/partyline, in cluster mode, builds the client from
// PARTYLINE_REDIS_URL and calls New with the node id; it hands the
// Engine's Broker, Stream and Presence to realtime.Node, whose Run runs
// Broker.Run, and runs Presence.Run in its errgroup next to it. The server
// API fans a disconnect out to every node with Broker.Nodes and
// Broker.SendNode. The realtimetest suites run against this package, on
// one Redis and on a local three-master cluster.
//
// # Keys and channels
//
// With prefix P (Options.Prefix, "pl:" by default) and a channel ch:
//
//	P{ch}        pub/sub channel of ch's publications and events
//	P{ch}:m      hash: e = epoch, o = last offset, t = last append time (ms)
//	P{ch}:s      stream: entry id "<offset>-1", fields d = payload, t = append time (ms)
//	P{ch}:p      sorted set: connection id -> expiry (Unix ms, Redis time)
//	P{ch}:pc     hash: connection id -> "<len(user)>:<user><node>"
//	P{ch}:pu     hash: user -> live connections in ch
//	P{node:<id>} pub/sub channel of node <id>: SendNode messages and its probes
//	P{node:<id>:probe:<n>}  extra probe channels, one per other cluster master
//	P{nodes}     sorted set: node id -> expiry of its registration (Unix ms)
//	P{ch}:pg     list: users whose last connection in ch expired, for Reap
//	P{presence-index}  sorted set: channel -> when Reap visits it next (Unix ms)
//	P{status:<user>}:v  the user's status, JSON of realtime.Status, no expiry
//	P{offline-due}  sorted set: user -> when their offline is due (Unix ms)
//
// The part in braces is the cluster hash tag, so all of a channel's keys
// and its pub/sub channel share one slot, and a script can touch them all
// and publish on the channel. A name that is empty or holds '}' or '~' is
// written as '~' and its hex instead, so it cannot end the tag early. A
// realtime channel named "node:..." would share a name with a node's
// channel; no namespace uses that name.
//
// On pub/sub a publication is "<epoch> <offset>\n<payload>" and an
// ephemeral event " 0\n<payload>" (no epoch, offset 0): only the first
// space and the newline after it separate, so the payload may hold any
// bytes. A node channel's messages start with 'm' (SendNode) or 'p' (a
// probe).
//
// The meta hash and the stream expire HistoryTTL plus one minute after the
// last publication (Since and Current push the meta hash's expiry along),
// so quiet channels leave nothing behind. Presence keys expire twice
// PresenceTTL after the last join or renewal.
//
// # Departures of dead nodes
//
// Every presence script first sweeps the channel's expired entries; a user
// whose last connection went that way is pushed onto the channel's list
// `P{ch}:pg`. The index `P{presence-index}` scores each channel no later
// than the earliest expiry of its entries: a join adds its entry's with ZADD
// LT, so it never postpones it, and a renewal sets the earliest expiry its
// script saw, so a live channel is not due again until its entries may
// expire. Presence.Reap, which every
// node calls every reap interval, claims the channels that are due (one
// script, which leases them for PresenceTTL/3 so that other nodes take
// other channels), sweeps them and takes their lists: each departure goes
// to exactly one node, which announces it (a leave event, or the offline
// status for a user's last connection anywhere). It then puts the channel
// back at its earliest expiry, or removes an empty one and sweeps it once
// more, so a join that raced the removal re-indexes it. A dead node's
// users are announced within PresenceTTL plus a reap interval of its
// death.
//
// # Offline status
//
// When a user's last connection anywhere closes, the node records the
// user in `P{offline-due}`, due OfflineDelay later (Redis time), and arms
// a local timer. The timer, and every node's periodic ClaimDueOffline,
// take due records with one script each (ZRANGEBYSCORE and ZREM, or ZSCORE
// and ZREM for one user), so each record goes to exactly one node, which
// publishes offline unless the user is back. The record has no expiry, so
// a node that drains or dies after the last connection closed leaves it to
// the others.
//
// # Atomicity
//
// Every change is one Lua script (EVALSHA, falling back to EVAL on a
// fresh server), and Redis runs a script with nothing in between:
//   - Publish (for each publication of a batch, in turn) creates the epoch if the meta hash is gone (a new channel, or
//     a history lost to expiry, eviction, a flush or a restart without
//     persistence; the caller passes a fresh random candidate, and the old
//     stream is deleted with it), increments the offset, XADDs with an
//     approximate MAXLEN (~) of HistorySize, pushes both expiries back
//     once per refresh interval and publishes. So
//     offsets are gapless and ordered per channel, and every node receives
//     them in offset order. A lost history gets a new epoch, so a client
//     resuming from before it gets ErrUnrecoverable, never a silent gap.
//   - Since reads the position and the entries together, and checks that
//     every offset after the asked one is there (a deleted stream under a
//     surviving meta hash leaves a hole it reports), that they are among
//     the last HistorySize (the trim keeps a few more), and that the oldest is
//     younger than HistoryTTL by Redis's clock, which is how age trimming
//     works: at read time. Since and Current create the epoch at offset 0
//     when there is none, so concurrent callers agree on it.
//   - Join, Leave and Members first sweep the entries whose expiry has
//     passed, keeping the per-user counts exact, so firstForUser and
//     lastForUser hold across nodes. (DESIGN.md sketches a hash with a TTL
//     per entry; Redis has no per-field expiry in 7.0, hence the sorted set
//     of expiries beside the two hashes.)
//
// # Goroutines
//
// Constructors start none. Broker.Run runs a supervisor on the caller's
// goroutine; it starts one receive loop per pub/sub connection (one for a
// single Redis, one per master in a cluster) and publishWorkers publisher
// goroutines, and before it returns it stops the publishers (sending what
// is queued), closes the connections and waits for every loop, so the
// Deliverer is never called after Run returns. The supervisor probes the
// connections and renews the node's registration every ProbeInterval,
// and replaces broken or stuck connections. Presence.Run renews the
// entries joined through that Presence every PresenceTTL/3 on the
// caller's goroutine and starts nothing. go-redis's own goroutines belong
// to the client, which the caller closes after both Runs return.
//
// Lock order: Broker.mu, then a shard's mu. Broker.mu is also held while
// subscribe commands are written. The publisher's and the Presence's
// mutexes are never held with another.
//
// # Subscriptions and delivery
//
// Subscribe returns only once Redis has confirmed the subscription (the
// "subscribe" or "ssubscribe" reply reached the receive loop), so a
// publication made after it returns is delivered. Each connection counts
// the subscribe and unsubscribe commands it sends per channel and matches
// the confirmations, which arrive in command order; from those counts the
// receive loop knows when to release a waiting Subscribe and to drop what
// still arrives for a channel being unsubscribed. A channel lives on one
// connection, whose loop delivers one message at a time, so a channel's
// deliveries never overlap and keep Redis's order. The Deliverer is
// called from the loop and must not block.
//
// Publishes (Stream.Publish and PublishEvent) go through a batching
// publisher while Run runs: a publish made while others are in flight is
// queued, and the publisher's goroutines send what is queued as one
// pipeline each, so a burst costs a few round trips; each caller still
// gets its own position or error. On one Redis, the Stream publications of
// a pipeline are one call of the publish script, which makes them one
// after the other, so Redis pays for a script call once per batch; in a
// cluster, whose script calls must keep to one slot, each is a call of its
// own. A lone publish, or any publish without Run, goes straight to Redis
// on the caller's goroutine.
//
// A publish whose reply was lost to a broken connection may or may not
// have happened, and go-redis retries such a command (up to the client's
// MaxRetries), so a retry can append the payload a second time, at the
// next offset. A client built with MaxRetries -1 never does that.
//
// Delivery is at most once, as Redis pub/sub is: a publication can be lost
// when a connection breaks, when Redis drops a slow subscriber, or while
// a connection is stuck. Receivers catch the gap by offsets and re-read
// the Stream.
//
// # Probes, restarts and resyncs
//
// Every ProbeInterval, Run publishes a probe through each connection's
// probe channel (the node channel on the connection that holds it) and
// checks that the previous one came back through the receive loop. A
// connection whose probe did not, whose loop got an error (a broken
// connection, an error reply such as MOVED), or that lost a sharded
// subscription it still wants (Redis drops them when a slot moves) is
// restarted: Run closes it, waits for its loop, and subscribes its
// channels again on a fresh connection, to their current masters in a
// cluster. Restarts that keep failing back off up to 2 s; Run itself only
// returns when its context ends. Subscribes waiting on the old connection
// wait on the new one.
//
// A Deliverer that implements Resyncer is told, once the new subscriptions
// are confirmed, which channels may have lost publications, so it can
// re-read their streams even if no later publication reveals the gap. It
// is also told when go-redis re-subscribed on a new connection by itself,
// which shows as a confirmation nobody asked for.
//
// # Cluster mode
//
// With a *goredis.ClusterClient the Broker uses sharded pub/sub
// (SSUBSCRIBE, SPUBLISH, and SPUBLISH inside the publish script), so a
// publication travels only within its slot's shard instead of across the
// whole cluster bus. go-redis's PubSub talks to one node, and one
// SSUBSCRIBE may only name channels of one slot, so the Broker keeps a
// PubSub per master, subscribes one channel per command, and routes each
// channel to the master that owns its slot. A master that does not hold
// the node channel gets a probe channel of its own, the first
// P{node:<id>:probe:<n>} whose slot it owns. Hash tags keep every script's
// keys in one slot.
//
// # Node registry
//
// Run registers the node in P{nodes} once its node channel is subscribed,
// renews it every ProbeInterval for three intervals, and removes it when
// it returns. Nodes lists the live ones. SendNode publishes on the node's
// channel; when nobody received it, it consults the registry, so a node
// that is not live is partyline.ErrNotFound.
package redisbroker
