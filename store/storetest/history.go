package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/chat"
)

// insertAt stores a message in channel by author at the given time and
// returns it as stored.
func insertAt(t *testing.T, s Store, channel, author string, at time.Time) chat.Message {
	t.Helper()
	m, _, err := s.InsertMessage(t.Context(), chat.Message{
		ID: idAt(at), Channel: channel, Author: author, CreatedAt: at,
		Data: json.RawMessage(fmt.Sprintf(`{"at":%d}`, at.UnixMilli())),
	})
	must(t, "InsertMessage", err)
	return m
}

// ids returns the ids of msgs.
func ids(msgs []chat.Message) []string {
	return keysOf(msgs, func(m chat.Message) string { return m.ID })
}

func testHistory(t *testing.T, s Store) {
	ctx := t.Context()
	must(t, "CreateRoom", s.CreateRoom(ctx, chat.Room{ID: "r1", Name: "n", Visibility: chat.Public, Owner: "ada", CreatedAt: base}))
	// 25 messages, every fifth deleted: 20 remain, newest first in want.
	var want []chat.Message
	for i := range 25 {
		m := insertAt(t, s, "room:r1", "ada", base.Add(time.Duration(i)*time.Second))
		if i%5 == 0 {
			_, err := s.DeleteMessage(ctx, m.ID, base)
			must(t, "DeleteMessage", err)
			continue
		}
		want = append([]chat.Message{m}, want...)
	}
	insertAt(t, s, "dm:ada:bo", "ada", base.Add(time.Hour)) // another channel, never listed

	page := func(t *testing.T, limit int, during func(page int)) ([]chat.Message, int) {
		t.Helper()
		var (
			all    []chat.Message
			before string
			pages  int
		)
		for {
			msgs, more, err := s.History(ctx, "room:r1", before, limit)
			must(t, "History", err)
			pages++
			all = append(all, msgs...)
			if !more {
				return all, pages
			}
			if len(msgs) == 0 {
				t.Fatalf("History: more with an empty page")
			}
			before = msgs[len(msgs)-1].ID
			if during != nil {
				during(pages)
			}
			if pages > 100 {
				t.Fatalf("History: no end after 100 pages")
			}
		}
	}

	for _, tc := range []struct {
		limit     int
		wantPages int
	}{
		{limit: 7, wantPages: 3},
		{limit: 5, wantPages: 4}, // the last page is full and still says no more
		{limit: 20, wantPages: 1},
		{limit: 200, wantPages: 1},
		{limit: 1, wantPages: 20},
	} {
		t.Run(fmt.Sprintf("Limit%d", tc.limit), func(t *testing.T) {
			got, pages := page(t, tc.limit, nil)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("paged history (-want +got):\n%s", diff)
			}
			if pages != tc.wantPages {
				t.Errorf("pages = %d, want %d", pages, tc.wantPages)
			}
		})
	}
	t.Run("StableUnderInserts", func(t *testing.T) {
		got, _ := page(t, 6, func(page int) {
			insertAt(t, s, "room:r1", "bo", base.Add(time.Hour+time.Duration(page)*time.Second))
		})
		if diff := cmp.Diff(ids(want), ids(got)); diff != "" {
			t.Errorf("messages inserted while paging disturbed later pages (-want +got):\n%s", diff)
		}
	})
	t.Run("Clamp", func(t *testing.T) {
		// 205 messages in a channel of their own.
		for i := range 205 {
			insertAt(t, s, "dm:x:y", "x", base.Add(time.Duration(i)*time.Millisecond))
		}
		for _, tc := range []struct{ limit, want int }{{0, 1}, {-3, 1}, {1000, 200}, {200, 200}} {
			msgs, more, err := s.History(ctx, "dm:x:y", "", tc.limit)
			must(t, "History", err)
			if len(msgs) != tc.want || !more {
				t.Errorf("History limit %d: %d messages, more %v; want %d and more", tc.limit, len(msgs), more, tc.want)
			}
		}
	})
	t.Run("Empty", func(t *testing.T) {
		msgs, more, err := s.History(ctx, "room:nothing", "", 10)
		must(t, "History", err)
		if len(msgs) != 0 || more {
			t.Errorf("History of an empty channel = %d messages, more %v", len(msgs), more)
		}
		msgs, more, err = s.History(ctx, "room:r1", want[len(want)-1].ID, 10)
		must(t, "History", err)
		if len(msgs) != 0 || more {
			t.Errorf("History before the oldest = %d messages, more %v", len(msgs), more)
		}
	})
}

func testReadMarkers(t *testing.T, s Store) {
	ctx := t.Context()
	must(t, "CreateRoom", s.CreateRoom(ctx, chat.Room{ID: "r1", Name: "n", Visibility: chat.Public, Owner: "ada", CreatedAt: base}))
	older, newer := idAt(base), idAt(base.Add(time.Second))
	for _, ch := range []string{"room:r1", "dm:ada:bo"} {
		t.Run(ch, func(t *testing.T) {
			for _, step := range []struct{ set, want string }{
				{newer, newer},
				{older, newer}, // never backwards
				{newer, newer},
			} {
				must(t, "SetReadMarker", s.SetReadMarker(ctx, ch, "ada", step.set))
				got, err := s.ReadMarker(ctx, ch, "ada")
				must(t, "ReadMarker", err)
				if got != step.want {
					t.Errorf("after SetReadMarker(%s), marker = %s, want %s", step.set, got, step.want)
				}
			}
			// Another user's marker on the same channel is separate.
			if ch != "room:r1" {
				got, err := s.ReadMarker(ctx, ch, "bo")
				must(t, "ReadMarker", err)
				if got != "" {
					t.Errorf("bo's marker = %q, want none", got)
				}
			}
		})
	}
	t.Run("RoomMarkerIsOnMember", func(t *testing.T) {
		m, err := s.GetMember(ctx, "r1", "ada")
		must(t, "GetMember", err)
		if m.LastReadID != newer {
			t.Errorf("LastReadID = %q, want %q", m.LastReadID, newer)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for _, tc := range []struct {
			name, channel, user string
			want                error
		}{
			{"non-member", "room:r1", "bo", partyline.ErrNotFound},
			{"missing room", "room:missing", "ada", partyline.ErrNotFound},
			{"unknown channel kind", "voice:r1", "ada", partyline.ErrInvalid},
			{"malformed dm", "dm:ada", "ada", partyline.ErrInvalid},
		} {
			t.Run(tc.name, func(t *testing.T) {
				checkErr(t, "SetReadMarker", s.SetReadMarker(ctx, tc.channel, tc.user, newer), tc.want)
				_, err := s.ReadMarker(ctx, tc.channel, tc.user)
				checkErr(t, "ReadMarker", err, tc.want)
			})
		}
	})
}

func testUserRooms(t *testing.T, s Store) {
	ctx := t.Context()
	for i, id := range []string{"quiet", "busy", "late"} {
		must(t, "CreateRoom", s.CreateRoom(ctx, chat.Room{ID: id, Name: id, Visibility: chat.Private, Owner: "own", CreatedAt: base.Add(time.Duration(i) * time.Minute)}))
		must(t, "PutMember", s.PutMember(ctx, id, "ada", chat.RoleMember))
	}
	must(t, "CreateRoom", s.CreateRoom(ctx, chat.Room{ID: "notmine", Name: "x", Visibility: chat.Public, Owner: "own", CreatedAt: base}))
	insertAt(t, s, "room:notmine", "own", base.Add(time.Hour))

	// busy: three by own, one by ada, the newest by own deleted.
	at := base.Add(10 * time.Minute)
	b1 := insertAt(t, s, "room:busy", "own", at)
	insertAt(t, s, "room:busy", "ada", at.Add(time.Second)) // never unread for its author
	b3 := insertAt(t, s, "room:busy", "own", at.Add(2*time.Second))
	b4 := insertAt(t, s, "room:busy", "own", at.Add(3*time.Second))
	_, err := s.DeleteMessage(ctx, b4.ID, at)
	must(t, "DeleteMessage", err)
	// late: created at base+2m, one message at base+5m, older than busy's.
	l1 := insertAt(t, s, "room:late", "own", base.Add(5*time.Minute))

	summary := func(id string, created time.Duration, unread int, last *chat.Message) chat.RoomSummary {
		return chat.RoomSummary{
			Room:   chat.Room{ID: id, Name: id, Visibility: chat.Private, Owner: "own", CreatedAt: ms(base.Add(created))},
			Role:   chat.RoleMember,
			Unread: unread, LastMessage: last,
		}
	}
	check := func(t *testing.T, want []chat.RoomSummary) {
		t.Helper()
		got, err := s.UserRooms(ctx, "ada")
		must(t, "UserRooms", err)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("UserRooms (-want +got):\n%s", diff)
		}
	}

	t.Run("Initial", func(t *testing.T) {
		// busy (activity b3) > late (l1) > quiet (creation only).
		check(t, []chat.RoomSummary{
			summary("busy", 1*time.Minute, 2, &b3),
			summary("late", 2*time.Minute, 1, &l1),
			summary("quiet", 0, 0, nil),
		})
	})
	t.Run("AfterReadMarker", func(t *testing.T) {
		must(t, "SetReadMarker", s.SetReadMarker(ctx, "room:busy", "ada", b1.ID))
		must(t, "SetReadMarker", s.SetReadMarker(ctx, "room:late", "ada", l1.ID))
		check(t, []chat.RoomSummary{
			summary("busy", 1*time.Minute, 1, &b3),
			summary("late", 2*time.Minute, 0, &l1),
			summary("quiet", 0, 0, nil),
		})
	})
	t.Run("NewActivityReorders", func(t *testing.T) {
		q1 := insertAt(t, s, "room:quiet", "own", base.Add(20*time.Minute))
		check(t, []chat.RoomSummary{
			summary("quiet", 0, 1, &q1),
			summary("busy", 1*time.Minute, 1, &b3),
			summary("late", 2*time.Minute, 0, &l1),
		})
	})
	t.Run("NoRooms", func(t *testing.T) {
		got, err := s.UserRooms(ctx, "nobody")
		must(t, "UserRooms", err)
		if len(got) != 0 {
			t.Errorf("UserRooms of a user in no room = %+v", got)
		}
	})
}
