package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/clips"
)

// writers is how many goroutines write at once. Every write must succeed:
// in particular SQLite must never report "database is locked".
const writers = 16

// race runs fn on writers goroutines released together, and fails the test
// with the first error.
func race(t *testing.T, fn func(g int) error) {
	t.Helper()
	var (
		eg    errgroup.Group
		start = make(chan struct{})
	)
	for g := range writers {
		eg.Go(func() error {
			<-start
			return fn(g)
		})
	}
	close(start)
	if err := eg.Wait(); err != nil {
		t.Fatalf("concurrent writer: %v", err)
	}
}

func testConcurrentWriters(t *testing.T, s Store) {
	ctx := t.Context()
	ensureUsers(t, s, "own", "star")
	must(t, "CreateRoom", s.CreateRoom(ctx, chat.Room{ID: "r1", Name: "n", Visibility: chat.Public, Owner: "own", CreatedAt: base}))
	must(t, "CreateClip", s.CreateClip(ctx, newClip("c_1", "own", base)))
	const perWriter = 8
	race(t, func(g int) error {
		user := fmt.Sprintf("g%02d", g)
		shared, err := s.EnsureUser(ctx, "shared")
		if err != nil {
			return err
		}
		if shared.ID != "shared" {
			return fmt.Errorf("EnsureUser(shared) = %+v", shared)
		}
		if _, err := s.EnsureUser(ctx, user); err != nil {
			return err
		}
		if _, err := s.Follow(ctx, user, "star"); err != nil {
			return err
		}
		if _, err := s.Like(ctx, "c_1", user); err != nil {
			return err
		}
		if _, err := s.Like(ctx, "c_1", "shared"); err != nil {
			return err
		}
		if err := s.RecordEvent(ctx, clips.Event{ClipID: "c_1", UserID: user, Kind: clips.EventView, At: base}); err != nil {
			return err
		}
		if err := s.AddComment(ctx, clips.Comment{ID: idAt(time.Now()), ClipID: "c_1", Author: user, Body: "gg"}); err != nil {
			return err
		}
		if err := s.PutMember(ctx, "r1", user, chat.RoleMember); err != nil {
			return err
		}
		var last string
		for i := range perWriter {
			// Keyed publishes read before they write, the pattern that
			// makes SQLite fail with SQLITE_BUSY when writers contend.
			var key string
			if i%2 == 0 {
				key = fmt.Sprintf("k%d", i)
			}
			m, created, err := s.InsertMessage(ctx, chat.Message{
				Channel: "room:r1", Author: user, IdemKey: key, Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)),
			})
			if err != nil {
				return err
			}
			if !created {
				return fmt.Errorf("InsertMessage with a new key or none was not created")
			}
			last = m.ID
		}
		return s.SetReadMarker(ctx, "room:r1", user, last)
	})

	first, err := s.GetUser(ctx, "shared")
	must(t, "GetUser", err)
	again, err := s.EnsureUser(ctx, "shared")
	must(t, "EnsureUser", err)
	if !again.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("racing EnsureUser calls left a changing row: %v then %v", first.CreatedAt, again.CreatedAt)
	}
	c := getClip(t, s, "c_1")
	if c.Likes != writers+1 || c.Views != writers || c.Comments != writers {
		t.Errorf("counters likes %d, views %d, comments %d; want %d, %d, %d", c.Likes, c.Views, c.Comments, writers+1, writers, writers)
	}
	followers, _, err := s.FollowCounts(ctx, "star")
	must(t, "FollowCounts", err)
	if followers != writers {
		t.Errorf("star has %d followers, want %d", followers, writers)
	}
	members, err := s.Members(ctx, "r1")
	must(t, "Members", err)
	if len(members) != writers+1 {
		t.Errorf("room has %d members, want %d", len(members), writers+1)
	}
	msgs, more, err := s.History(ctx, "room:r1", "", 200)
	must(t, "History", err)
	if len(msgs) != writers*perWriter || more {
		t.Errorf("History holds %d messages (more %v), want %d", len(msgs), more, writers*perWriter)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if seen[m.ID] {
			t.Errorf("message id %s assigned twice", m.ID)
		}
		seen[m.ID] = true
	}
}

func testConcurrentIdempotency(t *testing.T, s Store) {
	ctx := t.Context()
	must(t, "CreateRoom", s.CreateRoom(ctx, chat.Room{ID: "r1", Name: "n", Visibility: chat.Public, Owner: "ada", CreatedAt: base}))
	const rounds = 8
	for round := range rounds {
		key := fmt.Sprintf("k%d", round)
		at := base.Add(time.Duration(round) * time.Second)
		var (
			ids     [writers]string
			created [writers]bool
		)
		race(t, func(g int) error {
			// Each retry carries its own id, as a client retry through
			// another node would.
			m, c, err := s.InsertMessage(ctx, chat.Message{
				ID: idAt(at), Channel: "room:r1", Author: "ada", IdemKey: key, CreatedAt: at,
				Data: json.RawMessage(`{"text":"once"}`),
			})
			ids[g], created[g] = m.ID, c
			return err
		})
		var n int
		for g := range writers {
			if created[g] {
				n++
			}
			if ids[g] != ids[0] {
				t.Errorf("round %d: writer %d got message %s, writer 0 got %s", round, g, ids[g], ids[0])
			}
		}
		if n != 1 {
			t.Errorf("round %d: %d writers created a message, want exactly 1", round, n)
		}
	}
	msgs, _, err := s.History(ctx, "room:r1", "", 200)
	must(t, "History", err)
	if len(msgs) != rounds {
		t.Errorf("History holds %d messages, want %d (one per key)", len(msgs), rounds)
	}
}
