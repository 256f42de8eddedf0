// Package realtime is the gateway: the Node, the Hub (channel to local
// connections), each client Conn, the /v1/ws handler, namespaces and
// permissions, presence and status, drain, the server API and metrics. It
// declares the scale-out interfaces (Stream, Broker, Presence) with their
// in-process memory implementations; realtime/redisbroker implements them
// for many nodes. Domains receive the Node as the small interfaces they
// need (a publisher, a notifier, node messaging) in their constructors and
// register with it by node.Register(ext) before it runs, so realtime
// imports none of them.
//
// A Stream is built on its Broker: Publish appends and fans out in one
// atomic step (in Redis, one Lua script), which keeps per-channel offsets
// ordered on every node. Ephemeral events go through Broker.PublishEvent
// and never touch the stream. Presence also keeps each user's status,
// which has the same lifetime rules (per user, across nodes).
//
// # Goroutines
//
// New starts none. Node.Run, which its caller starts and stops by ctx,
// runs the broker's receive loop and the presence loop, which every
// ReapInterval claims the offline statuses that are due and, on a Presence
// that can reap (Redis), announces the users of dead nodes. Besides:
//
//   - each connection's reader is started by ServeHTTP, which then
//     returns, so nothing of the upgrade request stays alive. The reader
//     hands each frame to a short-lived goroutine and waits for it:
//     requests run one at a time, in order, and the idle reader keeps a
//     small stack. It cleans up when the connection ends;
//   - a connection whose send queue turns non-empty goes on the ready list
//     of its flusher (one per P), whose goroutine writes the queues without
//     blocking and exits when the list is empty; a connection whose socket
//     cannot take a frame gets a writer goroutine of its own until its
//     queue is empty (with Options.DisableWSFastPath, every connection
//     writes that way, through the library). An idle connection thus has
//     one goroutine;
//   - gap fills and node-to-node replies run on goroutines of their own;
//   - timers (hello timeout, token expiry, heartbeat, offline status) run
//     on the runtime's timer goroutines; a heartbeat ping waits there for
//     its pong.
//
// Run waits for the readers, gap fills and node replies before it returns.
// It stops the offline timers last and waits for those already running;
// their records stay in the Presence for the other nodes.
//
// # Locks
//
// Hub: a shard's RWMutex, then a channel's mu; a channel's brokerMu stripe
// is never held with a shard lock except briefly to re-check the map. The
// delivery path takes, in order, a channel's seqMu (held while a stream
// publication fans out), a subscription's mu (only while it is recovering;
// goLive holds it too) and a Conn's mu (enqueue). A memory Stream delivers
// under its channel lock, which therefore comes first of all. Conn.mu
// (queue and close state) and Conn.subsMu (subscriptions) are never held
// together. Node.mu is taken alone. The frameConn under a WebSocket has
// its own mu, held across its socket writes and taken by nothing else.
package realtime
