// Package wire is protocol v1 on the wire: message types, error codes, close
// codes, the request decoder, the frame splitter and the encoders for the
// messages the server sends, channel names, ids and positions. It is the
// single source of wire names for the gateway, the domains, the Go SDK and
// the load harness, so none of them imports the gateway for a general type;
// it depends on nothing but the standard library and the root package's
// error kinds.
//
// Encoders append to a caller's buffer and allocate nothing of their own, so a
// publication is encoded once per node and its bytes shared by every local
// subscriber. Everything here is safe for concurrent use; nothing starts
// goroutines.
package wire
