package feed_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/internal/testenv"
)

// runUntil runs f until the returned stop is called; stop waits for Run.
func runUntil(t *testing.T, f *feed.Service) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestModelSurvivesRestart learns, stops (which saves), and starts a new
// feed on the same store, which must come back with the same model.
func TestModelSurvivesRestart(t *testing.T) {
	stores := map[string]func(t *testing.T) testStore{
		"SQLite": func(t *testing.T) testStore {
			path := filepath.Join(t.TempDir(), "feed.db")
			openSQLite(t, path)
			return openSQLite(t, path) // a second handle, as after a restart
		},
		"PostgreSQL": func(t *testing.T) testStore { return openPostgres(t) },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			e := newEnv(t, db, func(o *feed.Options) { o.SaveInterval = time.Hour })
			stop := runUntil(t, e.feed)
			e.users("v", "maker")
			for i := range 5 {
				e.clip(fmt.Sprintf("c_%d", i), "maker", "cs2", e.clock.Now().Add(-time.Hour))
			}
			for i := range 5 {
				e.event("v", fmt.Sprintf("c_%d", i), clips.EventView, 20000)
				e.event("v", fmt.Sprintf("c_%d", i), clips.EventLike, 0)
			}
			testenv.Eventually(t, "events learned", func() bool { return e.feed.Learned() >= 10 })
			stop() // saves the model
			z, n := e.feed.ModelState()
			before := e.feed.Predict("bias", "g\x00cs2")

			again := newEnv(t, db, nil)
			if z2, _ := again.feed.ModelState(); cmp.Equal(z, z2) {
				t.Fatalf("a new feed starts with the learned model before Run loads it")
			}
			runUntil(t, again.feed)
			testenv.Eventually(t, "the saved model loaded", func() bool {
				z2, n2 := again.feed.ModelState()
				return cmp.Equal(z, z2) && cmp.Equal(n, n2)
			})
			if got := again.feed.Predict("bias", "g\x00cs2"); got != before {
				t.Errorf("prediction after restart = %v, want %v", got, before)
			}
		})
	}
}

// TestLoadRejectsCorruptModel: a corrupt saved model is not loaded, and a
// new model replaces it on the next save.
func TestLoadRejectsCorruptModel(t *testing.T) {
	e := newEnv(t, nil, nil)
	if err := e.db.SaveModel(t.Context(), "for-you", []byte("junk")); err != nil {
		t.Fatal(err)
	}
	if err := e.feed.Load(t.Context()); err == nil {
		t.Errorf("Load of a corrupt model succeeded")
	}
	if err := e.feed.Save(t.Context()); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if err := e.feed.Load(t.Context()); err != nil {
		t.Errorf("Load after Save: %v", err)
	}
}
