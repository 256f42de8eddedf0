package feed_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/internal/server/servertest"
)

// TestForYouAtOnce checks that a new for-you list sees the store as it is:
// a new follow, a followee's new clip and a clip made private count at
// once, on the first page as on later ones.
func TestForYouAtOnce(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) { testForYouAtOnce(t, nil) })
	t.Run("PostgreSQL", func(t *testing.T) { testForYouAtOnce(t, openPostgres(t)) })
}

func testForYouAtOnce(t *testing.T, db testStore) {
	e := newEnv(t, db, nil)
	e.start()
	e.users("v", "a", "b")
	now := e.clock.Now()
	for i := range 3 {
		e.clip(fmt.Sprintf("a_%d", i), "a", "cs2", now.Add(-time.Duration(i+1)*time.Minute))
		e.clip(fmt.Sprintf("b_%d", i), "b", "dota", now.Add(-time.Duration(i+1)*time.Minute))
	}
	firstPage := func() map[string]string {
		t.Helper()
		p := servertest.Decode[page](t, e.want(200, "GET", "/v1/feed/for-you?limit=100", "v"))
		out := map[string]string{}
		for _, it := range p.Items {
			out[it.Clip.ID] = it.Source
		}
		return out
	}
	if got := firstPage(); len(got) != 0 {
		t.Fatalf("for-you of someone who follows nobody and did nothing = %v, want empty", got)
	}

	// Two creators, so that the diversity rule keeps every clip.
	e.follow("v", "a")
	e.follow("v", "b")
	got := firstPage()
	for i := range 3 {
		for _, id := range []string{fmt.Sprintf("a_%d", i), fmt.Sprintf("b_%d", i)} {
			if got[id] != "following" {
				t.Errorf("after a follow, %s has source %q, want following: %v", id, got[id], got)
			}
		}
	}

	e.clip("a_new", "a", "cs2", now)
	if got := firstPage(); got["a_new"] != "following" {
		t.Errorf("a followee's new clip is missing from for-you: %v", got)
	}

	// A clip made private leaves the first page of a new list and the
	// next page of an old one.
	old := servertest.Decode[page](t, e.want(200, "GET", "/v1/feed/for-you?limit=1", "v"))
	if old.NextCursor == "" || len(old.Items) != 1 {
		t.Fatalf("setup: want a first page of one with more to come, got %+v", old)
	}
	var rest []string
	for _, p := range e.pageAll("/v1/feed/for-you?cursor="+old.NextCursor, "v", 100, nil) {
		rest = append(rest, p.ids()...)
	}
	if len(rest) == 0 {
		t.Fatal("setup: the old list has no second page")
	}
	hide := rest[0]
	c, err := e.db.GetClip(t.Context(), hide)
	if err != nil {
		t.Fatal(err)
	}
	c.Visibility = clips.Private
	if err := e.db.UpdateClip(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if got := firstPage(); got[hide] != "" {
		t.Errorf("for-you lists %s at once after it was made private: %v", hide, got)
	}
	var again []string
	for _, p := range e.pageAll("/v1/feed/for-you?cursor="+old.NextCursor, "v", 100, nil) {
		again = append(again, p.ids()...)
	}
	if slices.Contains(again, hide) {
		t.Errorf("a later page of an old list shows %s after it was made private: %v", hide, again)
	}

	// An unfollow counts at once too.
	if _, err := e.db.Unfollow(t.Context(), "v", "a"); err != nil {
		t.Fatal(err)
	}
	for id, src := range firstPage() {
		if src == "following" && id[0] == 'a' {
			t.Errorf("after an unfollow, %s still comes from following", id)
		}
	}
}
