package clips_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/internal/server/servertest"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/client"
	"github.com/partyline/partyline/realtime/wire"
)

// dial connects a WebSocket client as user; it closes when the test ends.
func (s *stack) dial(user string) *client.Client {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Wait)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{
		URL:              s.srv.URL,
		Token:            func(context.Context) (string, error) { return user, nil },
		DisableReconnect: true,
	})
	if err != nil {
		s.t.Fatalf("dial as %s: %v", user, err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// collector gathers a client's msgs in the background.
type collector struct {
	mu   sync.Mutex
	msgs []wire.Message
	done chan struct{}
}

func collect(t *testing.T, c *client.Client) *collector {
	col := &collector{done: make(chan struct{})}
	go func() {
		defer close(col.done)
		for m := range c.Messages() {
			if m.Type == wire.TypeMsg {
				col.mu.Lock()
				col.msgs = append(col.msgs, m)
				col.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-col.done })
	return col
}

func (col *collector) kind(ch, kind string) []wire.Message {
	col.mu.Lock()
	defer col.mu.Unlock()
	var out []wire.Message
	for _, m := range col.msgs {
		if m.Channel == ch && m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

type statsData struct {
	Clip         string `json:"clip"`
	LikeCount    int64  `json:"like_count"`
	ViewCount    int64  `json:"view_count"`
	CommentCount int64  `json:"comment_count"`
}

func TestClipNewReachesFollower(t *testing.T) {
	s := newStack(t, stackOpts{})
	ctx := t.Context()
	for _, u := range []string{"ada", "bo", "cy", "dee"} {
		if _, err := s.db.EnsureUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"bo", "cy"} {
		if _, err := s.db.Follow(ctx, f, "ada"); err != nil {
			t.Fatal(err)
		}
	}
	followers := map[string]*collector{}
	for _, u := range []string{"bo", "cy", "dee"} { // dee does not follow ada
		c := s.dial(u)
		if _, err := c.Subscribe(ctx, "user:"+u); err != nil {
			t.Fatalf("%s: subscribe: %v", u, err)
		}
		followers[u] = collect(t, c)
	}
	private := s.create("ada", clips.Private)
	s.upload("ada", private.ID, fakeMP4(1000), "")
	c := s.create("ada", clips.Public)
	if r := s.upload("ada", c.ID, fakeMP4(1000), "video/mp4"); r.Status != http.StatusOK {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	s.waitStatus("ada", private.ID, clips.StatusReady)
	for _, u := range []string{"bo", "cy"} {
		var got []wire.Message
		testenv.Eventually(t, "clip.new on user:"+u, func() bool {
			got = followers[u].kind("user:"+u, clips.KindNew)
			return len(got) > 0
		})
		clip := servertest.Decode[clips.Resource](t, got[0].Data)
		if len(got) != 1 || clip.ID != c.ID || clip.Status != clips.StatusReady || clip.Owner != "ada" {
			t.Errorf("%s got %d clip.new, first %+v; want one for %s", u, len(got), clip, c.ID)
		}
	}
	if got := followers["dee"].kind("user:dee", clips.KindNew); len(got) != 0 {
		t.Errorf("a non-follower got clip.new: %v", got)
	}
}

func TestClipChannel(t *testing.T) {
	s := newStack(t, stackOpts{})
	ctx := t.Context()
	pub := s.seed(kindPublic)
	priv := s.seed(kindPrivate)
	bo := s.dial("bo")
	col := collect(t, bo)
	ch := "clip:" + pub.id
	if _, err := bo.Subscribe(ctx, ch); err != nil {
		t.Fatalf("subscribe to a public clip: %v", err)
	}
	for _, tc := range []struct{ ch, code string }{
		{"clip:" + priv.id, "not_found"},
		{"clip:c_01NOPE", "not_found"},
	} {
		if _, err := bo.Subscribe(ctx, tc.ch); client.ErrorCode(err) != tc.code {
			t.Errorf("subscribe %s: %v, want %s", tc.ch, err, tc.code)
		}
	}
	// Only the server publishes there. (Without chat, pub is not a request
	// type at all, so the connection may simply end.)
	if _, _, err := s.dial("cy").Publish(ctx, ch, map[string]string{"text": "hi"}, ""); err == nil {
		t.Errorf("a client published on %s", ch)
	}
	ada := s.dial("ada")
	if _, err := ada.Subscribe(ctx, "clip:"+priv.id); err != nil {
		t.Errorf("the owner cannot subscribe to their private clip: %v", err)
	}

	// A burst of engagement: at most one clip.stats per 500 ms, the last
	// one carrying the final counts.
	for i := range 12 {
		u := fmt.Sprint("fan", i)
		s.srv.Want(s.t, 200, servertest.Request{Method: "PUT", Path: "/v1/clips/" + pub.id + "/like", Token: u})
	}
	s.srv.Want(s.t, 204, servertest.Request{Method: "POST", Path: "/v1/clips/" + pub.id + "/views", Token: "bo", Body: map[string]any{"watched_ms": 900}})
	s.srv.Want(s.t, 201, servertest.Request{Method: "POST", Path: "/v1/clips/" + pub.id + "/comments", Token: "bo", Body: map[string]any{"body": "gg"}})
	want := statsData{Clip: pub.id, LikeCount: 12, ViewCount: 1, CommentCount: 2} // the seeded comment and this one
	var msgs []wire.Message
	testenv.Eventually(t, "clip.stats with the final counts", func() bool {
		msgs = col.kind(ch, clips.KindStats)
		return len(msgs) > 0 && servertest.Decode[statsData](t, msgs[len(msgs)-1].Data) == want
	})
	for i := 1; i < len(msgs); i++ {
		if gap := msgs[i].TS - msgs[i-1].TS; gap < 450 {
			t.Errorf("clip.stats %d came %d ms after the one before, want at least 500", i, gap)
		}
	}
	if len(msgs) > 4 {
		t.Errorf("%d clip.stats for one burst, want it coalesced", len(msgs))
	}
}

func TestConcurrentLikesExact(t *testing.T) {
	s := newStack(t, stackOpts{})
	cl := s.seed(kindPublic)
	path := "/v1/clips/" + cl.id + "/like"
	const n = 50
	users := make([]string, n)
	for i := range users {
		users[i] = "liker" + strconv.Itoa(i)
		if _, err := s.db.EnsureUser(t.Context(), users[i]); err != nil {
			t.Fatal(err)
		}
	}
	run := func(method string, wantLiked bool) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for _, u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := http.NewRequest(method, s.srv.URL+path, nil)
				if err != nil {
					errs <- err.Error()
					return
				}
				r.Header.Set("Authorization", "Bearer "+u)
				res, err := s.srv.HTTP.Do(r)
				if err != nil {
					errs <- err.Error()
					return
				}
				defer res.Body.Close()
				var body struct {
					Liked bool `json:"liked"`
				}
				if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&body) != nil || body.Liked != wantLiked {
					errs <- fmt.Sprintf("%s as %s: status %d liked %v", method, u, res.StatusCode, body.Liked)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	}
	for _, step := range []struct {
		method string
		liked  bool
		want   int64
	}{
		{"PUT", true, n},
		{"PUT", true, n}, // idempotent
		{"DELETE", false, 0},
		{"DELETE", false, 0},
	} {
		run(step.method, step.liked)
		if got := s.get("ada", cl.id).LikeCount; got != step.want {
			t.Fatalf("after %d concurrent %s: like_count %d, want %d", n, step.method, got, step.want)
		}
	}
}

func TestRateLimits(t *testing.T) {
	s := newStack(t, stackOpts{edit: func(o *clips.Options) {
		o.CommentLimit = clips.RateLimit{Burst: 2, Per: time.Hour}
		o.UploadLimit = clips.RateLimit{Burst: 1, Per: time.Hour}
	}})
	cl := s.seed(kindPublic)
	path := "/v1/clips/" + cl.id + "/comments"
	for i := range 2 {
		r := s.srv.Want(s.t, 201, servertest.Request{Method: "POST", Path: path, Token: "bo", Body: map[string]any{"body": "gg"}})
		if got, want := r.Header.Get("RateLimit"), fmt.Sprintf(`"comments";r=%d;t=`, 1-i); len(got) < len(want) || got[:len(want)] != want {
			t.Errorf("RateLimit = %q, want it to start %q", got, want)
		}
		if got := r.Header.Get("RateLimit-Policy"); got != `"comments";q=2;w=3600` {
			t.Errorf("RateLimit-Policy = %q", got)
		}
	}
	r := s.srv.Want(s.t, 429, servertest.Request{Method: "POST", Path: path, Token: "bo", Body: map[string]any{"body": "gg"}})
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 3600 {
		t.Errorf("Retry-After = %q, want 1 to 3600 seconds", r.Header.Get("Retry-After"))
	}
	// Limits are per user.
	s.srv.Want(s.t, 201, servertest.Request{Method: "POST", Path: path, Token: "cy", Body: map[string]any{"body": "gg"}})
	s.create("bo", clips.Public)
	s.srv.Want(s.t, 429, servertest.Request{Method: "POST", Path: "/v1/clips", Token: "bo", Body: map[string]any{"title": "x", "game": "valorant"}})
}
