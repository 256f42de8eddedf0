package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/internal/auth"
)

// Store is what the suite tests: every domain store interface plus the
// schema and read-marker methods both implementations offer.
type Store interface {
	chat.Store
	clips.Store
	feed.Store
	auth.UserStore

	// Migrate brings the schema up to date; running it again changes nothing.
	Migrate(ctx context.Context) error
	// Version returns the applied schema version.
	Version(ctx context.Context) (int64, error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// ReadMarker returns a user's read marker on a room or dm channel.
	ReadMarker(ctx context.Context, channel, userID string) (string, error)
	// Schema describes the database schema (tables, columns, indexes), one
	// line per entry in a stable order, so that two calls compare. Only
	// this suite needs it, so the stores define it in a test file
	// (export_test.go) with their own catalog queries.
	Schema(ctx context.Context) ([]string, error)
}

// Run runs the conformance suite. open must return a new, empty and not yet
// migrated store, and close it when the test ends (with t.Cleanup). Run calls
// open once per top-level subtest and runs those subtests in parallel, so
// open must be safe to call concurrently.
func Run(t *testing.T, open func(t *testing.T) Store) {
	fresh := func(t *testing.T) Store {
		t.Helper()
		s := open(t)
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return s
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s Store)
	}{
		{"Users", testUsers},
		{"Rooms", testRooms},
		{"Members", testMembers},
		{"Messages", testMessages},
		{"Idempotency", testIdempotency},
		{"History", testHistory},
		{"ReadMarkers", testReadMarkers},
		{"UserRooms", testUserRooms},
		{"Clips", testClips},
		{"Engagement", testEngagement},
		{"ClipPaging", testClipPaging},
		{"ClipWrites", testClipWrites},
		{"PublicClipPaging", testPublicClipPaging},
		{"Follows", testFollows},
		{"FollowPaging", testFollowPaging},
		{"FeedProfile", testFeedProfile},
		{"FollowingClips", testFollowingClips},
		{"FeedCandidates", testFeedCandidates},
		{"FeedEngagement", testFeedEngagement},
		{"FeedModel", testFeedModel},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ConcurrentIdempotency", testConcurrentIdempotency},
		{"MigrateTwice", testMigrateTwice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, fresh(t))
		})
	}
}

// base is the suite's reference time. Its nanoseconds check that stores keep
// times to the millisecond and drop the rest.
var base = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

// ms cuts t to the precision stores keep.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// idAt returns a ULID whose time part is at, so ids made at increasing times
// sort in that order.
func idAt(at time.Time) string {
	return ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String()
}

// checkErr fails the test unless err matches want: nil means no error,
// anything else is tested with errors.Is.
func checkErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: unexpected error: %v", what, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: got error %v, want one wrapping %v", what, err, want)
	}
}

// must fails the test on err.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// keysOf returns key(x) for each of xs, in order.
func keysOf[T any](xs []T, key func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = key(x)
	}
	return out
}

// ensureUsers creates users, failing the test on error.
func ensureUsers(t *testing.T, s Store, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := s.EnsureUser(t.Context(), id); err != nil {
			t.Fatalf("EnsureUser(%q): %v", id, err)
		}
	}
}
