package signaling

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime/wire"
)

// room is a voice room hosted on this node. Its state is owned by one
// goroutine, the actor (run), which serves the functions posted to its
// mailbox in order: requests, Pion callbacks, timers. Nothing on the
// packet path goes through it.
type room struct {
	v  *Service
	id string
	ch string

	mu     sync.Mutex // guards the mailbox and closed
	ops    []func()
	closed bool
	wake   chan struct{}

	// Owned by the actor.
	parts    []*participant // in join order
	speakers []string       // the set last published, sorted
	closing  bool           // closeAll is removing everyone
	events   serialQueue    // publications, in order
}

// roomFor returns the room hosted here, creating it (and its actor) when
// create is set. It returns nil when there is none, or when Run is not
// running.
func (v *Service) roomFor(id string, create bool) *room {
	v.mu.Lock()
	defer v.mu.Unlock()
	r := v.rooms[id]
	if r != nil || !create || v.media.Load() == nil {
		return r
	}
	r = &room{v: v, id: id, ch: channelOf(id), wake: make(chan struct{}, 1)}
	r.events.v = v
	v.rooms[id] = r
	v.metrics.rooms.Inc()
	v.roomWG.Add(1)
	go r.run()
	return r
}

// post queues f for the actor. It reports false when the room is closed.
func (r *room) post(f func()) bool {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return false
	}
	r.ops = append(r.ops, f)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return true
}

var errRoomClosed = partyline.Errorf(partyline.ErrUnavailable, "the voice room closed; retry")

// call runs f on the actor and waits for its result.
func (r *room) call(ctx context.Context, f func() (any, error)) (any, error) {
	type result struct {
		v   any
		err error
	}
	ch := make(chan result, 1)
	ok := r.post(func() {
		if ctx.Err() != nil {
			ch <- result{nil, ctx.Err()}
			return
		}
		v, err := f()
		ch <- result{v, err}
	})
	if !ok {
		return nil, errRoomClosed
	}
	select {
	case res := <-ch:
		return res.v, res.err
	case <-ctx.Done():
		return nil, partyline.Errorf(partyline.ErrUnavailable, "voice room %s is busy", r.id)
	}
}

func (r *room) run() {
	defer r.v.roomWG.Done()
	speak := time.NewTicker(r.v.opts.SpeakingInterval)
	defer speak.Stop()
	for {
		select {
		case <-r.wake:
		case <-speak.C:
			r.checkSpeaking(time.Now())
		}
		for {
			r.mu.Lock()
			ops := r.ops
			r.ops = nil
			r.mu.Unlock()
			if len(ops) == 0 {
				break
			}
			for _, f := range ops {
				r.safely(f)
			}
		}
		if len(r.parts) == 0 && r.tryClose() {
			return
		}
	}
}

// safely runs f, turning a panic (a bug, or malformed input that got past
// the checks into Pion) into a logged error instead of a crash.
func (r *room) safely(f func()) {
	defer func() {
		if p := recover(); p != nil {
			r.v.log.Error("voice: panic in room actor", "room", r.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	f()
}

// tryClose closes the empty room unless something is waiting in its
// mailbox, and releases its placement.
func (r *room) tryClose() bool {
	v := r.v
	v.mu.Lock()
	r.mu.Lock()
	if len(r.ops) > 0 {
		r.mu.Unlock()
		v.mu.Unlock()
		return false
	}
	r.closed = true
	if v.rooms[r.id] == r {
		delete(v.rooms, r.id)
	}
	r.mu.Unlock()
	v.mu.Unlock()
	v.metrics.rooms.Dec()
	ctx, cancel := v.bgCtx()
	defer cancel()
	if err := v.opts.Placement.Release(ctx, r.id, v.nodeID); err != nil {
		v.log.Warn("voice: release placement failed", "room", r.id, "err", err)
	}
	return true
}

// serveMedia serves a request that has a reply on this node, which hosts
// (or is to host) the room.
func (v *Service) serveMedia(ctx context.Context, req *voiceReq) (any, error) {
	if v.media.Load() == nil {
		return nil, partyline.Errorf(partyline.ErrUnavailable, "voice is not running on node %s", v.nodeID)
	}
	switch req.Type {
	case wire.TypeVoiceJoin:
		if err := v.checkMember(ctx, req.Room, req.User); err != nil {
			return nil, err
		}
		host, err := v.opts.Placement.Claim(ctx, req.Room, v.nodeID, "")
		if err != nil {
			return nil, partyline.Errorf(partyline.ErrUnavailable, "voice placement: %v", err)
		}
		if host != v.nodeID {
			return nil, partyline.Errorf(partyline.ErrUnavailable, "voice room %s moved to another node; retry", req.Room)
		}
		for range 3 {
			r := v.roomFor(req.Room, true)
			if r == nil {
				break
			}
			res, err := r.call(ctx, func() (any, error) { return r.join(req) })
			if err != errRoomClosed {
				return res, err
			}
		}
		return nil, partyline.Errorf(partyline.ErrUnavailable, "voice is not running on node %s", v.nodeID)
	case wire.TypeVoiceLeave:
		r := v.roomFor(req.Room, false)
		if r == nil {
			return nil, partyline.Errorf(partyline.ErrNotFound, "not in voice room %s", req.Room)
		}
		return r.call(ctx, func() (any, error) { return nil, r.leave(req.Session, ReasonLeft) })
	case wire.TypeVoiceMute, wire.TypeVoiceKick:
		if req.Target != "" {
			_, owner, err := v.opts.Members.Member(ctx, req.Room, req.User)
			if err != nil {
				return nil, err
			}
			if !owner {
				return nil, partyline.Errorf(partyline.ErrForbidden, "only the owner of room %s may do that", req.Room)
			}
		}
		r := v.roomFor(req.Room, false)
		if r == nil {
			return nil, partyline.Errorf(partyline.ErrNotFound, "no one is in voice room %s", req.Room)
		}
		if req.Type == wire.TypeVoiceKick {
			return r.call(ctx, func() (any, error) { return nil, r.kick(req) })
		}
		return r.call(ctx, func() (any, error) { return nil, r.mute(req) })
	}
	return nil, partyline.Errorf(partyline.ErrInvalid, "unknown voice request %q", req.Type)
}

// signalMedia hands voice.answer, voice.ice and a socket close to the
// room's actor without waiting; failures go to the client as error
// messages.
func (v *Service) signalMedia(req *voiceReq) {
	r := v.roomFor(req.Room, false)
	if r != nil && r.post(func() { r.signal(req) }) {
		return
	}
	if req.Type != typeClose {
		v.toClient(req.Origin, req.Session, req.Room,
			signalError(req.Type, req.Room, partyline.Errorf(partyline.ErrNotFound, "%s: not in voice room %s", req.Type, req.Room)))
	}
}

// toClient sends one message to a session on any node, outside any
// participant's ordered stream.
func (v *Service) toClient(origin, session, roomID string, msg []byte) {
	if origin == v.nodeID {
		v.deliverLocal(session, roomID, msg)
		return
	}
	v.goTracked(func() {
		ctx, cancel := v.bgCtx()
		defer cancel()
		_ = v.node.SendNode(ctx, origin, opOut, relayOut{Session: session, Room: roomID, Msg: msg})
	})
}

// find returns the participant of session, or nil.
func (r *room) find(session string) *participant {
	for _, p := range r.parts {
		if p.session == session {
			return p
		}
	}
	return nil
}

func (r *room) infos() []participantInfo {
	out := make([]participantInfo, 0, len(r.parts))
	for _, p := range r.parts {
		out = append(out, p.info())
	}
	return out
}

// join adds a participant, sets up its PeerConnection and renegotiates
// with everyone else.
func (r *room) join(req *voiceReq) (any, error) {
	if r.find(req.Session) != nil {
		return nil, partyline.Errorf(partyline.ErrConflict, "already in voice room %s", r.id)
	}
	for _, p := range r.parts {
		if p.user == req.User {
			return nil, partyline.Errorf(partyline.ErrConflict, "%s is already in voice room %s from another connection", req.User, r.id)
		}
	}
	if len(r.parts) >= r.v.opts.Capacity {
		return nil, partyline.Errorf(partyline.ErrLimitExceeded, "voice room %s is full (%d participants)", r.id, r.v.opts.Capacity)
	}
	p, err := r.newParticipant(req)
	if err != nil {
		return nil, err
	}
	for _, q := range r.parts {
		if err := r.link(q, p); err != nil {
			r.v.log.Error("voice: add a track failed", "room", r.id, "err", err)
		}
		if err := r.link(p, q); err != nil {
			r.v.log.Error("voice: add a track failed", "room", r.id, "err", err)
		}
	}
	r.parts = append(r.parts, p)
	r.v.metrics.participants.Inc()
	p.start()
	for _, q := range r.parts {
		r.negotiate(q)
	}
	r.publish(KindJoined, p.user, roomEvent{User: p.user})
	return joinResult{Participants: r.infos(), ICEServers: iceServers(&r.v.opts, p.user, time.Now())}, nil
}

// leave removes the participant of session.
func (r *room) leave(session, reason string) error {
	p := r.find(session)
	if p == nil {
		return partyline.Errorf(partyline.ErrNotFound, "not in voice room %s", r.id)
	}
	r.remove(p, reason, "")
	return nil
}

func (r *room) kick(req *voiceReq) error {
	var hit bool
	for _, p := range slices.Clone(r.parts) {
		if p.user == req.Target {
			r.remove(p, ReasonKicked, req.User)
			hit = true
		}
	}
	if !hit {
		return partyline.Errorf(partyline.ErrNotFound, "%s is not in voice room %s", req.Target, r.id)
	}
	return nil
}

func (r *room) mute(req *voiceReq) error {
	muted := *req.Muted
	if req.Target == "" {
		p := r.find(req.Session)
		if p == nil {
			return partyline.Errorf(partyline.ErrNotFound, "not in voice room %s", r.id)
		}
		if !muted && p.serverMuted {
			return partyline.Errorf(partyline.ErrForbidden, "muted by the owner of room %s", r.id)
		}
		p.selfMuted = muted
		p.applyMute()
		r.publish(KindMuted, p.user, roomEvent{User: p.user, Muted: &muted})
		return nil
	}
	var hit bool
	for _, p := range r.parts {
		if p.user == req.Target {
			p.serverMuted = muted
			p.applyMute()
			hit = true
		}
	}
	if !hit {
		return partyline.Errorf(partyline.ErrNotFound, "%s is not in voice room %s", req.Target, r.id)
	}
	r.publish(KindMuted, req.User, roomEvent{User: req.Target, Muted: &muted, ServerMuted: &muted, By: req.User})
	return nil
}

// signal serves voice.answer, voice.ice and a socket close on the actor.
func (r *room) signal(req *voiceReq) {
	p := r.find(req.Session)
	if p == nil {
		if req.Type != typeClose {
			r.v.toClient(req.Origin, req.Session, r.id,
				signalError(req.Type, r.id, partyline.Errorf(partyline.ErrNotFound, "%s: not in voice room %s", req.Type, r.id)))
		}
		return
	}
	var err error
	switch req.Type {
	case typeClose:
		r.remove(p, ReasonClosed, "")
		return
	case wire.TypeVoiceAnswer:
		err = r.answer(p, req.SDP)
	case wire.TypeVoiceICE:
		err = p.addCandidate(req.Candidate)
	}
	if err != nil {
		p.send(signalError(req.Type, r.id, err))
	}
}

// remove takes p out of the room: its tracks leave everyone else's
// sessions (renegotiated), its PeerConnection closes, and voice.left goes
// out. by is who kicked them, if anyone.
func (r *room) remove(p *participant, reason, by string) {
	if p.gone {
		return
	}
	p.gone = true
	p.stop()
	r.parts = slices.DeleteFunc(slices.Clone(r.parts), func(q *participant) bool { return q == p })
	r.v.metrics.participants.Dec()
	// A renegotiation below can fail and remove someone else, so walk a
	// copy.
	for _, q := range slices.Clone(r.parts) {
		r.unlink(p, q) // q stops hearing p
		r.unlink(q, p)
		if !r.closing {
			r.negotiate(q)
		}
	}
	switch reason {
	case ReasonLeft, ReasonClosed:
		// The gateway node already forgot the session's room.
	default:
		p.unbindOrigin()
	}
	r.publish(KindLeft, p.user, roomEvent{User: p.user, Reason: reason, By: by})
}

// closeAll removes every participant.
func (r *room) closeAll(reason string) {
	r.closing = true // no renegotiation for those about to go too
	for _, p := range slices.Clone(r.parts) {
		r.remove(p, reason, "")
	}
	r.closing = false
}

// dropOrphans removes participants whose gateway node is not live.
func (r *room) dropOrphans(live map[string]bool) {
	for _, p := range slices.Clone(r.parts) {
		if !live[p.origin] {
			r.remove(p, ReasonNodeLost, "")
		}
	}
}

// roomEvent is the data of voice.joined, voice.left and voice.muted: who
// it is about, and the participant list after it.
type roomEvent struct {
	User         string            `json:"user"`
	Reason       string            `json:"reason,omitempty"`
	Muted        *bool             `json:"muted,omitempty"`
	ServerMuted  *bool             `json:"server_muted,omitempty"`
	By           string            `json:"by,omitempty"`
	Participants []participantInfo `json:"participants"`
}

// publish queues a publication on the room's channel; publications keep
// the actor's order without blocking it on the stream.
func (r *room) publish(kind, from string, ev roomEvent) {
	ev.Participants = r.infos()
	data, err := json.Marshal(ev)
	if err != nil {
		r.v.log.Error("voice: encode publication", "err", err)
		return
	}
	v := r.v
	r.events.push(func() {
		ctx, cancel := v.bgCtx()
		defer cancel()
		if _, err := v.node.Publish(ctx, r.ch, "", kind, from, data); err != nil {
			v.log.Warn("voice: publish failed", "room", r.id, "kind", kind, "err", err)
		}
	})
}
