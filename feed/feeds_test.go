package feed_test

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/internal/server/servertest"
	"github.com/partyline/partyline/internal/testenv"
)

func TestFollowingFeed(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.users("fan", "a", "b", "stranger")
	e.follow("fan", "a")
	e.follow("fan", "b")
	base := time.Now().Add(-time.Hour).UTC()
	var want []string
	for i := range 12 {
		id := fmt.Sprintf("c_%02d", i)
		e.clip(id, []string{"a", "b"}[i%2], "cs2", base.Add(time.Duration(i)*time.Minute))
		want = append([]string{id}, want...) // newest first
	}
	e.clip("x_stranger", "stranger", "cs2", base.Add(time.Hour))
	e.clip("x_unlisted", "a", "cs2", base.Add(time.Hour), func(c *clips.Clip) { c.Visibility = clips.Unlisted })
	e.clip("x_private", "b", "cs2", base.Add(time.Hour), func(c *clips.Clip) { c.Visibility = clips.Private })
	e.clip("x_processing", "a", "cs2", base.Add(time.Hour), func(c *clips.Clip) { c.Status = clips.StatusProcessing })

	if diff := cmp.Diff(want, allIDs(e.pageAll("/v1/feed/following", "fan", 100, nil))); diff != "" {
		t.Errorf("following feed (-want +got):\n%s", diff)
	}
	t.Run("StableWhileClipsArrive", func(t *testing.T) {
		pages := e.pageAll("/v1/feed/following", "fan", 5, func(n int) {
			e.clip(fmt.Sprintf("n_%02d", n), "a", "cs2", time.Now())
		})
		if diff := cmp.Diff(want, allIDs(pages)); diff != "" {
			t.Errorf("paging while clips arrive (-want +got):\n%s", diff)
		}
		for _, p := range pages {
			for _, it := range p.Items {
				if it.Source != "following" {
					t.Errorf("item %s has source %q", it.Clip.ID, it.Source)
				}
			}
		}
	})
	t.Run("NewPostAtOnce", func(t *testing.T) {
		e.clip("z_live", "b", "cs2", time.Now().Add(time.Minute))
		p := servertest.Decode[page](t, e.want(http.StatusOK, "GET", "/v1/feed/following?limit=1", "fan"))
		if diff := cmp.Diff([]string{"z_live"}, p.ids()); diff != "" {
			t.Errorf("first item after a new post (-want +got):\n%s", diff)
		}
	})
	t.Run("FollowingNobody", func(t *testing.T) {
		p := servertest.Decode[page](t, e.want(http.StatusOK, "GET", "/v1/feed/following", "stranger"))
		if len(p.Items) != 0 || p.NextCursor != "" || p.Items == nil {
			t.Errorf("following feed of someone following nobody = %+v", p)
		}
	})
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.users("ada", "bo")
	e.follow("ada", "bo")
	for i := range 3 {
		e.clip(fmt.Sprintf("c_%d", i), "bo", "cs2", time.Now().Add(-time.Duration(i)*time.Minute))
	}
	trendCursor := servertest.Decode[page](t, e.want(http.StatusOK, "GET", "/v1/feed/trending?limit=1", "ada")).NextCursor
	forYou := servertest.Decode[page](t, e.want(http.StatusOK, "GET", "/v1/feed/for-you?limit=1", "ada"))
	followCursor := servertest.Decode[page](t, e.want(http.StatusOK, "GET", "/v1/feed/following?limit=1", "ada")).NextCursor
	if forYou.NextCursor == "" || followCursor == "" {
		t.Fatalf("setup: want next cursors from for-you (%q) and following (%q)", forYou.NextCursor, followCursor)
	}
	for _, tc := range []struct {
		name, path, user string
		status           int
	}{
		{"following anonymous", "/v1/feed/following", "", http.StatusUnauthorized},
		{"trending anonymous", "/v1/feed/trending", "", http.StatusUnauthorized},
		{"for-you anonymous", "/v1/feed/for-you", "", http.StatusUnauthorized},
		{"following bad cursor", "/v1/feed/following?cursor=%25%25%25", "ada", http.StatusBadRequest},
		{"following for-you cursor", "/v1/feed/following?cursor=" + forYou.NextCursor, "ada", http.StatusBadRequest},
		{"following limit zero", "/v1/feed/following?limit=0", "ada", http.StatusBadRequest},
		{"following limit negative", "/v1/feed/following?limit=-3", "ada", http.StatusBadRequest},
		{"following limit too big", "/v1/feed/following?limit=101", "ada", http.StatusBadRequest},
		{"following limit empty", "/v1/feed/following?limit=", "ada", http.StatusBadRequest},
		{"trending bad cursor", "/v1/feed/trending?cursor=bm9wZQ", "ada", http.StatusBadRequest},
		{"trending limit", "/v1/feed/trending?limit=x", "ada", http.StatusBadRequest},
		{"trending bad game", "/v1/feed/trending?game=%00", "ada", http.StatusBadRequest},
		{"trending long game", "/v1/feed/trending?game=" + strings.Repeat("x", 65), "ada", http.StatusBadRequest},
		{"for-you bad cursor", "/v1/feed/for-you?cursor=!!", "ada", http.StatusBadRequest},
		{"for-you following cursor", "/v1/feed/for-you?cursor=" + followCursor, "ada", http.StatusBadRequest},
		{"for-you limit", "/v1/feed/for-you?limit=1000", "ada", http.StatusBadRequest},
		{"for-you cursor of another viewer", "/v1/feed/for-you?cursor=" + forYou.NextCursor, "bo", http.StatusOK},
		{"unknown route", "/v1/feed/nope", "ada", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.want(tc.status, "GET", tc.path, tc.user)
		})
	}
	if trendCursor != "" {
		e.want(http.StatusBadRequest, "GET", "/v1/feed/trending?game=other&cursor="+trendCursor, "ada")
	}
	// Another viewer's cursor finds no snapshot of theirs: a fresh list.
	p := servertest.Decode[page](t, e.want(http.StatusOK, "GET", "/v1/feed/for-you?cursor="+forYou.NextCursor, "bo"))
	if !p.Restarted {
		t.Errorf("another viewer's cursor did not restart the feed")
	}
}

// TestNeverListed checks that unlisted, private and unfinished clips appear
// in no feed, however much engagement they get.
func TestNeverListed(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.start()
	e.users("viewer", "maker", "crowd")
	e.follow("viewer", "maker")
	now := e.clock.Now()
	e.clip("ok", "maker", "cs2", now.Add(-time.Hour))
	hidden := map[string]func(*clips.Clip){
		"unlisted":   func(c *clips.Clip) { c.Visibility = clips.Unlisted },
		"private":    func(c *clips.Clip) { c.Visibility = clips.Private },
		"processing": func(c *clips.Clip) { c.Status = clips.StatusProcessing },
		"failed":     func(c *clips.Clip) { c.Status = clips.StatusFailed },
	}
	for id, edit := range hidden {
		e.clip(id, "maker", "cs2", now.Add(-time.Hour), edit)
	}
	// The viewer and a crowd love every clip, hidden ones most.
	n := 0
	for _, id := range []string{"ok", "unlisted", "private", "processing", "failed"} {
		for _, u := range []string{"viewer", "crowd"} {
			e.event(u, id, clips.EventView, 20000)
			e.event(u, id, clips.EventLike, 0)
			e.event(u, id, clips.EventShare, 0)
			n += 3
		}
	}
	testenv.Eventually(t, "events learned", func() bool { return e.feed.Learned() >= int64(n) })
	e.feed.RefreshBoard()

	for _, path := range []string{"/v1/feed/following", "/v1/feed/trending", "/v1/feed/trending?game=cs2", "/v1/feed/for-you"} {
		for _, user := range []string{"viewer", "crowd"} {
			got := allIDs(e.pageAll(path, user, 2, nil))
			for _, id := range got {
				if hidden[id] != nil {
					t.Errorf("%s as %s lists %s", path, user, id)
				}
			}
		}
	}
	if got := allIDs(e.pageAll("/v1/feed/trending", "crowd", 10, nil)); !slices.Contains(got, "ok") {
		t.Errorf("trending = %v, want the listable clip in it", got)
	}
	// A clip made private after it trended leaves the feed at once.
	c, err := e.db.GetClip(t.Context(), "ok")
	if err != nil {
		t.Fatal(err)
	}
	c.Visibility = clips.Private
	if err := e.db.UpdateClip(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if got := allIDs(e.pageAll("/v1/feed/trending", "crowd", 10, nil)); len(got) != 0 {
		t.Errorf("trending after the clip went private = %v", got)
	}
}

func TestTrendingFeed(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.start()
	e.users("u0", "maker")
	now := e.clock.Now()
	var fans []string
	for i := range 6 {
		fans = append(fans, fmt.Sprintf("fan%d", i))
	}
	e.users(fans...)
	// Clip i gets i likes; cs2 clips are even, dota odd.
	n := 0
	for i := range 6 {
		id := fmt.Sprintf("t_%d", i)
		e.clip(id, "maker", []string{"cs2", "dota"}[i%2], now.Add(-time.Hour))
		for _, u := range fans[:i] {
			e.event(u, id, clips.EventLike, 0)
			n++
		}
	}
	testenv.Eventually(t, "events learned", func() bool { return e.feed.Learned() >= int64(n) })
	e.feed.RefreshBoard()
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"", []string{"t_5", "t_4", "t_3", "t_2", "t_1"}},
		{"?game=cs2", []string{"t_4", "t_2"}},
		{"?game=dota", []string{"t_5", "t_3", "t_1"}},
		{"?game=none", nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			pages := e.pageAll("/v1/feed/trending"+tc.query, "u0", 2, nil)
			if diff := cmp.Diff(tc.want, allIDs(pages)); diff != "" {
				t.Errorf("trending%s (-want +got):\n%s", tc.query, diff)
			}
			for _, p := range pages {
				for _, it := range p.Items {
					if it.Source != "trending" || it.Score == nil || *it.Score <= 0 {
						t.Errorf("item %+v: want source trending and a positive score", it)
					}
				}
			}
		})
	}
	t.Run("SnapshotStable", func(t *testing.T) {
		// New engagement lifts t_0 to the top, but a list being paged keeps
		// its order; the next first page shows the change.
		first := servertest.Decode[page](t, e.want(http.StatusOK, "GET", "/v1/feed/trending?limit=2", "u0"))
		for _, u := range fans {
			e.event(u, "t_0", clips.EventShare, 0)
			e.event(u, "t_0", clips.EventLike, 0)
		}
		testenv.Eventually(t, "events learned", func() bool { return e.feed.Learned() >= int64(n+12) })
		e.feed.RefreshBoard()
		got := first.ids()
		cursor := first.NextCursor
		for cursor != "" {
			p := servertest.Decode[page](t, e.want(http.StatusOK, "GET", "/v1/feed/trending?limit=2&cursor="+cursor, "u0"))
			got = append(got, p.ids()...)
			cursor = p.NextCursor
		}
		if diff := cmp.Diff([]string{"t_5", "t_4", "t_3", "t_2", "t_1"}, got); diff != "" {
			t.Errorf("paging a snapshot while scores move (-want +got):\n%s", diff)
		}
		fresh := servertest.Decode[page](t, e.want(http.StatusOK, "GET", "/v1/feed/trending?limit=1", "u0"))
		if diff := cmp.Diff([]string{"t_0"}, fresh.ids()); diff != "" {
			t.Errorf("a new first page (-want +got):\n%s", diff)
		}
	})
}

// TestResyncCountsOnce: an event stored and queued before Run reads the
// store is in what Run reads, so learning from it later must not count it
// again. Clips with the same engagement, one from before Run started and
// one from after, rank with the same score.
func TestResyncCountsOnce(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.users("u0", "maker", "fan0", "fan1", "fan2")
	now := e.clock.Now()
	e.clip("before", "maker", "cs2", now.Add(-time.Hour))
	e.clip("after", "maker", "cs2", now.Add(-time.Hour))
	engage := func(id string) {
		for _, u := range []string{"fan0", "fan1", "fan2"} {
			e.event(u, id, clips.EventLike, 0)
			e.event(u, id, clips.EventShare, 0)
		}
	}
	engage("before")
	e.start()
	engage("after")
	testenv.Eventually(t, "events learned", func() bool { return e.feed.Learned() >= 12 })
	e.feed.RefreshBoard()
	p := servertest.Decode[page](t, e.want(http.StatusOK, "GET", "/v1/feed/trending", "u0"))
	scores := map[string]float64{}
	for _, it := range p.Items {
		if it.Score != nil {
			scores[it.Clip.ID] = *it.Score
		}
	}
	// The store dates points by the hour they were earned in, so the two
	// may differ by the decay of up to half an hour (6%); counted twice,
	// one would be worth about double the other.
	if b, a := scores["before"], scores["after"]; a <= 0 || b < 0.9*a || b > 1.1*a {
		t.Errorf("trending scores: before Run %v, after %v; want them equal", b, a)
	}
}

// TestTrendingDecay: a clip that went viral a while ago sinks below a fresh
// one that people like now, once enough time has passed. With a 6 h
// half-life and gravity 1.5, 500 likes at T0 outrank 20 likes on a clip
// posted and liked 6 h later, and fall below them when that happens 8 h
// later (the scores cross at about 7.5 h).
func TestTrendingDecay(t *testing.T) {
	for _, tc := range []struct {
		after     time.Duration
		viralWins bool
	}{
		{time.Hour, true},
		{6 * time.Hour, true},
		{8 * time.Hour, false},
		{24 * time.Hour, false},
	} {
		t.Run(tc.after.String(), func(t *testing.T) {
			e := newEnv(t, nil, nil)
			e.start()
			t0 := e.clock.Now().Add(-48 * time.Hour)
			e.clock.Set(t0)
			var crowd []string
			for i := range 500 {
				crowd = append(crowd, fmt.Sprintf("p%03d", i))
			}
			e.users("maker", "other")
			e.clip("viral", "maker", "cs2", t0)
			for _, u := range crowd {
				e.feed.Observe(clips.Event{ClipID: "viral", UserID: u, Kind: clips.EventLike, At: t0})
			}
			later := t0.Add(tc.after)
			e.clock.Set(later)
			e.clip("fresh", "other", "cs2", later)
			for _, u := range crowd[:20] {
				e.feed.Observe(clips.Event{ClipID: "fresh", UserID: u, Kind: clips.EventLike, At: later})
			}
			testenv.Eventually(t, "events learned", func() bool { return e.feed.Learned() >= 520 })
			e.feed.RefreshBoard()
			want := []string{"fresh", "viral"}
			if tc.viralWins {
				want = []string{"viral", "fresh"}
			}
			got := servertest.Decode[page](t, e.want(http.StatusOK, "GET", "/v1/feed/trending", "maker")).ids()
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("trending %v after the viral clip (-want +got):\n%s", tc.after, diff)
			}
		})
	}
}

func TestForYou(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.start()
	e.users("v", "followed", "liked", "gamer", "popular", "crowd1", "crowd2")
	e.follow("v", "followed")
	now := e.clock.Now()
	at := func(i int) time.Time { return now.Add(-time.Duration(i+1) * time.Minute) }
	for i := range 6 {
		e.clip(fmt.Sprintf("f_%d", i), "followed", "apex", at(i))
		e.clip(fmt.Sprintf("l_%d", i), "liked", "cs2", at(i))
		e.clip(fmt.Sprintf("g_%d", i), "gamer", "cs2", at(i))
		e.clip(fmt.Sprintf("p_%d", i), "popular", "dota", at(i))
		e.clip(fmt.Sprintf("v_%d", i), "v", "cs2", at(i))
	}
	e.clip("x_private", "liked", "cs2", now, func(c *clips.Clip) { c.Visibility = clips.Private })
	e.clip("x_unlisted", "gamer", "cs2", now, func(c *clips.Clip) { c.Visibility = clips.Unlisted })
	// v loves "liked" (cs2) and watched l_0 in full; a crowd makes dota trend.
	e.event("v", "l_0", clips.EventView, 20000)
	e.event("v", "l_0", clips.EventLike, 0)
	e.event("v", "l_1", clips.EventLike, 0)
	n := 3
	for _, u := range []string{"crowd1", "crowd2"} {
		for i := range 6 {
			e.event(u, fmt.Sprintf("p_%d", i), clips.EventLike, 0)
			n++
		}
	}
	testenv.Eventually(t, "events learned", func() bool { return e.feed.Learned() >= int64(n) })
	e.feed.RefreshBoard()

	pages := e.pageAll("/v1/feed/for-you", "v", 100, nil)
	if len(pages) != 1 {
		t.Fatalf("for-you took %d pages of 100", len(pages))
	}
	items := pages[0].Items
	sources := map[string]string{}
	var owners []string
	for _, it := range items {
		sources[it.Clip.ID] = it.Source
		owners = append(owners, it.Clip.Owner)
		if it.Score == nil || *it.Score <= 0 || *it.Score >= 1 {
			t.Errorf("item %s score %v, want a probability", it.Clip.ID, it.Score)
		}
	}
	for _, id := range []string{"l_0", "v_0", "x_private", "x_unlisted"} {
		if _, ok := sources[id]; ok {
			t.Errorf("for-you lists %s (seen in full, own, or not listable)", id)
		}
	}
	wantSource := map[string]string{"f_0": "following", "l_1": "creator", "g_0": "game", "p_0": "trending"}
	for id, src := range wantSource {
		if sources[id] != src {
			t.Errorf("source of %s = %q, want %q", id, sources[id], src)
		}
	}
	for i := 2; i < len(owners); i++ {
		if owners[i] == owners[i-1] && owners[i] == owners[i-2] {
			t.Errorf("three in a row from %s at %d: %v", owners[i], i, owners)
		}
	}
	// 23 candidates (24 listable, less l_0); only the tail of one creator's
	// run may be dropped to keep the diversity rule.
	if len(items) < 20 {
		t.Errorf("for-you has %d items, want at least 20: %v", len(items), owners)
	}

	t.Run("StablePaging", func(t *testing.T) {
		var want []string
		for _, it := range items {
			want = append(want, it.Clip.ID)
		}
		// The first page freezes the list; what happens after does not move it.
		pages := e.pageAll("/v1/feed/for-you", "v", 3, func(n int) {
			e.event("v", fmt.Sprintf("g_%d", n%6), clips.EventLike, 0)
		})
		got := allIDs(pages)
		seen := map[string]bool{}
		for _, id := range got {
			if seen[id] {
				t.Errorf("%s listed twice", id)
			}
			seen[id] = true
		}
		a, b := slices.Clone(want), slices.Clone(got)
		sort.Strings(a)
		sort.Strings(b)
		if diff := cmp.Diff(a, b); diff != "" {
			t.Errorf("paged for-you holds other clips than one page of it (-one +paged):\n%s", diff)
		}
	})
}

// TestConcurrentForYou asks for several viewers' for-you feeds at once:
// scoring runs under the read lock, so it must share no scratch (the race
// detector checks).
func TestConcurrentForYou(t *testing.T) {
	e := newEnv(t, nil, nil)
	e.users("ada", "bo", "cy", "di")
	e.follow("ada", "bo")
	e.follow("cy", "bo")
	for i := range 12 {
		e.clip(fmt.Sprintf("c_%d", i), "bo", "cs2", time.Now().Add(-time.Duration(i)*time.Minute))
	}
	var wg sync.WaitGroup
	for _, viewer := range []string{"ada", "cy", "di", "ada", "cy", "di"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := servertest.Do(t, e.srv.Client(), e.srv.URL, servertest.Request{Method: "GET", Path: "/v1/feed/for-you?limit=5", Token: viewer})
			if r.Status != http.StatusOK {
				t.Errorf("for-you of %s: %d %s", viewer, r.Status, r.Body)
			}
		}()
	}
	wg.Wait()
}
