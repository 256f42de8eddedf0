// Package client is the Go SDK for the partyline gateway: it speaks
// protocol v1 (docs/protocol.md) over one WebSocket and carries out the
// duties the protocol assigns to clients. It is the model for the
// TypeScript client.
//
// A Client owns one logical connection: the WebSocket under it, the hello
// handshake, request ids and the matching of replies, the subscribed
// channels with the last {epoch, offset} seen on each, and reconnection.
// It does not own the application's data: it never reloads history
// itself, it only says when a reload is due (NeedsReload).
//
// # Requests
//
// Each request method sends one request with a fresh id and blocks its
// caller until the reply, for at most Options.RequestTimeout and the life
// of its ctx; many goroutines may have requests in flight, and a request
// made while the client reconnects waits for the new connection within the
// same bounds. Errors wrap *Error (the server's error reply), or are
// ErrDisconnected (the request may or may not have taken effect),
// ErrClosed, ErrTooLarge or the ctx error. Notifications get no reply and
// fail with ErrDisconnected while no connection is up.
//
// # Delivery and recovery
//
// Everything the server sends that is not a reply goes, in the order
// received, to one channel, Messages, along with the client's own events
// (types prefixed "client.", such as TypeRecoveryFailed). Delivery blocks:
// when Options.MessageBuffer is full the client stops reading, and a
// position advances only for a message handed over, so back-pressure never
// becomes a silent gap. Replies wait behind a full buffer too, so a
// goroutine that consumes Messages and makes requests in between must size
// the buffer for what arrives meanwhile.
//
// After a lost connection the client reconnects with full-jitter
// exponential backoff (or after a draining server's after_ms), says hello
// with a fresh token from Options.Token, and resubscribes every channel
// with since set to the last position seen. See Client for the close codes
// after which it stops.
//
// # Goroutines and locks
//
// Dial starts exactly one goroutine, the run goroutine, which Close stops
// and waits for. It is the only reader of the socket: it hands replies to
// the waiting requests, tracks positions and delivers to Messages, and
// after a lost connection it sleeps the backoff, dials, says hello and
// resubscribes, so nothing reads a dead connection and nothing reconnects
// twice. A request's caller waits on a one-slot channel of its own. Writes
// from any goroutine are serialized by a one-slot semaphore that honours
// the writer's ctx. While a reconnect notice is pending, a timer closes
// the old connection at the server's deadline; the run goroutine waits for
// that timer's function before moving on.
//
// Client.mu guards the connection, the pending requests, the subscriptions
// and the hello results. It is never held while writing to the socket or
// delivering to Messages, and the write semaphore is never taken while
// holding it.
package client
