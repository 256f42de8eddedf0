// Package client is the Go SDK for the partyline gateway: it speaks protocol
// v1 (PROTOCOL.md) over one WebSocket and carries out the client duties the
// protocol assigns to SDKs. The load harness, the gateway's end-to-end tests
// and bots call it, and it is the model for the TypeScript client.
//
// # What it owns
//
// A Client owns one logical connection: the WebSocket under it, the hello
// handshake, request ids and the matching of replies, the list of
// subscribed channels with the last {epoch, offset} seen on each, and
// reconnection. It does not own the application's data: it never reloads
// history by itself, it only says when a reload is due.
//
// # Requests
//
// Each request method (Subscribe, Publish, History, Ping, Request, ...)
// sends one request with a fresh positive id and blocks the calling
// goroutine until its reply, for at most Options.RequestTimeout and the life
// of its ctx. Many goroutines may have requests in flight at once; replies
// are matched by id in whatever order they come. A request made while the
// client reconnects waits for the new connection within the same bounds.
// Errors are an error wrapping *Error (the server's error reply; see
// ErrorCode), ErrDisconnected (the connection was lost before the reply; the
// request may or may not have taken effect), ErrClosed, ErrTooLarge, or the
// ctx error when no reply came in time (a late reply is dropped).
// Notifications (Typing, Send) get no reply and fail with ErrDisconnected
// instead of waiting while no connection is up.
//
// # Delivery
//
// Everything the server sends that is not a reply goes, in the order
// received, to one channel: Messages. That is publications (msg), ephemeral
// events, gap notifications, the reconnect notice, voice signaling, and
// types this version does not know, which the application is free to
// ignore. The client adds messages of its own there, with types prefixed
// "client.": TypeDisconnected, TypeReconnected, TypeRecoveryFailed and
// TypeResubscribeFailed. One ordered channel rather than callbacks per
// subscription keeps the order between channels and connection events, lets
// the application choose its own concurrency, and cannot run application
// code on the reader goroutine.
//
// Delivery is blocking: when the buffer (Options.MessageBuffer) is full, the
// client stops reading until there is room. A position only advances for a
// message handed to the channel, so back-pressure never turns into a silent
// gap: if the server drops the connection as a slow consumer (4009), the
// client resumes from the last message delivered. Because replies wait
// behind a full buffer too, a goroutine that consumes Messages and makes
// requests in between can stall until RequestTimeout when more than a
// buffer's worth of messages arrives meanwhile; size the buffer for that.
//
// # Recovery
//
// After a lost connection the client reconnects with full-jitter
// exponential backoff, says hello with a token fresh from Options.Token,
// and resubscribes every channel with since set to the last position it
// saw. The gateway then replays what was missed, or answers
// recovered:false, which the client reports as a TypeRecoveryFailed message
// on Messages. A gap notification is delivered as it is (wire.TypeGap).
// NeedsReload reports both: the application reloads that channel through
// History. After a Subscribe with Since, the Subscription's Recovered field
// answers directly. A reconnect notice from a draining server makes the
// client wait its after_ms instead of the backoff. See Client for the close
// codes after which the client stops.
//
// # Goroutines
//
// Dial starts exactly one goroutine, the run goroutine, which Close stops
// (Close waits for it). It is the only reader of the socket: it splits each
// frame with wire.Split, hands replies to the waiting requests, tracks
// positions and delivers to Messages. When the connection is lost, the same
// goroutine sleeps the backoff, dials, says hello and sends the
// resubscriptions, so nothing reads a dead connection and nothing
// reconnects twice. There is no goroutine per request: a request's caller
// waits on a one-slot channel of its own. Writes from any goroutine are
// serialized by a one-slot semaphore that honours the writer's ctx. While a
// reconnect notice is pending, a timer closes the old connection at the
// server's deadline if the server has not; the run goroutine waits for that
// timer's function before moving on. The calls made into coder/websocket
// start no goroutines of their own.
//
// Client.mu guards the connection, the pending requests, the subscriptions
// and the hello results. It is never held while writing to the socket or
// while delivering to Messages, and the write semaphore is never taken
// while holding it.
package client
