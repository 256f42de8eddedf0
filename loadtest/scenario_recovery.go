package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/partyline/partyline/loadtest/executor"
	"github.com/partyline/partyline/loadtest/metrics"
	"github.com/partyline/partyline/realtime/client"
	"github.com/partyline/partyline/realtime/wire"
)

func init() {
	RegisterScenario("recovery", "subscribers drop their connections and resume while publishing goes on; gaps and duplicates must be 0", newRecovery)
}

// recovery: one publisher per room publishes at a steady rate for the
// whole scenario; every VU is a subscriber that, each iteration, stays
// connected for a jittered time and then loses its TCP connection, as on
// a network failure. The SDK reconnects and resumes from the last offset.
// Each subscriber checks that the offsets it receives are consecutive:
// a skipped offset is a gap, a repeated one a duplicate.
type recovery struct {
	env     *Env
	m       *wsMetrics
	rooms   *rooms
	gaps    *metrics.Handle // recovery_gaps: publications lost
	dups    *metrics.Handle // recovery_duplicates
	resumes *metrics.Handle // recovery_resumes: resubscriptions after a drop
	failed  *metrics.Handle // recovery_failed: recovered:false or a gap notice
	opts    struct {
		RoomSize int64             `json:"room_size"`
		Rate     float64           `json:"publish_rate"` // publications per second per room
		Online   executor.Duration `json:"online"`       // mean time between drops
	}
	mu         sync.Mutex
	publishers map[string]*recoveryPublisher
	wg         sync.WaitGroup
	stop       chan struct{}
}

type recoveryPublisher struct{ s *session }

type recoverySub struct {
	s    *session
	mu   sync.Mutex
	last uint64 // last offset seen; 0 before the first
	rng  *rand.Rand
}

func newRecovery(env *Env, raw json.RawMessage) (Scenario, error) {
	s := &recovery{
		env: env, m: newWSMetrics(env), rooms: newRooms(env),
		gaps:       env.Metrics.Counter("recovery_gaps").With(env.Tags),
		dups:       env.Metrics.Counter("recovery_duplicates").With(env.Tags),
		resumes:    env.Metrics.Counter("recovery_resumes").With(env.Tags),
		failed:     env.Metrics.Counter("recovery_failed").With(env.Tags),
		publishers: map[string]*recoveryPublisher{},
		stop:       make(chan struct{}),
	}
	s.opts.RoomSize, s.opts.Rate = 20, 5
	s.opts.Online = executor.Duration(time.Second)
	if err := decodeOptions(raw, &s.opts); err != nil {
		return nil, err
	}
	if s.opts.RoomSize < 1 || s.opts.Rate <= 0 || s.opts.Rate > 10 || s.opts.Online <= 0 {
		return nil, configErrorf("recovery: room_size ≥ 1, 0 < publish_rate ≤ 10, online > 0")
	}
	return s, nil
}

// publisher starts room's publisher once; it runs until Close.
func (s *recovery) publisher(ctx context.Context, k int64, roomID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.publishers[roomID] != nil {
		return nil
	}
	user := s.env.User(-k - 1) // publishers are users of their own
	sess, err := dialSession(ctx, s.env, s.m, user, true, nil)
	if err != nil {
		return err
	}
	s.publishers[roomID] = &recoveryPublisher{sess}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		gap := time.Duration(float64(time.Second) / s.opts.Rate)
		next := time.Now()
		for seq := 0; ; seq++ {
			select {
			case <-s.stop:
				return
			case <-time.After(time.Until(next)):
			}
			next = next.Add(gap)
			pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := sess.timed(func() error {
				_, _, err := sess.c.Publish(pctx, "room:"+roomID, json.RawMessage(`{"seq":`+strconv.Itoa(seq)+`}`), "")
				return err
			})
			cancel()
			check(s.env, "publication accepted", err == nil)
		}
	}()
	return nil
}

func (s *recovery) Iterate(ctx context.Context, vu *executor.VU) error {
	st, err := vuState(ctx, vu, s.join)
	if err != nil {
		return err
	}
	if !sleepCtx(ctx, jitter(st.rng, time.Duration(s.opts.Online))) {
		return ctx.Err()
	}
	st.s.drop()
	s.resumes.Add(1)
	return nil
}

// join starts the room's publisher if it has none yet and subscribes the
// VU to the room.
func (s *recovery) join(ctx context.Context, vu *executor.VU) (*recoverySub, error) {
	k := (vu.ID - 1) / s.opts.RoomSize
	roomID, err := s.rooms.get(ctx, k, s.env.User(-k-1))
	if err != nil {
		return nil, err
	}
	if err := s.publisher(ctx, k, roomID); err != nil {
		return nil, err
	}
	ch := "room:" + roomID
	st := &recoverySub{rng: vuRand(vu)}
	st.s, err = dialSession(ctx, s.env, s.m, s.env.User(vu.ID), true, func(m wire.Message) { s.observe(st, ch, m) })
	if err != nil {
		return nil, err
	}
	sub, err := st.s.c.Subscribe(ctx, ch)
	if err != nil {
		st.s.close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	st.mu.Lock()
	st.last = sub.Position.Offset
	st.mu.Unlock()
	return st, nil
}

// observe checks the offsets one subscriber receives.
func (s *recovery) observe(st *recoverySub, ch string, m wire.Message) {
	switch {
	case m.Type == client.TypeRecoveryFailed || (m.Type == wire.TypeGap && m.Channel == ch):
		s.failed.Add(1)
		st.mu.Lock()
		if m.Offset > 0 {
			st.last = m.Offset
		}
		st.mu.Unlock()
	case m.Type == wire.TypeMsg && m.Channel == ch:
		st.mu.Lock()
		switch {
		case st.last == 0 || m.Offset == st.last+1:
		case m.Offset <= st.last:
			s.dups.Add(1)
		default:
			s.gaps.Add(float64(m.Offset - st.last - 1))
		}
		if m.Offset > st.last {
			st.last = m.Offset
		}
		st.mu.Unlock()
	}
}

func (s *recovery) Retire(vu *executor.VU) {
	if st, _ := vu.State.(*recoverySub); st != nil {
		st.s.close()
	}
}

// Close stops the publishers.
func (s *recovery) Close() error {
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.publishers {
		p.s.close()
	}
	return nil
}
