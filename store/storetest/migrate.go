package storetest

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/clips"
)

// snapshot is everything the migrate test reads back, before and after:
// the schema itself as well as the data.
type snapshot struct {
	Version   int64
	Schema    []string
	Rooms     []chat.RoomSummary
	Members   []chat.Member
	History   []chat.Message
	Clip      clips.Clip
	Comments  []clips.Comment
	Followers int64
	Following int64
	Marker    string
}

func takeSnapshot(t *testing.T, s Store) snapshot {
	t.Helper()
	ctx := t.Context()
	var (
		snap snapshot
		err  error
	)
	snap.Version, err = s.Version(ctx)
	must(t, "Version", err)
	snap.Schema, err = s.Schema(ctx)
	must(t, "Schema", err)
	snap.Rooms, err = s.UserRooms(ctx, "bo")
	must(t, "UserRooms", err)
	snap.Members, err = s.Members(ctx, "r1")
	must(t, "Members", err)
	snap.History, _, err = s.History(ctx, "room:r1", "", 200)
	must(t, "History", err)
	snap.Clip, err = s.GetClip(ctx, "c_1")
	must(t, "GetClip", err)
	snap.Comments, _, err = s.ClipComments(ctx, "c_1", "", 200)
	must(t, "ClipComments", err)
	snap.Followers, snap.Following, err = s.FollowCounts(ctx, "ada")
	must(t, "FollowCounts", err)
	snap.Marker, err = s.ReadMarker(ctx, "dm:ada:bo", "ada")
	must(t, "ReadMarker", err)
	return snap
}

func testMigrateTwice(t *testing.T, s Store) {
	ctx := t.Context()
	must(t, "Ping", s.Ping(ctx))
	ensureUsers(t, s, "ada", "bo")
	must(t, "CreateRoom", s.CreateRoom(ctx, chat.Room{ID: "r1", Name: "n", Visibility: chat.Private, Owner: "ada", CreatedAt: base}))
	must(t, "PutMember", s.PutMember(ctx, "r1", "bo", chat.RoleMember))
	m := insertAt(t, s, "room:r1", "ada", base)
	_, _, err := s.InsertMessage(ctx, chat.Message{Channel: "room:r1", Author: "bo", IdemKey: "k", Data: json.RawMessage(`{}`), CreatedAt: base})
	must(t, "InsertMessage", err)
	must(t, "SetReadMarker", s.SetReadMarker(ctx, "room:r1", "bo", m.ID))
	must(t, "SetReadMarker", s.SetReadMarker(ctx, "dm:ada:bo", "ada", m.ID))
	must(t, "CreateClip", s.CreateClip(ctx, newClip("c_1", "ada", base)))
	_, err = s.Like(ctx, "c_1", "bo")
	must(t, "Like", err)
	must(t, "AddComment", s.AddComment(ctx, clips.Comment{ID: idAt(base), ClipID: "c_1", Author: "bo", Body: "gg", CreatedAt: base}))
	_, err = s.Follow(ctx, "bo", "ada")
	must(t, "Follow", err)

	before := takeSnapshot(t, s)
	if before.Version <= 0 {
		t.Fatalf("schema version after Migrate = %d, want > 0", before.Version)
	}
	if len(before.Schema) == 0 {
		t.Fatalf("Schema after Migrate is empty")
	}
	must(t, "Migrate again", s.Migrate(ctx))
	after := takeSnapshot(t, s)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("a second Migrate changed the store (-before +after):\n%s", diff)
	}
	// The idempotency key still holds after migrating.
	_, created, err := s.InsertMessage(ctx, chat.Message{Channel: "room:r1", Author: "bo", IdemKey: "k", Data: json.RawMessage(`{}`), CreatedAt: base})
	must(t, "InsertMessage", err)
	if created {
		t.Errorf("an idempotent retry after a second Migrate created a new message")
	}
	must(t, "Ping", s.Ping(ctx))
}
