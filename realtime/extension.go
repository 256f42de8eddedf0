package realtime

import (
	"context"
	"encoding/json"

	"github.com/partyline/partyline/realtime/wire"
)

// Action is what a session wants to do on a channel.
type Action int

// Actions checked by Extension.Authorize.
const (
	// ActionSubscribe is a subscription; for a public room it also joins.
	ActionSubscribe Action = iota + 1
	// ActionPublish is a client publication.
	ActionPublish
	// ActionRead looks at a channel without joining it: presence.
	ActionRead
)

func (a Action) String() string {
	switch a {
	case ActionSubscribe:
		return "subscribe"
	case ActionPublish:
		return "publish"
	case ActionRead:
		return "read"
	}
	return "unknown"
}

// RequestHandler serves one request type for an extension. It runs on the
// connection's reader goroutine, so requests of one connection are served
// in order. The result, a struct or map encoding to a JSON object (or nil),
// becomes the ok reply's fields; an error becomes an error reply through
// ErrorCode. For notification types (wire.IsNotification) the result is
// ignored and nothing is replied.
type RequestHandler func(ctx context.Context, s *Session, req *wire.Request) (result any, err error)

// Extension is how chat, voice and clips plug into the gateway without
// realtime importing them. An extension owns namespaces, decides who may
// subscribe to and publish on their channels, and serves request types.
type Extension interface {
	// Namespaces lists the channel namespaces it owns, such as "room".
	Namespaces() []string
	// Authorize returns nil when s may act on ch, or an error wrapping a
	// partyline error kind (ErrForbidden, ErrNotFound, ...). ch is valid
	// and in one of Namespaces.
	Authorize(ctx context.Context, s *Session, ch string, act Action) error
	// Requests maps request types to their handlers.
	Requests() map[string]RequestHandler
}

// ServerPublisher is an optional ability of an extension: publishing from
// the server API into its namespaces when that needs more than the stream,
// as chat stores room and dm messages first.
type ServerPublisher interface {
	ServerPublish(ctx context.Context, ch, kind string, data json.RawMessage) (Position, error)
}
