// Package chat owns rooms, direct messages, chat messages and read
// markers: the room and dm namespaces of the gateway, their WebSocket
// requests (pub, edit, delete, history, read), the rooms REST API, and the
// Store interface that store/sqlite and store/postgres implement.
//
// # Who calls it
//
// cmd/partyline builds a Chat with New, passes it to realtime.New among the
// Options.Extensions, and then attaches the Node with SetPublisher: the Node
// is built with its extensions, so it cannot exist when chat is built. It
// mounts RoomRoutes at /v1/rooms and HandleMyRooms at GET /v1/me/rooms,
// both behind the middleware that authenticates the user (auth.WithUser).
// The gateway calls Authorize for sub and presence on room and dm channels,
// routes the request types of Requests here (every pub, whatever its
// channel), and hands server API publications into room and dm channels to
// ServerPublish.
//
// # The message path
//
// A pub is authorized (membership, the connection's publish rate), then
// committed to the Store, then published through the Publisher, which
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
// Chat starts no goroutines. WebSocket handlers run on each connection's
// reader goroutine, REST handlers on the HTTP server's, and both may run
// concurrently for any number of users; the Store serializes what it must.
// Chat's own state is the publisher (an atomic pointer) and the set of
// messages whose first publication is under way, guarded by one mutex held
// only to read or change the set. That set lets an idempotent retry that
// races the original pub on another connection wait for the original's
// position instead of publishing the message twice; it covers one process,
// so the race can still publish twice across nodes, and only when the
// original's publish has not finished yet.
package chat
