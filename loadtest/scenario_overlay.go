package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/partyline/partyline/loadtest/executor"
)

func init() {
	RegisterScenario("overlay", "a realistic overlay user: hello, a few rooms and a DM, friends' status, status changes, occasional chat, feed browsing", newOverlay)
}

// overlay is the gamer with the desktop overlay open: on its first
// iteration a VU connects, subscribes to its user channel, to friends'
// status channels, to a few rooms of a shared pool and to a DM; then each
// iteration is one action picked by weight, after a jittered think time.
type overlay struct {
	env   *Env
	m     *wsMetrics
	http  *httpMetrics
	rooms *rooms
	opts  struct {
		RoomPool     int64             `json:"room_pool"`      // shared public rooms
		RoomsPerUser int               `json:"rooms_per_user"` // rooms each user is in
		Friends      int               `json:"friends"`        // status subscriptions
		Think        executor.Duration `json:"think"`          // mean time between actions
		// Weights of the actions: chat, status, typing, history, presence,
		// feed. Given, they replace the defaults: a missing action is 0.
		Weights map[string]int `json:"weights"`
	}
	actions []string // expanded by weight
	games   []string
}

type overlayVU struct {
	s     *session
	user  string
	rooms []string
	dm    string
	rng   *rand.Rand
}

func newOverlay(env *Env, raw json.RawMessage) (Scenario, error) {
	s := &overlay{env: env, m: newWSMetrics(env), http: newHTTPMetrics(env), rooms: newRooms(env),
		games: []string{"valorant", "cs2", "league-of-legends", "fortnite", "apex-legends"}}
	s.opts.RoomPool, s.opts.RoomsPerUser, s.opts.Friends = 20, 3, 5
	s.opts.Think = executor.Duration(3 * time.Second)
	if err := decodeOptions(raw, &s.opts); err != nil {
		return nil, err
	}
	if s.opts.Weights == nil {
		s.opts.Weights = map[string]int{"chat": 30, "status": 15, "typing": 15, "history": 10, "presence": 10, "feed": 20}
	}
	if s.opts.RoomPool < 1 || s.opts.RoomsPerUser < 0 || s.opts.Friends < 0 || s.opts.Think < 0 {
		return nil, configErrorf("overlay: room_pool ≥ 1; rooms_per_user, friends and think ≥ 0")
	}
	for _, a := range []string{"chat", "status", "typing", "history", "presence", "feed"} {
		w := s.opts.Weights[a]
		if w < 0 {
			return nil, configErrorf("overlay: weight of %s is negative", a)
		}
		for range w {
			s.actions = append(s.actions, a)
		}
	}
	for a := range s.opts.Weights {
		if _, ok := map[string]bool{"chat": true, "status": true, "typing": true, "history": true, "presence": true, "feed": true}[a]; !ok {
			return nil, configErrorf("overlay: unknown action %q in weights", a)
		}
	}
	if len(s.actions) == 0 {
		return nil, configErrorf("overlay: every weight is 0")
	}
	return s, nil
}

func (s *overlay) connect(ctx context.Context, vu *executor.VU) (*overlayVU, error) {
	st := &overlayVU{user: s.env.User(vu.ID), rng: vuRand(vu)}
	var err error
	st.s, err = dialSession(ctx, s.env, s.m, st.user, true, nil)
	if err != nil {
		return nil, err
	}
	subscribe := func(ch string) error {
		return st.s.timed(func() error { _, err := st.s.c.Subscribe(ctx, ch); return err })
	}
	fail := func(err error) (*overlayVU, error) {
		check(s.env, "overlay connected", false)
		st.s.close()
		return nil, err
	}
	if err := subscribe("user:" + st.user); err != nil {
		return fail(err)
	}
	for i := range s.opts.RoomsPerUser {
		k := (vu.ID + int64(i)*7) % s.opts.RoomPool
		id, err := s.rooms.get(ctx, k, s.env.User(1_000_000+k))
		if err != nil {
			return fail(err)
		}
		st.rooms = append(st.rooms, "room:"+id)
		if err := subscribe("room:" + id); err != nil {
			return fail(err)
		}
	}
	for i := 1; i <= s.opts.Friends; i++ {
		friend := s.env.User(max(1, vu.ID+int64(i)))
		if err := subscribe("status:" + friend); err != nil {
			return fail(err)
		}
	}
	a, b := st.user, s.env.User(vu.ID+1)
	if b < a {
		a, b = b, a
	}
	st.dm = "dm:" + a + ":" + b
	if err := subscribe(st.dm); err != nil {
		return fail(err)
	}
	check(s.env, "overlay connected", true)
	return st, nil
}

func (s *overlay) Iterate(ctx context.Context, vu *executor.VU) error {
	st, err := vuState(ctx, vu, s.connect)
	if err != nil {
		return err
	}
	if !sleepCtx(ctx, jitter(st.rng, time.Duration(s.opts.Think))) {
		return ctx.Err()
	}
	pick := func(chs []string) string {
		if len(chs) == 0 {
			return st.dm
		}
		return chs[st.rng.IntN(len(chs))]
	}
	switch a := s.actions[st.rng.IntN(len(s.actions))]; a {
	case "chat":
		ch := pick(append(st.rooms, st.dm))
		data := json.RawMessage(`{"text":"gg","sent":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `}`)
		err = st.s.timed(func() error { _, _, err := st.s.c.Publish(ctx, ch, data, ""); return err })
	case "status":
		status := []string{"online", "idle", "in_game", "dnd"}[st.rng.IntN(4)]
		game := ""
		if status == "in_game" {
			game = s.games[st.rng.IntN(len(s.games))]
		}
		err = st.s.timed(func() error { return st.s.c.SetStatus(ctx, status, game, "") })
	case "typing":
		err = st.s.c.Typing(ctx, pick(st.rooms))
		s.m.sent.Add(1)
	case "history":
		err = st.s.timed(func() error { _, _, err := st.s.c.History(ctx, pick(st.rooms), "", 50); return err })
	case "presence":
		err = st.s.timed(func() error { _, err := st.s.c.Presence(ctx, pick(st.rooms)); return err })
	case "feed":
		err = s.browse(ctx, st)
	}
	check(s.env, "overlay action succeeded", err == nil || ctx.Err() != nil)
	if err != nil && ctx.Err() == nil {
		return err
	}
	return ctx.Err()
}

// browse fetches a page of the for-you feed, as the clip panel does.
func (s *overlay) browse(ctx context.Context, st *overlayVU) error {
	token, err := s.env.Tokens.Token(ctx, st.user)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.env.URL("/v1/feed/for-you?limit=10"), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, body, err := s.http.do(s.env, req, "GET /v1/feed/for-you")
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("for-you feed: %s: %.200s", resp.Status, body)
	}
	return nil
}

func (s *overlay) Retire(vu *executor.VU) {
	if st, _ := vu.State.(*overlayVU); st != nil {
		st.s.close()
	}
}
