package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/wire"
)

var _ realtime.Extension = (*Service)(nil)

// SystemAuthor is the author of messages the server publishes into room
// and dm channels through the server API.
const SystemAuthor = "system"

// DefaultMaxMessageBytes is the data limit of one message when
// Options.MaxMessageBytes is zero.
const DefaultMaxMessageBytes = 16 << 10

// maxIdemBytes bounds a client's idempotency key.
const maxIdemBytes = 64

// Gateway is what chat needs of the gateway node. *realtime.Node
// satisfies it; the assembly passes the Node to New.
type Gateway interface {
	// PublishAt appends a stored message to its channel's stream and fans
	// it out. It checks no permissions; chat authorizes first. Errors wrap
	// partyline.ErrUnavailable.
	PublishAt(ctx context.Context, ch, id, kind, from string, ts time.Time, data json.RawMessage) (wire.Position, error)
	// RemoveFromChannel ends a user's subscriptions to a channel on every
	// node, as when they leave or are removed from a private room.
	RemoveFromChannel(ctx context.Context, user, ch, reason string) error
}

// Options configures a Service.
type Options struct {
	// Store keeps rooms, members, messages and read markers. Required.
	Store Store
	// Gateway fans messages out and ends removed members' subscriptions.
	// Required.
	Gateway Gateway
	// Logger receives failures of the store and the stream. Nil means
	// slog.Default().
	Logger *slog.Logger
	// MaxMessageBytes is the largest data object of one message, in bytes
	// as the client sent it. Zero means 16 KiB.
	MaxMessageBytes int
}

// Service is the room and dm extension of the gateway plus the rooms REST
// API. It is safe for concurrent use.
type Service struct {
	store    Store
	gw       Gateway
	log      *slog.Logger
	maxBytes int

	// inflight holds the ids of messages whose first publication is under
	// way in this process, so an idempotent retry racing it waits for its
	// position instead of publishing the message a second time.
	mu       sync.Mutex
	inflight map[string]chan struct{}
}

// New builds a Service. It starts nothing.
func New(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, errors.New("chat: Options.Store is required")
	}
	if opts.Gateway == nil {
		return nil, errors.New("chat: Options.Gateway is required")
	}
	if opts.MaxMessageBytes < 0 {
		return nil, errors.New("chat: Options.MaxMessageBytes must not be negative")
	}
	if opts.MaxMessageBytes == 0 {
		opts.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Service{
		store:    opts.Store,
		gw:       opts.Gateway,
		log:      opts.Logger,
		maxBytes: opts.MaxMessageBytes,
		inflight: map[string]chan struct{}{},
	}, nil
}

// endSubscriptions ends user's subscriptions to ch after they left or were
// removed from the room, so a removed member stops receiving it at once.
// Membership is already gone from the store, so a failure here only delays
// that until their next subscribe, which is refused; it is logged.
func (c *Service) endSubscriptions(ctx context.Context, user, ch string) {
	if err := c.gw.RemoveFromChannel(ctx, user, ch, "removed"); err != nil {
		c.log.Warn("ending a removed member's subscriptions failed", "user", user, "channel", ch, "err", err)
	}
}

// publish sends one publication through the gateway.
func (c *Service) publish(ctx context.Context, ch, id, kind, from string, ts time.Time, data json.RawMessage) (wire.Position, error) {
	pos, err := c.gw.PublishAt(ctx, ch, id, kind, from, ts, data)
	if err != nil {
		return wire.Position{}, &depError{op: "publish on " + ch, err: err}
	}
	return pos, nil
}

// Namespaces declares the namespaces chat owns, room and dm: clients
// publish there through pub (stored, then fanned out), and the server
// API's messages are stored too, as from "system".
func (c *Service) Namespaces() []realtime.Namespace {
	pub := c.wrap(c.handlePub)
	return []realtime.Namespace{
		{Name: wire.NSRoom, Publish: pub, ServerPublish: c.ServerPublish},
		{Name: wire.NSDM, Publish: pub, ServerPublish: c.ServerPublish},
	}
}

// Authorize decides who may subscribe to and publish on room and dm
// channels. A room must exist (not_found otherwise). Its members may
// subscribe and publish; a user who subscribes to a public room they are
// not a member of joins it as a member, which is how public rooms are
// joined. A dm:<a>:<b> channel needs two distinct valid user ids in sorted
// order, and only those two users may use it.
func (c *Service) Authorize(ctx context.Context, s *realtime.Session, ch string, act realtime.Action) error {
	_, err := c.access(ctx, s.User(), ch, act, act == realtime.ActionSubscribe)
	return c.clean(ctx, s, "authorize "+act.String(), ch, 0, err)
}

// access checks act on the room or dm channel ch for user and returns the
// room (the zero Room for a dm). With join, a subscribe to a public room by
// a non-member makes them a member; without it, they may read but stay out.
func (c *Service) access(ctx context.Context, user, ch string, act realtime.Action, join bool) (Room, error) {
	ns, name, err := wire.ParseChannel(ch)
	if err != nil {
		return Room{}, err
	}
	switch ns {
	case wire.NSDM:
		return Room{}, checkDM(ch, name, user)
	case wire.NSRoom:
	default:
		return Room{}, partyline.Errorf(partyline.ErrInvalid, "%s is not a room or dm channel", ch)
	}
	room, member, err := c.roomOf(ctx, name, user)
	if err != nil {
		return Room{}, err
	}
	if member {
		return room, nil
	}
	if act == realtime.ActionPublish || room.Visibility != Public {
		return Room{}, partyline.Errorf(partyline.ErrForbidden, "not a member of %s", ch)
	}
	if join {
		if err := c.store.PutMember(ctx, room.ID, user, RoleMember); err != nil {
			if errors.Is(err, partyline.ErrNotFound) {
				return Room{}, partyline.Errorf(partyline.ErrNotFound, "no such room")
			}
			return Room{}, &depError{op: "join room " + room.ID, err: err}
		}
	}
	return room, nil
}

// roomOf returns the room with the given id, or not_found, and whether
// user is a member of it.
func (c *Service) roomOf(ctx context.Context, id, user string) (Room, bool, error) {
	room, err := c.room(ctx, id)
	if err != nil {
		return Room{}, false, err
	}
	_, err = c.store.GetMember(ctx, room.ID, user)
	switch {
	case err == nil:
		return room, true, nil
	case errors.Is(err, partyline.ErrNotFound):
		return room, false, nil
	}
	return Room{}, false, &depError{op: "get member of room " + room.ID, err: err}
}

// room returns the room with the given id, or not_found.
func (c *Service) room(ctx context.Context, id string) (Room, error) {
	if !wire.ValidID(id) {
		return Room{}, partyline.Errorf(partyline.ErrNotFound, "no such room")
	}
	room, err := c.store.GetRoom(ctx, id)
	if errors.Is(err, partyline.ErrNotFound) {
		return Room{}, partyline.Errorf(partyline.ErrNotFound, "no such room")
	}
	if err != nil {
		return Room{}, &depError{op: "get room " + id, err: err}
	}
	return room, nil
}

// dmUsers splits the name of a dm channel into its two users, checking
// that both are valid, distinct and sorted.
func dmUsers(ch, name string) (a, b string, err error) {
	a, b, ok := strings.Cut(name, ":")
	if !ok || !wire.ValidID(a) || !wire.ValidID(b) {
		return "", "", partyline.Errorf(partyline.ErrInvalid, "%s: a dm channel is dm:<user>:<user>", ch)
	}
	if a >= b {
		return "", "", partyline.Errorf(partyline.ErrInvalid, "%s: the two user ids must be distinct and sorted", ch)
	}
	return a, b, nil
}

func checkDM(ch, name, user string) error {
	a, b, err := dmUsers(ch, name)
	if err != nil {
		return err
	}
	if user != a && user != b {
		return partyline.Errorf(partyline.ErrForbidden, "%s is between two other users", ch)
	}
	return nil
}

// ServerPublish stores a server message in a room or dm channel, as from
// "system", and publishes it with the given kind. The room must exist.
// data must be a JSON object within the message limit; it is compacted,
// so it cannot break the line-delimited framing. The Message type keeps no
// kind, so history shows such a message with kind "message".
func (c *Service) ServerPublish(ctx context.Context, ch, kind string, data json.RawMessage) (wire.Position, error) {
	ns, name, err := wire.ParseChannel(ch)
	if err != nil {
		return wire.Position{}, err
	}
	switch ns {
	case wire.NSRoom:
		if _, err := c.room(ctx, name); err != nil {
			return wire.Position{}, err
		}
	case wire.NSDM:
		if _, _, err := dmUsers(ch, name); err != nil {
			return wire.Position{}, err
		}
	default:
		return wire.Position{}, partyline.Errorf(partyline.ErrInvalid, "chat publishes only on room and dm channels, not %s", ch)
	}
	if kind == "" {
		return wire.Position{}, partyline.Errorf(partyline.ErrInvalid, "kind is required")
	}
	data, err = c.checkData(data)
	if err != nil {
		return wire.Position{}, err
	}
	m := newMessage(ch, SystemAuthor, data, "")
	release, _ := c.claim(m.ID)
	defer release()
	stored, _, err := c.store.InsertMessage(ctx, m)
	if err != nil {
		return wire.Position{}, &depError{op: "store message on " + ch, err: err}
	}
	return c.publishStored(ctx, stored, kind)
}

// depError is a failure of a dependency, the store or the stream. It wraps
// partyline.ErrUnavailable and the cause; over the WebSocket the client gets
// a short message and the cause is logged (see wrap).
type depError struct {
	op  string
	err error
}

func (e *depError) Error() string   { return fmt.Sprintf("chat: %s: %v", e.op, e.err) }
func (e *depError) Unwrap() []error { return []error{partyline.ErrUnavailable, e.err} }

// Requests returns chat's request types: edit, delete, history and read.
// A pub reaches chat through its namespaces' Publish.
func (c *Service) Requests() map[string]realtime.RequestHandler {
	return map[string]realtime.RequestHandler{
		wire.TypeEdit:    c.wrap(c.handleEdit),
		wire.TypeDelete:  c.wrap(c.handleDelete),
		wire.TypeHistory: c.wrap(c.handleHistory),
		wire.TypeRead:    c.wrap(c.handleRead),
	}
}

// wrap runs h and cleans its error (see clean).
func (c *Service) wrap(h realtime.RequestHandler) realtime.RequestHandler {
	return func(ctx context.Context, s *realtime.Session, req *wire.Request) (any, error) {
		res, err := h(ctx, s, req)
		if err != nil {
			return nil, c.clean(ctx, s, req.Type, req.Channel, req.ID, err)
		}
		return res, nil
	}
}

// clean logs a dependency failure with the session and request ids and
// returns the unavailable error the client sees, without the internals.
// Other errors are returned as they are.
func (c *Service) clean(ctx context.Context, s *realtime.Session, op, ch string, reqID uint64, err error) error {
	var de *depError
	if !errors.As(err, &de) {
		return err
	}
	c.log.WarnContext(ctx, "chat request failed", "session", s.ID(), "request_id", reqID,
		"op", op, "channel", ch, "err", de)
	return partyline.Errorf(partyline.ErrUnavailable, "chat is unavailable; retry later")
}
