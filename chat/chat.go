package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/wire"
)

var (
	_ realtime.Extension       = (*Chat)(nil)
	_ realtime.ServerPublisher = (*Chat)(nil)
	_ Publisher                = (*realtime.Node)(nil)
)

// SystemAuthor is the author of messages the server publishes into room
// and dm channels through the server API.
const SystemAuthor = "system"

// DefaultMaxMessageBytes is the data limit of one message when
// Options.MaxMessageBytes is zero.
const DefaultMaxMessageBytes = 16 << 10

// maxIdemBytes bounds a client's idempotency key.
const maxIdemBytes = 64

// Publisher appends a publication to a channel's stream and fans it out.
// *realtime.Node satisfies it. It checks no permissions; chat authorizes
// first. Errors wrap partyline.ErrUnavailable.
type Publisher interface {
	PublishAt(ctx context.Context, ch, id, kind, from string, ts time.Time, data json.RawMessage) (realtime.Position, error)
}

// Options configures a Chat.
type Options struct {
	// Store keeps rooms, members, messages and read markers. Required.
	Store Store
	// Publisher fans messages out. Nil means none yet: the Node is built
	// with its extensions, so it usually does not exist when chat is built;
	// call SetPublisher once it does. Until then every request that
	// publishes fails with unavailable.
	Publisher Publisher
	// Logger receives failures of the store and the stream. Nil means
	// slog.Default().
	Logger *slog.Logger
	// MaxMessageBytes is the largest data object of one message, in bytes
	// as the client sent it. Zero means 16 KiB.
	MaxMessageBytes int
}

// Chat is the room and dm extension of the gateway plus the rooms REST API.
// It is safe for concurrent use.
type Chat struct {
	store    Store
	log      *slog.Logger
	maxBytes int
	pub      atomic.Pointer[Publisher]

	// inflight holds the ids of messages whose first publication is under
	// way in this process, so an idempotent retry racing it waits for its
	// position instead of publishing the message a second time.
	mu       sync.Mutex
	inflight map[string]chan struct{}
}

// New builds a Chat. It starts nothing.
func New(opts Options) (*Chat, error) {
	if opts.Store == nil {
		return nil, errors.New("chat: Options.Store is required")
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
	c := &Chat{
		store:    opts.Store,
		log:      opts.Logger,
		maxBytes: opts.MaxMessageBytes,
		inflight: map[string]chan struct{}{},
	}
	if opts.Publisher != nil {
		c.SetPublisher(opts.Publisher)
	}
	return c, nil
}

// Remover is an optional ability of the Publisher, found by a type
// assertion: ending a user's subscriptions to a channel on every node.
// *realtime.Node has it.
type Remover interface {
	RemoveFromChannel(ctx context.Context, user, ch, reason string) error
}

var _ Remover = (*realtime.Node)(nil)

// endSubscriptions ends user's subscriptions to ch after they left or were
// removed from the room, so a removed member stops receiving it at once.
// Membership is already gone from the store, so a failure here only delays
// that until their next subscribe, which is refused; it is logged.
func (c *Chat) endSubscriptions(ctx context.Context, user, ch string) {
	p := c.pub.Load()
	if p == nil {
		return
	}
	if rm, ok := (*p).(Remover); ok {
		if err := rm.RemoveFromChannel(ctx, user, ch, "removed"); err != nil {
			c.log.Warn("ending a removed member's subscriptions failed", "user", user, "channel", ch, "err", err)
		}
	}
}

// SetPublisher sets, or replaces, the publisher messages go out through.
// It is how the Node is attached after it was built with chat among its
// extensions: build chat, then the Node, then call SetPublisher(node)
// before the Node serves connections. It is safe to call at any time.
func (c *Chat) SetPublisher(p Publisher) {
	if p == nil {
		c.pub.Store(nil)
		return
	}
	c.pub.Store(&p)
}

// publish sends one publication through the current publisher.
func (c *Chat) publish(ctx context.Context, ch, id, kind, from string, ts time.Time, data json.RawMessage) (realtime.Position, error) {
	p := c.pub.Load()
	if p == nil {
		return realtime.Position{}, &depError{op: "publish on " + ch, err: errors.New("no publisher is set")}
	}
	pos, err := (*p).PublishAt(ctx, ch, id, kind, from, ts, data)
	if err != nil {
		return realtime.Position{}, &depError{op: "publish on " + ch, err: err}
	}
	return pos, nil
}

// Namespaces returns the namespaces chat owns: room and dm.
func (c *Chat) Namespaces() []string { return []string{realtime.NSRoom, realtime.NSDM} }

// Authorize decides who may subscribe to and publish on room and dm
// channels. A room must exist (not_found otherwise). Its members may
// subscribe and publish; a user who subscribes to a public room they are
// not a member of joins it as a member, which is how public rooms are
// joined. A dm:<a>:<b> channel needs two distinct valid user ids in sorted
// order, and only those two users may use it.
func (c *Chat) Authorize(ctx context.Context, s *realtime.Session, ch string, act realtime.Action) error {
	_, err := c.access(ctx, s.User(), ch, act, act == realtime.ActionSubscribe)
	return c.clean(ctx, s, "authorize "+act.String(), ch, 0, err)
}

// access checks act on the room or dm channel ch for user and returns the
// room (the zero Room for a dm). With join, a subscribe to a public room by
// a non-member makes them a member; without it, they may read but stay out.
func (c *Chat) access(ctx context.Context, user, ch string, act realtime.Action, join bool) (Room, error) {
	ns, name, err := realtime.ParseChannel(ch)
	if err != nil {
		return Room{}, err
	}
	switch ns {
	case realtime.NSDM:
		return Room{}, checkDM(ch, name, user)
	case realtime.NSRoom:
	default:
		return Room{}, partyline.Errorf(partyline.ErrInvalid, "%s is not a room or dm channel", ch)
	}
	room, err := c.room(ctx, name)
	if err != nil {
		return Room{}, err
	}
	_, err = c.store.GetMember(ctx, room.ID, user)
	switch {
	case err == nil:
		return room, nil
	case !errors.Is(err, partyline.ErrNotFound):
		return Room{}, &depError{op: "get member of room " + room.ID, err: err}
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

// room returns the room with the given id, or not_found.
func (c *Chat) room(ctx context.Context, id string) (Room, error) {
	if !realtime.ValidID(id) {
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
	if !ok || !realtime.ValidID(a) || !realtime.ValidID(b) {
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
func (c *Chat) ServerPublish(ctx context.Context, ch, kind string, data json.RawMessage) (realtime.Position, error) {
	ns, name, err := realtime.ParseChannel(ch)
	if err != nil {
		return realtime.Position{}, err
	}
	switch ns {
	case realtime.NSRoom:
		if _, err := c.room(ctx, name); err != nil {
			return realtime.Position{}, err
		}
	case realtime.NSDM:
		if _, _, err := dmUsers(ch, name); err != nil {
			return realtime.Position{}, err
		}
	default:
		return realtime.Position{}, partyline.Errorf(partyline.ErrInvalid, "chat publishes only on room and dm channels, not %s", ch)
	}
	if kind == "" {
		return realtime.Position{}, partyline.Errorf(partyline.ErrInvalid, "kind is required")
	}
	data, err = c.checkData(data)
	if err != nil {
		return realtime.Position{}, err
	}
	m := newMessage(ch, SystemAuthor, data, "")
	release, _ := c.claim(m.ID)
	defer release()
	stored, _, err := c.store.InsertMessage(ctx, m)
	if err != nil {
		return realtime.Position{}, &depError{op: "store message on " + ch, err: err}
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

// Requests returns chat's request types: pub, edit, delete, history and
// read. The gateway routes every pub here, whatever the channel, so pub
// also refuses the server-only namespaces.
func (c *Chat) Requests() map[string]realtime.RequestHandler {
	return map[string]realtime.RequestHandler{
		wire.TypePub:     c.wrap(c.handlePub),
		wire.TypeEdit:    c.wrap(c.handleEdit),
		wire.TypeDelete:  c.wrap(c.handleDelete),
		wire.TypeHistory: c.wrap(c.handleHistory),
		wire.TypeRead:    c.wrap(c.handleRead),
	}
}

// wrap runs h and cleans its error (see clean).
func (c *Chat) wrap(h realtime.RequestHandler) realtime.RequestHandler {
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
func (c *Chat) clean(ctx context.Context, s *realtime.Session, op, ch string, reqID uint64, err error) error {
	var de *depError
	if !errors.As(err, &de) {
		return err
	}
	c.log.WarnContext(ctx, "chat request failed", "session", s.ID(), "request_id", reqID,
		"op", op, "channel", ch, "err", de)
	return partyline.Errorf(partyline.ErrUnavailable, "chat is unavailable; retry later")
}
