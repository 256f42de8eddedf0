package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/oklog/ulid/v2"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/chat"
)

func testRooms(t *testing.T, s Store) {
	ctx := t.Context()
	r := chat.Room{ID: "r1", Name: "squad", Visibility: chat.Private, Owner: "ada", CreatedAt: base}
	must(t, "CreateRoom", s.CreateRoom(ctx, r))

	t.Run("GetRoom", func(t *testing.T) {
		got, err := s.GetRoom(ctx, "r1")
		must(t, "GetRoom", err)
		want := r
		want.CreatedAt = ms(base)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetRoom (-want +got):\n%s", diff)
		}
	})
	t.Run("OwnerIsMember", func(t *testing.T) {
		got, err := s.GetMember(ctx, "r1", "ada")
		must(t, "GetMember", err)
		want := chat.Member{RoomID: "r1", UserID: "ada", Role: chat.RoleOwner, JoinedAt: ms(base)}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("owner membership (-want +got):\n%s", diff)
		}
	})
	t.Run("DefaultCreatedAt", func(t *testing.T) {
		must(t, "CreateRoom", s.CreateRoom(ctx, chat.Room{ID: "r-now", Name: "x", Visibility: chat.Public, Owner: "bo"}))
		got, err := s.GetRoom(ctx, "r-now")
		must(t, "GetRoom", err)
		if time.Since(got.CreatedAt) > time.Minute || got.CreatedAt.IsZero() {
			t.Errorf("CreatedAt = %v, want now for a zero CreatedAt", got.CreatedAt)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			room chat.Room
			want error
		}{
			{"duplicate id", chat.Room{ID: "r1", Name: "again", Visibility: chat.Public, Owner: "bo"}, partyline.ErrConflict},
			{"empty id", chat.Room{Name: "x", Visibility: chat.Public, Owner: "bo"}, partyline.ErrInvalid},
			{"empty owner", chat.Room{ID: "r9", Name: "x", Visibility: chat.Public}, partyline.ErrInvalid},
			{"bad visibility", chat.Room{ID: "r9", Name: "x", Visibility: "secret", Owner: "bo"}, partyline.ErrInvalid},
		} {
			t.Run(tc.name, func(t *testing.T) { checkErr(t, "CreateRoom", s.CreateRoom(ctx, tc.room), tc.want) })
		}
		_, err := s.GetRoom(ctx, "missing")
		checkErr(t, "GetRoom missing", err, partyline.ErrNotFound)
		// A failed CreateRoom leaves nothing behind.
		got, err := s.GetRoom(ctx, "r1")
		must(t, "GetRoom", err)
		if got.Name != "squad" {
			t.Errorf("after a conflicting CreateRoom, name = %q, want %q", got.Name, "squad")
		}
	})
}

func testMembers(t *testing.T, s Store) {
	ctx := t.Context()
	must(t, "CreateRoom", s.CreateRoom(ctx, chat.Room{ID: "r1", Name: "n", Visibility: chat.Private, Owner: "own", CreatedAt: base}))
	// Ids deliberately out of sort order: Members must keep join order.
	for _, u := range []string{"zed", "amy", "kim"} {
		must(t, "PutMember "+u, s.PutMember(ctx, "r1", u, chat.RoleMember))
	}

	t.Run("JoinOrder", func(t *testing.T) {
		got, err := s.Members(ctx, "r1")
		must(t, "Members", err)
		var ids []string
		for _, m := range got {
			ids = append(ids, m.UserID)
			if m.RoomID != "r1" || m.JoinedAt.IsZero() {
				t.Errorf("member %+v: want room r1 and a join time", m)
			}
		}
		if diff := cmp.Diff([]string{"own", "zed", "amy", "kim"}, ids); diff != "" {
			t.Errorf("Members order (-want +got):\n%s", diff)
		}
	})
	t.Run("RoleChangeKeepsMarker", func(t *testing.T) {
		before, err := s.GetMember(ctx, "r1", "amy")
		must(t, "GetMember", err)
		must(t, "SetReadMarker", s.SetReadMarker(ctx, "room:r1", "amy", "01MARKER"))
		must(t, "PutMember", s.PutMember(ctx, "r1", "amy", chat.RoleOwner))
		got, err := s.GetMember(ctx, "r1", "amy")
		must(t, "GetMember", err)
		want := before
		want.Role, want.LastReadID = chat.RoleOwner, "01MARKER"
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("member after role change (-want +got):\n%s", diff)
		}
		all, err := s.Members(ctx, "r1")
		must(t, "Members", err)
		if len(all) != 4 || all[2].UserID != "amy" {
			t.Errorf("a role change moved the member in join order: %+v", all)
		}
	})
	t.Run("Remove", func(t *testing.T) {
		must(t, "RemoveMember", s.RemoveMember(ctx, "r1", "kim"))
		_, err := s.GetMember(ctx, "r1", "kim")
		checkErr(t, "GetMember removed", err, partyline.ErrNotFound)
		checkErr(t, "RemoveMember again", s.RemoveMember(ctx, "r1", "kim"), partyline.ErrNotFound)
	})
	t.Run("EmptyRoom", func(t *testing.T) {
		got, err := s.Members(ctx, "missing")
		must(t, "Members", err)
		if len(got) != 0 {
			t.Errorf("Members of a missing room = %+v, want none", got)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			call func() error
			want error
		}{
			{"PutMember missing room", func() error { return s.PutMember(ctx, "missing", "amy", chat.RoleMember) }, partyline.ErrNotFound},
			{"PutMember bad role", func() error { return s.PutMember(ctx, "r1", "amy", "admin") }, partyline.ErrInvalid},
			{"RemoveMember non-member", func() error { return s.RemoveMember(ctx, "r1", "nobody") }, partyline.ErrNotFound},
			{"RemoveMember missing room", func() error { return s.RemoveMember(ctx, "missing", "amy") }, partyline.ErrNotFound},
			{"GetMember non-member", func() error { _, err := s.GetMember(ctx, "r1", "nobody"); return err }, partyline.ErrNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) { checkErr(t, tc.name, tc.call(), tc.want) })
		}
	})
}

func testMessages(t *testing.T, s Store) {
	ctx := t.Context()
	must(t, "CreateRoom", s.CreateRoom(ctx, chat.Room{ID: "r1", Name: "n", Visibility: chat.Public, Owner: "ada", CreatedAt: base}))
	// Odd spacing and key order: data must come back byte for byte.
	data := json.RawMessage(`{"text":  "hi",   "b": [1, 2]}`)
	m := chat.Message{ID: idAt(base), Channel: "room:r1", Author: "ada", Data: data, CreatedAt: base}
	stored, created, err := s.InsertMessage(ctx, m)
	must(t, "InsertMessage", err)
	want := m
	want.CreatedAt = ms(base)
	if !created {
		t.Errorf("InsertMessage: created = false, want true")
	}
	if diff := cmp.Diff(want, stored); diff != "" {
		t.Errorf("InsertMessage stored (-want +got):\n%s", diff)
	}

	t.Run("GetMessage", func(t *testing.T) {
		got, err := s.GetMessage(ctx, m.ID)
		must(t, "GetMessage", err)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetMessage (-want +got):\n%s", diff)
		}
	})
	t.Run("AssignsID", func(t *testing.T) {
		got, created, err := s.InsertMessage(ctx, chat.Message{Channel: "dm:ada:bo", Author: "ada", Data: json.RawMessage(`{}`)})
		must(t, "InsertMessage", err)
		if !created || got.CreatedAt.IsZero() {
			t.Errorf("InsertMessage without id or time: created %v, CreatedAt %v", created, got.CreatedAt)
		}
		id, err := ulid.ParseStrict(got.ID)
		if err != nil {
			t.Fatalf("assigned id %q is not a ULID: %v", got.ID, err)
		}
		if !ulid.Time(id.Time()).Equal(got.CreatedAt) {
			t.Errorf("assigned id time %v, want CreatedAt %v", ulid.Time(id.Time()), got.CreatedAt)
		}
		back, err := s.GetMessage(ctx, got.ID)
		must(t, "GetMessage", err)
		if diff := cmp.Diff(got, back); diff != "" {
			t.Errorf("GetMessage (-inserted +read):\n%s", diff)
		}
	})
	t.Run("SetMessagePosition", func(t *testing.T) {
		const offset = uint64(1)<<63 + 7 // beyond int64: must still round-trip
		must(t, "SetMessagePosition", s.SetMessagePosition(ctx, m.ID, "ep-1", offset))
		got, err := s.GetMessage(ctx, m.ID)
		must(t, "GetMessage", err)
		if got.Epoch != "ep-1" || got.Offset != offset {
			t.Errorf("position = %q/%d, want ep-1/%d", got.Epoch, got.Offset, offset)
		}
		checkErr(t, "SetMessagePosition missing", s.SetMessagePosition(ctx, "missing", "e", 1), partyline.ErrNotFound)
	})
	t.Run("EditAndDelete", func(t *testing.T) {
		id := idAt(base.Add(time.Second))
		_, _, err := s.InsertMessage(ctx, chat.Message{ID: id, Channel: "room:r1", Author: "ada", Data: data, CreatedAt: base.Add(time.Second)})
		must(t, "InsertMessage", err)
		editAt := base.Add(time.Minute)
		edited, err := s.EditMessage(ctx, id, json.RawMessage(`{"text":"fixed"}`), editAt)
		must(t, "EditMessage", err)
		if string(edited.Data) != `{"text":"fixed"}` || !edited.EditedAt.Equal(ms(editAt)) {
			t.Errorf("EditMessage = data %s, EditedAt %v; want the new data at %v", edited.Data, edited.EditedAt, ms(editAt))
		}
		got, err := s.GetMessage(ctx, id)
		must(t, "GetMessage", err)
		if diff := cmp.Diff(edited, got); diff != "" {
			t.Errorf("GetMessage after edit (-edit result +read):\n%s", diff)
		}
		delAt := base.Add(2 * time.Minute)
		deleted, err := s.DeleteMessage(ctx, id, delAt)
		must(t, "DeleteMessage", err)
		if !deleted.DeletedAt.Equal(ms(delAt)) {
			t.Errorf("DeletedAt = %v, want %v", deleted.DeletedAt, ms(delAt))
		}
		got, err = s.GetMessage(ctx, id)
		must(t, "GetMessage deleted", err)
		if diff := cmp.Diff(deleted, got); diff != "" {
			t.Errorf("GetMessage after delete (-delete result +read):\n%s", diff)
		}
		_, err = s.EditMessage(ctx, id, json.RawMessage(`{}`), delAt)
		checkErr(t, "EditMessage deleted", err, partyline.ErrNotFound)
		_, err = s.DeleteMessage(ctx, id, delAt)
		checkErr(t, "DeleteMessage twice", err, partyline.ErrNotFound)
	})
	t.Run("Errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			call func() error
			want error
		}{
			{"duplicate id", func() error {
				_, _, err := s.InsertMessage(ctx, chat.Message{ID: m.ID, Channel: "room:r1", Author: "bo", Data: data})
				return err
			}, partyline.ErrConflict},
			{"invalid data", func() error {
				_, _, err := s.InsertMessage(ctx, chat.Message{Channel: "room:r1", Author: "bo", Data: json.RawMessage(`{"a":`)})
				return err
			}, partyline.ErrInvalid},
			{"empty data", func() error {
				_, _, err := s.InsertMessage(ctx, chat.Message{Channel: "room:r1", Author: "bo"})
				return err
			}, partyline.ErrInvalid},
			{"empty channel", func() error {
				_, _, err := s.InsertMessage(ctx, chat.Message{Author: "bo", Data: data})
				return err
			}, partyline.ErrInvalid},
			{"missing room", func() error {
				_, _, err := s.InsertMessage(ctx, chat.Message{Channel: "room:missing", Author: "bo", Data: data})
				return err
			}, partyline.ErrNotFound},
			{"GetMessage missing", func() error { _, err := s.GetMessage(ctx, "missing"); return err }, partyline.ErrNotFound},
			{"EditMessage missing", func() error {
				_, err := s.EditMessage(ctx, "missing", data, base)
				return err
			}, partyline.ErrNotFound},
			{"EditMessage invalid data", func() error {
				_, err := s.EditMessage(ctx, m.ID, json.RawMessage(`nope`), base)
				return err
			}, partyline.ErrInvalid},
			{"DeleteMessage missing", func() error { _, err := s.DeleteMessage(ctx, "missing", base); return err }, partyline.ErrNotFound},
		} {
			t.Run(tc.name, func(t *testing.T) { checkErr(t, tc.name, tc.call(), tc.want) })
		}
	})
}

func testIdempotency(t *testing.T, s Store) {
	ctx := t.Context()
	data := json.RawMessage(`{"text":"hi"}`)
	insert := func(t *testing.T, author, key string, at time.Time) (chat.Message, bool) {
		t.Helper()
		m, created, err := s.InsertMessage(ctx, chat.Message{ID: idAt(at), Channel: "dm:ada:bo", Author: author, Data: data, IdemKey: key, CreatedAt: at})
		must(t, "InsertMessage", err)
		return m, created
	}
	first, created := insert(t, "ada", "k1", base)
	if !created || first.IdemKey != "k1" {
		t.Fatalf("first use of a key: created %v, IdemKey %q", created, first.IdemKey)
	}
	for _, tc := range []struct {
		name        string
		author, key string
		at          time.Time
		wantCreated bool
	}{
		{"retry inside the window", "ada", "k1", base.Add(time.Minute), false},
		{"retry just inside the window", "ada", "k1", base.Add(chat.IdemWindow - time.Millisecond), false},
		{"same key, other author", "bo", "k1", base.Add(time.Minute), true},
		{"other key, same author", "ada", "k2", base.Add(time.Minute), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, created := insert(t, tc.author, tc.key, tc.at)
			if created != tc.wantCreated {
				t.Fatalf("created = %v, want %v", created, tc.wantCreated)
			}
			if !created {
				if diff := cmp.Diff(first, got); diff != "" {
					t.Errorf("a retry must return the earlier message (-earlier +got):\n%s", diff)
				}
			}
		})
	}
	t.Run("ExpiredKeyIsForgotten", func(t *testing.T) {
		later, created := insert(t, "ada", "k1", base.Add(chat.IdemWindow))
		if !created || later.ID == first.ID {
			t.Fatalf("a use of the key IdemWindow later: created %v, id %s (first %s)", created, later.ID, first.ID)
		}
		old, err := s.GetMessage(ctx, first.ID)
		must(t, "GetMessage", err)
		if old.IdemKey != "" {
			t.Errorf("the expired use still holds the key: IdemKey = %q", old.IdemKey)
		}
		again, created := insert(t, "ada", "k1", base.Add(chat.IdemWindow+time.Minute))
		if created || again.ID != later.ID {
			t.Errorf("a retry after renewal: created %v, id %s; want the renewed message %s", created, again.ID, later.ID)
		}
	})
	t.Run("OnlyOneStored", func(t *testing.T) {
		msgs, _, err := s.History(ctx, "dm:ada:bo", "", 200)
		must(t, "History", err)
		if len(msgs) != 4 {
			t.Errorf("History holds %d messages, want 4 (two k1 uses by ada, one by bo, one k2)", len(msgs))
		}
	})
}
