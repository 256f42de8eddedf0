package signaling

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/wire"
)

// binding is the voice room of one of this node's sessions, as the
// gateway side sees it. Messages for the client pass through it: until
// the join's ok reply is queued they wait in pending, so the client always
// gets the ok (with its ICE servers) before the first voice.offer.
type binding struct {
	session *realtime.Session
	room    string
	media   string // the node hosting the room; "" while the join is under way

	mu      sync.Mutex
	ready   bool
	pending [][]byte
}

// deliver queues msg for the client, or holds it until the join reply.
func (b *binding) deliver(msg []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.ready {
		b.pending = append(b.pending, msg)
		return
	}
	b.session.Send(msg)
}

// open flushes what waited for the join reply and lets messages through.
func (b *binding) open() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.pending {
		b.session.Send(m)
	}
	b.pending, b.ready = nil, true
}

// Namespaces returns the namespace voice owns: voice.
func (v *Service) Namespaces() []realtime.Namespace {
	return []realtime.Namespace{{Name: wire.NSVoice}}
}

// Authorize lets members of room X subscribe to voice:X (and read its
// presence). Only the server publishes there.
func (v *Service) Authorize(ctx context.Context, s *realtime.Session, ch string, act realtime.Action) error {
	_, room, err := wire.ParseChannel(ch)
	if err != nil {
		return err
	}
	if act == realtime.ActionPublish {
		return partyline.Errorf(partyline.ErrForbidden, "only the server publishes on %s", ch)
	}
	return v.checkMember(ctx, room, s.User())
}

func (v *Service) checkMember(ctx context.Context, room, user string) error {
	if !wire.ValidID(room) {
		return partyline.Errorf(partyline.ErrInvalid, "%q is not a valid room id", room)
	}
	member, _, err := v.opts.Members.Member(ctx, room, user)
	if err != nil {
		return err
	}
	if !member {
		return partyline.Errorf(partyline.ErrForbidden, "not a member of room %s", room)
	}
	return nil
}

// Requests maps the voice.* request types to their handlers.
func (v *Service) Requests() map[string]realtime.RequestHandler {
	return map[string]realtime.RequestHandler{
		wire.TypeVoiceJoin:   v.handleJoin,
		wire.TypeVoiceLeave:  v.handleLeave,
		wire.TypeVoiceMute:   v.handleMute,
		wire.TypeVoiceKick:   v.handleKick,
		wire.TypeVoiceAnswer: v.handleSignal,
		wire.TypeVoiceICE:    v.handleSignal,
	}
}

// joinResult is the ok reply to voice.join.
type joinResult struct {
	Participants []participantInfo `json:"participants"`
	ICEServers   []ICEServer       `json:"ice_servers"`
}

// participantInfo is one participant in replies and publications. Muted
// is whether their audio is dropped (by themselves or the owner);
// ServerMuted whether the owner muted them.
type participantInfo struct {
	User        string `json:"user"`
	Muted       bool   `json:"muted"`
	ServerMuted bool   `json:"server_muted"`
}

func (v *Service) handleJoin(ctx context.Context, s *realtime.Session, req *wire.Request) (any, error) {
	if !wire.ValidID(req.Room) {
		return nil, partyline.Errorf(partyline.ErrInvalid, "voice.join needs a valid room id")
	}
	if v.media.Load() == nil {
		return nil, partyline.Errorf(partyline.ErrUnavailable, "voice is not running on this node")
	}
	// Membership is checked here too, so a non-member is refused without
	// a placement or a relay.
	if err := v.checkMember(ctx, req.Room, s.User()); err != nil {
		return nil, err
	}
	b := &binding{session: s, room: req.Room}
	v.mu.Lock()
	if old := v.bindings[s.ID()]; old != nil {
		v.mu.Unlock()
		return nil, partyline.Errorf(partyline.ErrConflict, "already in voice room %s", old.room)
	}
	v.bindings[s.ID()] = b
	hook := !v.hooked[s.ID()]
	v.hooked[s.ID()] = true
	v.mu.Unlock()
	if hook {
		id := s.ID()
		s.OnClose(func() { v.sessionClosed(id) })
	}

	r := &voiceReq{Type: wire.TypeVoiceJoin, Room: req.Room, Session: s.ID(), User: s.User(), Origin: v.nodeID}
	host, raw, err := v.route(ctx, r, true)
	if err != nil {
		v.unbind(s.ID(), req.Room)
		return nil, err
	}
	v.mu.Lock()
	b.media = host
	v.mu.Unlock()
	if err := s.Reply(req.ID, raw); err != nil {
		v.unbind(s.ID(), req.Room)
		return nil, err
	}
	b.open()
	return realtime.Replied, nil
}

func (v *Service) handleLeave(ctx context.Context, s *realtime.Session, req *wire.Request) (any, error) {
	b := v.bindingOf(s.ID())
	if b == nil || b.room != req.Room || b.media == "" {
		return nil, partyline.Errorf(partyline.ErrNotFound, "not in voice room %s", req.Room)
	}
	v.unbind(s.ID(), req.Room)
	r := &voiceReq{Type: wire.TypeVoiceLeave, Room: req.Room, Session: s.ID(), User: s.User(), Origin: v.nodeID}
	if _, err := v.send(ctx, b.media, r); err != nil && !isKind(err, partyline.ErrNotFound) {
		return nil, err
	}
	return nil, nil
}

func (v *Service) handleMute(ctx context.Context, s *realtime.Session, req *wire.Request) (any, error) {
	if !wire.ValidID(req.Room) {
		return nil, partyline.Errorf(partyline.ErrInvalid, "voice.mute needs a valid room id")
	}
	if req.Muted == nil {
		return nil, partyline.Errorf(partyline.ErrInvalid, "voice.mute needs muted")
	}
	r := &voiceReq{Type: wire.TypeVoiceMute, Room: req.Room, Session: s.ID(), User: s.User(), Origin: v.nodeID, Muted: req.Muted}
	if req.User == "" || req.User == s.User() {
		b := v.bindingOf(s.ID())
		if b == nil || b.room != req.Room || b.media == "" {
			return nil, partyline.Errorf(partyline.ErrNotFound, "not in voice room %s", req.Room)
		}
		_, err := v.send(ctx, b.media, r)
		return nil, err
	}
	if !wire.ValidID(req.User) {
		return nil, partyline.Errorf(partyline.ErrInvalid, "%q is not a valid user id", req.User)
	}
	r.Target = req.User
	_, _, err := v.route(ctx, r, false)
	return nil, err
}

func (v *Service) handleKick(ctx context.Context, s *realtime.Session, req *wire.Request) (any, error) {
	if !wire.ValidID(req.Room) || !wire.ValidID(req.User) {
		return nil, partyline.Errorf(partyline.ErrInvalid, "voice.kick needs a valid room and user")
	}
	r := &voiceReq{Type: wire.TypeVoiceKick, Room: req.Room, Session: s.ID(), User: s.User(), Origin: v.nodeID, Target: req.User}
	_, _, err := v.route(ctx, r, false)
	return nil, err
}

// handleSignal serves voice.answer and voice.ice. They are notifications:
// the gateway sends no reply, so a failure is told to the client as an
// error message without id, {"type":"error","code":..,"message":..,
// "request":"voice.answer","room":..}, which clients that do not know it
// ignore like any message without a pending id.
func (v *Service) handleSignal(ctx context.Context, s *realtime.Session, req *wire.Request) (any, error) {
	b := v.bindingOf(s.ID())
	if b == nil || b.room != req.Room || b.media == "" {
		s.Send(signalError(req.Type, req.Room, partyline.Errorf(partyline.ErrNotFound, "%s: not in voice room %s", req.Type, req.Room)))
		return nil, nil
	}
	r := &voiceReq{Type: req.Type, Room: req.Room, Session: s.ID(), User: s.User(), Origin: v.nodeID, SDP: req.SDP, Candidate: req.Candidate}
	if b.media == v.nodeID {
		v.signalMedia(r)
		return nil, nil
	}
	v.metrics.relayed.Inc()
	if err := v.node.SendNode(ctx, b.media, opRequest, r); err != nil {
		s.Send(signalError(req.Type, req.Room, partyline.Errorf(partyline.ErrUnavailable, "%s: the voice room's node is unreachable", req.Type)))
	}
	return nil, nil
}

// signalErrorMsg is the error message that answers a failed notification.
type signalErrorMsg struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Request string `json:"request"`
	Room    string `json:"room"`
}

func signalError(typ, room string, err error) []byte {
	b, _ := json.Marshal(signalErrorMsg{Type: wire.TypeError, Code: realtime.ErrorCode(err), Message: realtime.ErrorMessage(err), Request: typ, Room: room})
	return b
}

func (v *Service) bindingOf(session string) *binding {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.bindings[session]
}

// unbind forgets the session's voice room if it is room, and reports
// whether it did.
func (v *Service) unbind(session, room string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if b := v.bindings[session]; b != nil && b.room == room {
		delete(v.bindings, session)
		return true
	}
	return false
}

// deliverLocal hands a message for a client of this node to its binding;
// a message for a room the session has left is dropped.
func (v *Service) deliverLocal(session, room string, msg []byte) {
	v.mu.Lock()
	b := v.bindings[session]
	v.mu.Unlock()
	if b == nil || b.room != room {
		return
	}
	b.deliver(msg)
}

// sessionClosed removes a closed session from its voice room.
func (v *Service) sessionClosed(session string) {
	v.mu.Lock()
	b := v.bindings[session]
	delete(v.bindings, session)
	delete(v.hooked, session)
	v.mu.Unlock()
	if b == nil || b.media == "" {
		return
	}
	r := &voiceReq{Type: typeClose, Room: b.room, Session: session, User: b.session.User(), Origin: v.nodeID}
	if b.media == v.nodeID {
		v.signalMedia(r)
		return
	}
	v.goTracked(func() {
		ctx, cancel := v.bgCtx()
		defer cancel()
		if err := v.node.SendNode(ctx, b.media, opRequest, r); err != nil {
			v.log.Debug("voice: relay close failed", "room", b.room, "media", b.media, "err", err)
		}
	})
}

// route finds the node hosting r.Room (making this node its host when
// create is set and none is live) and serves r there.
func (v *Service) route(ctx context.Context, r *voiceReq, create bool) (string, json.RawMessage, error) {
	host, err := v.host(ctx, r.Room, create)
	if err != nil {
		return "", nil, err
	}
	if host == "" {
		return "", nil, partyline.Errorf(partyline.ErrNotFound, "no one is in voice room %s", r.Room)
	}
	raw, err := v.send(ctx, host, r)
	if err != nil && create && host != v.nodeID && isKind(err, errNodeGone) {
		// The host died since the placement was read: take the room over.
		if host, err = v.takeOver(ctx, r.Room, host); err != nil {
			return "", nil, err
		}
		raw, err = v.send(ctx, host, r)
	}
	return host, raw, err
}

// host returns the node hosting room, claiming it for this node when
// create is set and no live node holds it.
func (v *Service) host(ctx context.Context, room string, create bool) (string, error) {
	if !create {
		host, err := v.opts.Placement.Lookup(ctx, room)
		if err != nil {
			return "", fmt.Errorf("voice placement: %w: %w", partyline.ErrUnavailable, err)
		}
		return host, nil
	}
	host, err := v.opts.Placement.Claim(ctx, room, v.nodeID, "")
	if err != nil {
		return "", fmt.Errorf("voice placement: %w: %w", partyline.ErrUnavailable, err)
	}
	if host == v.nodeID {
		return host, nil
	}
	nodes, err := v.node.Nodes(ctx)
	if err != nil {
		return "", fmt.Errorf("list nodes: %w: %w", partyline.ErrUnavailable, err)
	}
	for _, n := range nodes {
		if n == host {
			return host, nil
		}
	}
	return v.takeOver(ctx, room, host)
}

func (v *Service) takeOver(ctx context.Context, room, dead string) (string, error) {
	host, err := v.opts.Placement.Claim(ctx, room, v.nodeID, dead)
	if err != nil {
		return "", fmt.Errorf("voice placement: %w: %w", partyline.ErrUnavailable, err)
	}
	if host != v.nodeID {
		v.log.Info("voice: room moved", "room", room, "from", dead, "to", host)
	} else {
		v.log.Info("voice: took over a room of a dead node", "room", room, "dead", dead)
	}
	return host, nil
}
