package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"time"

	"golang.org/x/time/rate"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime/wire"
)

// builtinRequests are the request types the gateway serves itself.
var builtinRequests = map[string]bool{
	wire.TypeHello: true, wire.TypePing: true, wire.TypeSub: true, wire.TypeUnsub: true,
	wire.TypePub: true, wire.TypeTyping: true, wire.TypePresence: true, wire.TypeStatus: true,
}

func (n *Node) builtin(typ string) RequestHandler {
	switch typ {
	case wire.TypeHello:
		return func(ctx context.Context, s *Session, req *wire.Request) (any, error) {
			return nil, partyline.Errorf(partyline.ErrInvalid, "already said hello")
		}
	case wire.TypePing:
		return func(ctx context.Context, s *Session, req *wire.Request) (any, error) {
			return struct {
				TS int64 `json:"ts"`
			}{time.Now().UnixMilli()}, nil
		}
	case wire.TypeSub:
		return handleSub
	case wire.TypeUnsub:
		return handleUnsub
	case wire.TypePub:
		return handlePub
	case wire.TypeTyping:
		return handleTyping
	case wire.TypePresence:
		return handlePresence
	case wire.TypeStatus:
		return handleStatus
	}
	return nil
}

type helloReply struct {
	Session     string      `json:"session"`
	User        string      `json:"user"`
	Node        string      `json:"node"`
	HeartbeatMS int64       `json:"heartbeat_ms"`
	Limits      helloLimits `json:"limits"`
}

type helloLimits struct {
	MaxFrameBytes    int     `json:"max_frame_bytes"`
	MaxSubscriptions int     `json:"max_subscriptions"`
	PublishPerSec    float64 `json:"publish_per_sec"`
}

// hello authenticates the connection. A bad token is answered and closed
// with 4003; a user over the connection cap (on this node, or across
// nodes when the Presence can count them) with 1013.
func (c *Conn) hello(req *wire.Request) {
	n := c.node
	ctx, cancel := context.WithTimeout(c.ctx, requestTimeout)
	defer cancel()
	user, exp, err := n.opts.Auth.Authenticate(ctx, req.Token)
	if err != nil {
		c.replyError(req.ID, err)
		if errors.Is(err, partyline.ErrUnauthorized) {
			c.closeAfterFlush(wire.CloseUnauthorized, "unauthorized")
		}
		return
	}
	c.user = user
	if err := n.register(c); err != nil {
		c.replyError(req.ID, err)
		c.closeAfterFlush(wire.CloseTryAgainLater, truncate(err.Error(), 100))
		return
	}
	first, err := n.joinOnline(ctx, c)
	if err != nil {
		c.replyError(req.ID, err)
		c.closeAfterFlush(wire.CloseTryAgainLater, truncate(err.Error(), 100))
		return
	}
	c.authed.Store(true)
	c.helloTimer.Stop()
	if !exp.IsZero() {
		c.expiryTimer = time.AfterFunc(time.Until(exp), func() {
			c.closeAfterFlush(wire.CloseUnauthorized, "token expired")
		})
	}
	c.scheduleHeartbeat()
	c.replyOK(req.ID, helloReply{
		Session:     c.id,
		User:        user,
		Node:        n.opts.NodeID,
		HeartbeatMS: n.opts.HeartbeatInterval.Milliseconds(),
		Limits: helloLimits{
			MaxFrameBytes:    n.opts.MaxFrameBytes,
			MaxSubscriptions: n.opts.MaxSubscriptions,
			PublishPerSec:    n.opts.PublishRate,
		},
	})
	n.userArrived(ctx, c, first)
}

// scheduleHeartbeat pings after one interval; a ping unanswered within two
// intervals closes the connection, and so does a socket write stuck for
// longer than WriteTimeout.
func (c *Conn) scheduleHeartbeat() {
	interval := c.node.opts.HeartbeatInterval
	var beat func()
	beat = func() {
		if start := c.writeStart.Load(); start != 0 && time.Since(time.Unix(0, start)) > c.node.opts.WriteTimeout {
			c.ws.CloseNow() // a write stuck this long will not finish
			return
		}
		ctx, cancel := context.WithTimeout(c.ctx, 2*interval)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			c.ws.CloseNow()
			return
		}
		c.mu.Lock()
		if c.ctx.Err() == nil {
			c.beatTimer = time.AfterFunc(interval, beat)
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.beatTimer = time.AfterFunc(interval, beat)
	c.mu.Unlock()
}

// allowPublish applies the per-connection publish rate. Over it the client
// gets rate_limited; when it keeps going, the connection is closed with 4008.
func (c *Conn) allowPublish() error {
	if c.limiter == nil {
		r := c.node.opts.PublishRate
		c.limiter = rate.NewLimiter(rate.Limit(r), int(2*r+0.5))
		c.abuse = rate.NewLimiter(rate.Limit(1), 10)
	}
	if c.limiter.Allow() {
		return nil
	}
	if !c.abuse.Allow() {
		c.closeAfterReply = wire.CloseRateLimitAbused // after the rate_limited reply
	}
	return partyline.Errorf(partyline.ErrRateLimited, "over %v publishes per second", c.node.opts.PublishRate)
}

// AllowPublish applies the connection's publish rate limit; extensions call
// it before they publish for the client.
func (s *Session) AllowPublish() error { return s.c.allowPublish() }

// authorize checks act on ch for the session, by the namespace's rules:
// the core's own for user, status and broadcast channels, the owner's for
// the others.
func (n *Node) authorize(ctx context.Context, s *Session, ch string, act Action) error {
	ns, name, entry, err := n.channel(ch)
	if err != nil {
		return err
	}
	return authorizeIn(ctx, s, ch, ns, name, entry, act)
}

// authorizeIn is authorize for a channel already parsed into ns, name and
// its namespace table entry.
func authorizeIn(ctx context.Context, s *Session, ch, ns, name string, entry namespace, act Action) error {
	if entry.owner != nil {
		return entry.owner.Authorize(ctx, s, ch, act)
	}
	if act == ActionPublish {
		return partyline.Errorf(partyline.ErrForbidden, "only the server publishes on %s", ch)
	}
	switch ns {
	case wire.NSUser:
		if name != s.User() {
			return partyline.Errorf(partyline.ErrForbidden, "%s belongs to another user", ch)
		}
	case wire.NSStatus:
		if !wire.ValidID(name) {
			return partyline.Errorf(partyline.ErrInvalid, "%s: not a valid user id", ch)
		}
	}
	return nil
}

// handlePub serves a client's pub: the connection's publish rate, then
// the namespace owner's ActionPublish rule, then the owner's Publish,
// which stores and fans the message out. A namespace whose owner takes no
// client publications, and the core's own, answer forbidden.
func handlePub(ctx context.Context, s *Session, req *wire.Request) (any, error) {
	ns, name, entry, err := s.c.node.channel(req.Channel)
	if err != nil {
		return nil, err
	}
	if entry.decl.Publish == nil {
		if err := authorizeIn(ctx, s, req.Channel, ns, name, entry, ActionPublish); err != nil {
			return nil, err
		}
		return nil, partyline.Errorf(partyline.ErrForbidden, "%s: only the server publishes there", req.Channel)
	}
	if err := s.c.allowPublish(); err != nil {
		return nil, err
	}
	if err := authorizeIn(ctx, s, req.Channel, ns, name, entry, ActionPublish); err != nil {
		return nil, err
	}
	return entry.decl.Publish(ctx, s, req)
}

// presenceTracked reports whether subscriptions to the namespace appear in
// presence. A user: channel has one reader and status: channels are read by
// everyone's friends, so neither is tracked.
func presenceTracked(ch string) bool {
	ns, _, _ := wire.ParseChannel(ch)
	return ns != wire.NSUser && ns != wire.NSStatus
}

// presenceEvents reports whether join and leave events go out on ch.
// broadcast: channels are audiences of thousands who only listen: an event
// per arrival to everyone would grow with the square of the audience, so
// their presence is counted but not announced.
func presenceEvents(ch string) bool {
	ns, _, _ := wire.ParseChannel(ch)
	return ns != wire.NSBroadcast
}

type subReply struct {
	Epoch     string  `json:"epoch"`
	Offset    uint64  `json:"offset"`
	Recovered *bool   `json:"recovered,omitempty"`
	Status    *Status `json:"status,omitempty"`
}

func handleSub(ctx context.Context, s *Session, req *wire.Request) (any, error) {
	c, n := s.c, s.c.node
	ch := req.Channel
	c.subsMu.Lock()
	old := c.subs[ch]
	count := len(c.subs)
	c.subsMu.Unlock()
	if old == nil && count >= n.opts.MaxSubscriptions {
		return nil, partyline.Errorf(partyline.ErrLimitExceeded, "at most %d subscriptions per connection", n.opts.MaxSubscriptions)
	}
	if err := n.authorize(ctx, s, ch, ActionSubscribe); err != nil {
		return nil, err
	}
	if old != nil {
		c.leave(ctx, old) // a second sub restarts the subscription
	}
	sub := &subscription{conn: c, channel: ch}
	if err := n.hub.add(ctx, sub); err != nil {
		n.metrics.brokerErrors.Inc()
		return nil, partyline.Errorf(partyline.ErrUnavailable, "subscribe %s: broker unavailable", ch)
	}
	var (
		pubs  []Publication
		cur   Position
		err   error
		reply subReply
	)
	if req.Since != nil {
		pubs, cur, err = n.opts.Stream.Since(ctx, ch, *req.Since)
		recovered := err == nil
		if errors.Is(err, ErrUnrecoverable) {
			err, pubs = nil, nil
		}
		reply.Recovered = &recovered
		if err == nil {
			if recovered {
				n.metrics.recovery.WithLabelValues("recovered").Inc()
			} else {
				n.metrics.recovery.WithLabelValues("not_recovered").Inc()
			}
		}
	} else {
		cur, err = n.opts.Stream.Current(ctx, ch)
	}
	if err != nil {
		n.hub.remove(sub)
		n.metrics.brokerErrors.Inc()
		return nil, partyline.Errorf(partyline.ErrUnavailable, "subscribe %s: stream unavailable", ch)
	}
	reply.Epoch, reply.Offset = cur.Epoch, cur.Offset
	n.hub.observe(ch, cur)
	if ns, name, _ := wire.ParseChannel(ch); ns == wire.NSStatus {
		st, ok, err := n.opts.Presence.GetStatus(ctx, name)
		if err != nil {
			n.hub.remove(sub)
			return nil, partyline.Errorf(partyline.ErrUnavailable, "status of %s unavailable", name)
		}
		if !ok {
			st = Status{Status: wire.StatusOffline}
		}
		reply.Status = &st
	}
	// Presence first, so the subscriber is in it once the ok arrives, and
	// so a leave racing this sub (once it is in c.subs) sees sub.presence.
	joinedFirst := false
	if presenceTracked(ch) {
		first, err := n.opts.Presence.Join(ctx, ch, Member{ConnID: c.id, User: c.user, Node: n.opts.NodeID})
		if err != nil {
			c.logger().Warn("presence join failed", "channel", ch, "err", err)
		} else {
			sub.presence, joinedFirst = true, first
		}
	}
	c.subsMu.Lock()
	if c.subs == nil {
		c.subs = map[string]*subscription{}
	}
	c.subs[ch] = sub
	c.subsMu.Unlock()
	n.metrics.subscriptions.Inc()

	ok, err := wire.AppendOK(nil, req.ID, reply)
	if err != nil {
		c.leave(ctx, sub)
		return nil, err
	}
	first := make([][]byte, 0, 1+len(pubs))
	first = append(first, ok)
	for _, p := range pubs {
		first = append(first, wire.AppendMsg(make([]byte, 0, len(p.Payload)+len(ch)+64), ch, p.Position, p.Payload))
	}
	sub.goLive(cur, first)

	if joinedFirst && presenceEvents(ch) {
		_ = n.PublishEvent(ctx, ch, wire.EventJoin, "", c.user, nil)
	}
	return replied, nil
}

func handleUnsub(ctx context.Context, s *Session, req *wire.Request) (any, error) {
	c := s.c
	if _, _, _, err := c.node.channel(req.Channel); err != nil {
		return nil, err
	}
	c.subsMu.Lock()
	sub := c.subs[req.Channel]
	c.subsMu.Unlock()
	if sub != nil {
		c.leave(ctx, sub)
	}
	return nil, nil
}

// leave ends a subscription: out of the Hub, out of presence, with a leave
// event when it was the user's last connection on the channel.
//
// Whoever takes sub out of the connection's map ends it, so a leave that
// races another (the reader's unsub and a removal from the room) ends the
// subscription once.
func (c *Conn) leave(ctx context.Context, sub *subscription) {
	c.subsMu.Lock()
	mine := c.subs[sub.channel] == sub
	if mine {
		delete(c.subs, sub.channel)
	}
	c.subsMu.Unlock()
	if mine {
		c.end(ctx, sub)
	}
}

// end finishes a subscription already taken out of the connection's map.
func (c *Conn) end(ctx context.Context, sub *subscription) {
	n := c.node
	n.hub.remove(sub)
	n.metrics.subscriptions.Dec()
	if !sub.presence {
		return
	}
	last, err := n.opts.Presence.Leave(ctx, sub.channel, Member{ConnID: c.id, User: c.user, Node: n.opts.NodeID})
	if err != nil {
		c.logger().Warn("presence leave failed", "channel", sub.channel, "err", err)
		return
	}
	if last && presenceEvents(sub.channel) {
		_ = n.PublishEvent(ctx, sub.channel, wire.EventLeave, "", c.user, nil)
	}
}

// handleTyping fans out a typing event, at most one per connection and
// channel every TypingInterval; the rest are dropped. Only subscribers of a
// room or dm channel may type there.
func handleTyping(ctx context.Context, s *Session, req *wire.Request) (any, error) {
	c := s.c
	ns, _, err := wire.ParseChannel(req.Channel)
	if err != nil || (ns != wire.NSRoom && ns != wire.NSDM) {
		return nil, nil
	}
	c.subsMu.Lock()
	sub := c.subs[req.Channel]
	c.subsMu.Unlock()
	if sub == nil {
		return nil, nil
	}
	now := time.Now()
	if now.Sub(sub.lastTyping) < c.node.opts.TypingInterval {
		return nil, nil
	}
	sub.lastTyping = now
	_ = c.node.PublishEvent(ctx, req.Channel, wire.EventTyping, c.user, "", nil)
	return nil, nil
}

type presenceMember struct {
	User  string `json:"user"`
	Conns int    `json:"conns"`
}

// PresenceReply is the result of a presence request and of the server API's
// presence call.
type PresenceReply struct {
	Count   int              `json:"count"`
	Members []presenceMember `json:"members"`
}

// ChannelPresence aggregates ch's presence per user, sorted by user id.
func (n *Node) ChannelPresence(ctx context.Context, ch string) (PresenceReply, error) {
	if !presenceTracked(ch) {
		return PresenceReply{}, partyline.Errorf(partyline.ErrInvalid, "presence is not tracked on user and status channels")
	}
	members, err := n.opts.Presence.Members(ctx, ch)
	if err != nil {
		return PresenceReply{}, partyline.Errorf(partyline.ErrUnavailable, "presence of %s unavailable", ch)
	}
	counts := map[string]int{}
	for _, m := range members {
		counts[m.User]++
	}
	out := PresenceReply{Count: len(counts), Members: make([]presenceMember, 0, len(counts))}
	for u, k := range counts {
		out.Members = append(out.Members, presenceMember{User: u, Conns: k})
	}
	sort.Slice(out.Members, func(i, j int) bool { return out.Members[i].User < out.Members[j].User })
	return out, nil
}

func handlePresence(ctx context.Context, s *Session, req *wire.Request) (any, error) {
	if err := s.c.node.authorize(ctx, s, req.Channel, ActionRead); err != nil {
		return nil, err
	}
	return s.c.node.ChannelPresence(ctx, req.Channel)
}

// Limits of a status request.
const (
	maxStatusGame = 64
	maxStatusText = 128
)

func handleStatus(ctx context.Context, s *Session, req *wire.Request) (any, error) {
	if !wire.ValidStatus(req.Status) {
		return nil, partyline.Errorf(partyline.ErrInvalid, "status must be online, idle, dnd, in_game or offline")
	}
	if len(req.Game) > maxStatusGame || len(req.Text) > maxStatusText {
		return nil, partyline.Errorf(partyline.ErrTooLarge, "game is at most %d bytes and text at most %d", maxStatusGame, maxStatusText)
	}
	if err := s.c.allowPublish(); err != nil {
		return nil, err
	}
	st := Status{Status: req.Status, Game: req.Game, Text: req.Text, TS: time.Now().UnixMilli()}
	if err := s.c.node.setStatus(ctx, s.User(), st); err != nil {
		return nil, err
	}
	return nil, nil
}

// setStatus stores a user's status and publishes it on status:<user>.
func (n *Node) setStatus(ctx context.Context, user string, st Status) error {
	if err := n.opts.Presence.SetStatus(ctx, user, st); err != nil {
		return partyline.Errorf(partyline.ErrUnavailable, "status unavailable")
	}
	data, _ := json.Marshal(st)
	_, err := n.Publish(ctx, wire.NSStatus+":"+user, "", wire.KindStatus, user, data)
	return err
}
