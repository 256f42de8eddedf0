// Package chat owns rooms, direct messages, chat messages and read
// markers: the room and dm namespaces of the gateway, their WebSocket
// requests (pub, edit, delete, history, read), the rooms REST API, and the
// Store interface that store/sqlite and store/postgres implement.
//
// The Service gets the Node as a Gateway in New and is registered with it;
// internal/server mounts RoomRoutes at /v1/rooms and HandleMyRooms at
// GET /v1/me/rooms behind the middleware that authenticates the user.
//
// # The message path
//
// The gateway applies the connection's publish rate and Authorize
// (membership) to a pub, then hands it to the Publish chat declares for
// room and dm. It is committed to the Store, then published through the
// Gateway, which
// assigns its stream offset; the position is recorded on the message and
// only then is the pub acknowledged. A message is therefore never
// acknowledged or fanned out before it is durable. When the publish fails
// after the commit, the client gets unavailable; an idempotent retry (same
// idem) finds the stored message without a position and publishes it then.
// Edits and deletes are stored first too, and published as publications of
// their own with the id of the message they change.
//
// Message data must be a JSON object. It is compacted before it is stored
// and published, so no raw newline can split a msg in the line-delimited
// frames.
//
// # Concurrency
//
// The Service starts no goroutines. WebSocket handlers run on each connection's
// reader goroutine, REST handlers on the HTTP server's, and both may run
// concurrently for any number of users; the Store serializes what it must.
// Its own state is the set of messages whose first publication is under
// way, guarded by one mutex held
// only to read or change the set. That set lets an idempotent retry that
// races the original pub on another connection wait for the original's
// position instead of publishing the message twice; it covers one process,
// so the race can still publish twice across nodes, and only when the
// original's publish has not finished yet.
package chat
