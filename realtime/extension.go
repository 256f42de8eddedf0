package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/partyline/partyline/realtime/wire"
)

// Action is what a session wants to do on a channel.
type Action int

// Actions checked by Extension.Authorize.
const (
	// ActionSubscribe is a subscription; for a public room it also joins.
	ActionSubscribe Action = iota + 1
	// ActionPublish is a client publication (the pub request).
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

// ServerPublishFunc publishes a server API message on a channel of an
// extension's namespace. data is compact JSON and kind is checked. It
// returns the publication's position.
type ServerPublishFunc func(ctx context.Context, ch, kind string, data json.RawMessage) (wire.Position, error)

// Namespace is what an extension declares for one namespace it owns.
type Namespace struct {
	// Name is the namespace, such as "room". Required.
	Name string
	// Publish takes a client's pub on a channel of the namespace, after
	// the gateway applied the connection's publish rate and Authorize
	// allowed ActionPublish. Nil means clients do not publish there: pub
	// answers forbidden.
	Publish RequestHandler
	// ServerPublish takes the server API's publications on the namespace.
	// Nil means they go straight into the channel's stream.
	ServerPublish ServerPublishFunc
}

// Extension is how a domain (chat, voice, clips) plugs into the gateway
// without realtime importing it: it owns namespaces, decides who may
// subscribe to, publish on and read their channels, and serves request
// types. Register it with Node.Register before the Node runs.
type Extension interface {
	// Namespaces declares the namespaces it owns.
	Namespaces() []Namespace
	// Authorize returns nil when s may act on ch, or an error wrapping a
	// partyline error kind (ErrForbidden, ErrNotFound, ...). ch is valid
	// and in one of Namespaces.
	Authorize(ctx context.Context, s *Session, ch string, act Action) error
	// Requests maps request types to their handlers.
	Requests() map[string]RequestHandler
}

// Register plugs ext into the Node: its namespaces join the namespace
// table and its request types the request table. It fails when a
// namespace or a request type already has an owner, and once Run has
// started. It is not safe to call concurrently with itself.
func (n *Node) Register(ext Extension) error {
	select {
	case <-n.started:
		return fmt.Errorf("realtime: Register after Run")
	default:
	}
	decls := ext.Namespaces()
	reqs := ext.Requests()
	for i, d := range decls {
		if ns, _, err := wire.ParseChannel(d.Name + ":x"); err != nil || ns != d.Name {
			return fmt.Errorf("realtime: extension declares a bad namespace name %q", d.Name)
		}
		if _, dup := n.ns[d.Name]; dup || slices.ContainsFunc(decls[:i], func(o Namespace) bool { return o.Name == d.Name }) {
			return fmt.Errorf("realtime: namespace %q has two owners", d.Name)
		}
	}
	for typ := range reqs {
		if builtinRequests[typ] {
			return fmt.Errorf("realtime: request type %q is built in", typ)
		}
		if _, dup := n.handlers[typ]; dup {
			return fmt.Errorf("realtime: request type %q has two handlers", typ)
		}
	}
	for _, d := range decls {
		n.ns[d.Name] = namespace{owner: ext, decl: d}
	}
	for typ, h := range reqs {
		n.handlers[typ] = h
	}
	return nil
}
