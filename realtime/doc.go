// Package realtime is the gateway: the Node, the Hub, each client Conn, the
// /v1/ws handler, namespaces and permissions, presence and status, drain,
// the server API and metrics. It also declares the scale-out interfaces
// (Stream, Broker, Presence) with their in-process memory implementations;
// realtime/redisbroker implements them for many nodes.
//
// # Who calls it
//
// cmd/partyline builds one Node with New, mounts it at /v1/ws and its
// ServerAPI at /v1/server, runs Node.Run in its errgroup and calls Drain on
// shutdown. Extensions (chat, signaling, clips) plug namespaces and
// request types in through the Extension interface, so realtime imports
// none of them. An extension that works across nodes, as voice relays its
// signaling to a room's media node, registers handlers for node messages
// with HandleNode and sends them with SendNode; they travel on the
// broker's per-node channel.
//
// # Interfaces
//
// The Stream and the Broker are separate, as DESIGN.md sketches, but a
// Stream is built on its Broker: Publish appends and fans out in one atomic
// step (in Redis, one Lua script), which is what makes per-channel offsets
// ordered on every node. Ephemeral events go through Broker.PublishEvent and
// never touch the stream. Presence also keeps each user's status, because
// status has the same lifetime rules (per user, across nodes).
//
// # Goroutines
//
//   - Node.Run runs the broker's receive loop; the caller starts and stops
//     it. Run also runs the presence loop, which every ReapInterval claims
//     the offline statuses that are due (whichever node scheduled them;
//     see status.go) and, on a Presence that can reap (Redis), announces
//     the users of dead nodes.
//   - Each connection's reader is started by ServeHTTP, which then returns,
//     so nothing of the upgrade request stays alive; Run waits for the
//     readers. The reader hands each frame to a short-lived goroutine and
//     waits for it, so requests still run one at a time, in order, while
//     the deep stacks they need (JSON, the store) are not kept by the idle
//     reader. It cleans up when the connection ends.
//   - A connection whose send queue turns non-empty goes on the ready list
//     of its flusher (one per P), whose goroutine writes the queues
//     without blocking and exits when the list is empty. A connection
//     whose socket cannot take a frame gets a writer goroutine of its own
//     until its queue is empty; with Options.DisableWSFastPath every
//     connection writes that way, through the library. An idle connection
//     thus has one goroutine.
//   - Gap fills and node-to-node replies run on goroutines of their own,
//     which Run waits for.
//   - Timers (hello timeout, token expiry, heartbeat, offline status) run
//     their callbacks on the runtime's timer goroutines; a heartbeat ping
//     waits there for its pong. Run stops the offline timers last and
//     waits for those already running; their records stay in the Presence
//     for the other nodes.
//
// # Locks
//
// Hub: a shard's RWMutex, then a channel's mu; a channel's brokerMu stripe
// is never held together with a shard lock except briefly to re-check the
// map. The delivery path takes, in this order, a channel's seqMu (held while
// a stream publication fans out), a subscription's mu (only while it is
// recovering; goLive holds it too) and a Conn's mu (enqueue). A memory
// Stream delivers under its channel lock, which therefore comes first of
// all. Conn: mu (queue and close state) and subsMu (subscriptions) are never
// held together. Node.mu is taken alone. The wsframe.Conn under a
// WebSocket has its own mu, held across its socket writes and taken by
// nothing else.
package realtime
