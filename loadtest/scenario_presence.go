package loadtest

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/partyline/partyline/loadtest/executor"
	"github.com/partyline/partyline/loadtest/metrics"
	"github.com/partyline/partyline/realtime/wire"
)

func init() {
	RegisterScenario("presence-churn", "connect and disconnect storms with jittered reconnects; time until every peer sees a join or leave", newPresenceChurn)
}

// presenceChurn: each iteration connects the VU's user, joins its room,
// holds for a jittered time and leaves, then waits a jittered reconnect
// delay. For every join and leave it measures how long until every other
// member online in the room has seen it (presence_convergence).
type presenceChurn struct {
	env   *Env
	m     *wsMetrics
	rooms *rooms
	conv  *metrics.Handle // presence_convergence
	miss  *metrics.Handle // presence_timeouts: peers that never saw it
	opts  struct {
		RoomSize  int64             `json:"room_size"`
		Hold      executor.Duration `json:"hold"`      // mean time online
		Reconnect executor.Duration `json:"reconnect"` // mean time offline
		Timeout   executor.Duration `json:"timeout"`   // how long peers may take
	}
	mu     sync.Mutex
	byRoom map[string]*presenceRoom
}

// presenceRoom tracks who is online in a room and what they still have to
// see: waiting[event] is the set of peers that have not seen it yet.
type presenceRoom struct {
	online  map[string]bool
	waiting map[presenceEvent]*pending
}

type presenceEvent struct {
	user, kind string // kind: join or leave
}

type pending struct {
	at    time.Time
	peers map[string]bool
	done  chan struct{}
}

func newPresenceChurn(env *Env, raw json.RawMessage) (Scenario, error) {
	s := &presenceChurn{
		env: env, m: newWSMetrics(env), rooms: newRooms(env),
		conv:   env.Metrics.Trend("presence_convergence", true).With(env.Tags),
		miss:   env.Metrics.Counter("presence_timeouts").With(env.Tags),
		byRoom: map[string]*presenceRoom{},
	}
	s.opts.RoomSize = 10
	s.opts.Hold = executor.Duration(2 * time.Second)
	s.opts.Reconnect = executor.Duration(500 * time.Millisecond)
	s.opts.Timeout = executor.Duration(10 * time.Second)
	if err := decodeOptions(raw, &s.opts); err != nil {
		return nil, err
	}
	if s.opts.RoomSize < 2 || s.opts.Hold <= 0 || s.opts.Reconnect < 0 || s.opts.Timeout <= 0 {
		return nil, configErrorf("presence-churn: room_size ≥ 2, hold > 0, reconnect ≥ 0, timeout > 0")
	}
	return s, nil
}

func (s *presenceChurn) room(id string) *presenceRoom {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.byRoom[id]
	if r == nil {
		r = &presenceRoom{online: map[string]bool{}, waiting: map[presenceEvent]*pending{}}
		s.byRoom[id] = r
	}
	return r
}

// expect registers that ev must reach every peer online in r now, and
// returns a channel closed when it has.
func (s *presenceChurn) expect(r *presenceRoom, ev presenceEvent) *pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &pending{at: time.Now(), peers: map[string]bool{}, done: make(chan struct{})}
	for u := range r.online {
		if u != ev.user {
			p.peers[u] = true
		}
	}
	if len(p.peers) == 0 {
		close(p.done)
		return p
	}
	r.waiting[ev] = p
	return p
}

// seen notes that peer saw ev.
func (s *presenceChurn) seen(r *presenceRoom, peer string, ev presenceEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := r.waiting[ev]
	if p == nil || !p.peers[peer] {
		return
	}
	delete(p.peers, peer)
	if len(p.peers) == 0 {
		s.conv.Observe(time.Since(p.at))
		delete(r.waiting, ev)
		close(p.done)
	}
}

// setOnline marks peer on or off line; a peer that goes offline no longer
// has to see anything.
func (s *presenceChurn) setOnline(r *presenceRoom, peer string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		r.online[peer] = true
		return
	}
	delete(r.online, peer)
	for ev, p := range r.waiting {
		if p.peers[peer] {
			delete(p.peers, peer)
			if len(p.peers) == 0 {
				s.conv.Observe(time.Since(p.at))
				delete(r.waiting, ev)
				close(p.done)
			}
		}
	}
}

// wait waits for p until the timeout; a miss is counted and forgotten.
func (s *presenceChurn) wait(ctx context.Context, r *presenceRoom, ev presenceEvent, p *pending) bool {
	t := time.NewTimer(time.Duration(s.opts.Timeout))
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	s.mu.Lock()
	if r.waiting[ev] == p {
		delete(r.waiting, ev)
		if ctx.Err() == nil {
			s.miss.Add(1)
		}
	}
	s.mu.Unlock()
	return false
}

func (s *presenceChurn) Iterate(ctx context.Context, vu *executor.VU) error {
	rng, _ := vu.State.(*rand.Rand)
	if rng == nil {
		rng = vuRand(vu)
		vu.State = rng
	}
	user := s.env.User(vu.ID)
	roomID, err := s.rooms.of(ctx, vu.ID, s.opts.RoomSize)
	if err != nil {
		return err
	}
	ch := "room:" + roomID
	r := s.room(roomID)
	sess, err := dialSession(ctx, s.env, s.m, user, false, func(m wire.Message) {
		if m.Type == wire.TypeEvent && m.Channel == ch && (m.Event == wire.EventJoin || m.Event == wire.EventLeave) {
			s.seen(r, user, presenceEvent{m.User, m.Event})
		}
	})
	if err != nil {
		return err
	}
	// The join is announced when the subscription is made: expect it
	// from the peers online just before.
	joinEv := presenceEvent{user, wire.EventJoin}
	p := s.expect(r, joinEv)
	if _, err := sess.c.Subscribe(ctx, ch); err != nil {
		s.mu.Lock()
		delete(r.waiting, joinEv)
		s.mu.Unlock()
		sess.close()
		return err
	}
	s.setOnline(r, user, true)
	check(s.env, "join seen by every peer", s.wait(ctx, r, joinEv, p) || ctx.Err() != nil)
	sleepCtx(ctx, jitter(rng, time.Duration(s.opts.Hold)))
	s.setOnline(r, user, false)
	leaveEv := presenceEvent{user, wire.EventLeave}
	p = s.expect(r, leaveEv)
	sess.close()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	check(s.env, "leave seen by every peer", s.wait(ctx, r, leaveEv, p) || ctx.Err() != nil)
	sleepCtx(ctx, jitter(rng, time.Duration(s.opts.Reconnect)))
	return ctx.Err()
}

func (s *presenceChurn) Retire(*executor.VU) {}
