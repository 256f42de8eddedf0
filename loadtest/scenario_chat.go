package loadtest

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/partyline/partyline/loadtest/executor"
	"github.com/partyline/partyline/realtime/wire"
)

func init() {
	RegisterScenario("chat-fanout", "rooms of room_size members publishing at a Poisson rate; send to every recipient latency", newChatFanout)
}

type chatFanout struct {
	env   *Env
	m     *wsMetrics
	rooms *rooms
	opts  struct {
		// RoomSize is the members per room: VU n is in room (n-1)/RoomSize.
		RoomSize int64 `json:"room_size"`
		// Rate is each member's mean publications per second.
		Rate float64 `json:"rate"`
		// MessageBytes pads each message's data to about this size.
		MessageBytes int `json:"message_bytes"`
	}
	pad string
}

type chatVU struct {
	s    *session
	ch   string
	next time.Time // the intended time of the next publication
	rng  *rand.Rand
}

func newChatFanout(env *Env, raw json.RawMessage) (Scenario, error) {
	s := &chatFanout{env: env, m: newWSMetrics(env), rooms: newRooms(env)}
	s.opts.RoomSize, s.opts.Rate, s.opts.MessageBytes = 10, 1, 64
	if err := decodeOptions(raw, &s.opts); err != nil {
		return nil, err
	}
	if s.opts.RoomSize < 1 || s.opts.Rate <= 0 || s.opts.Rate > 10 || s.opts.MessageBytes < 0 || s.opts.MessageBytes > 16000 {
		return nil, configErrorf("chat-fanout: room_size ≥ 1, 0 < rate ≤ 10 (the server's per-connection publish rate) and 0 ≤ message_bytes ≤ 16000")
	}
	s.pad = padFor(s.opts.MessageBytes)
	return s, nil
}

func (s *chatFanout) Iterate(ctx context.Context, vu *executor.VU) error {
	st, err := vuState(ctx, vu, s.join)
	if err != nil {
		return err
	}
	// Poisson arrivals: exponential gaps, measured from the intended time,
	// so a late send shows up in the latency instead of being hidden.
	if !sleepCtx(ctx, time.Until(st.next)) {
		return ctx.Err()
	}
	sent := st.next
	st.next = st.next.Add(time.Duration(st.rng.ExpFloat64() / s.opts.Rate * float64(time.Second)))
	data := json.RawMessage(`{"sent":` + strconv.FormatInt(sent.UnixNano(), 10) + `,"pad":"` + s.pad + `"}`)
	return st.s.timed(func() error {
		_, _, err := st.s.c.Publish(ctx, st.ch, data, "")
		return err
	})
}

// join connects the VU's user and subscribes it to its room.
func (s *chatFanout) join(ctx context.Context, vu *executor.VU) (*chatVU, error) {
	user := s.env.User(vu.ID)
	room, err := s.rooms.of(ctx, vu.ID, s.opts.RoomSize)
	if err != nil {
		return nil, err
	}
	ch := "room:" + room
	fanout := s.m.fanout
	sess, err := dialSession(ctx, s.env, s.m, user, true, func(m wire.Message) {
		if m.Type != wire.TypeMsg || m.Channel != ch || m.From == user {
			return
		}
		if sent, ok := sentTime(m.Data); ok {
			fanout.Observe(time.Duration(time.Now().UnixNano() - sent))
		}
	})
	if err != nil {
		return nil, err
	}
	_, err = sess.c.Subscribe(ctx, ch)
	if !check(s.env, "joined the room", err == nil) {
		sess.close()
		return nil, err
	}
	rng := vuRand(vu)
	// Start at a random point of the first gap, so that members do not
	// publish in step.
	first := time.Duration(rng.Float64() / s.opts.Rate * float64(time.Second))
	return &chatVU{s: sess, ch: ch, next: time.Now().Add(first), rng: rng}, nil
}

func (s *chatFanout) Retire(vu *executor.VU) {
	if st, _ := vu.State.(*chatVU); st != nil {
		st.s.close()
	}
}

// sentTime finds data's "sent" (Unix nanoseconds).
func sentTime(data json.RawMessage) (int64, bool) {
	var v struct {
		Sent int64 `json:"sent"`
	}
	if json.Unmarshal(data, &v) != nil || v.Sent == 0 {
		return 0, false
	}
	return v.Sent, true
}
