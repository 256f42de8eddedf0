package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline"
)

func testUsers(t *testing.T, s Store) {
	ctx := t.Context()
	before := time.Now().Add(-time.Second)
	first, err := s.EnsureUser(ctx, "ada")
	must(t, "EnsureUser", err)
	if first.ID != "ada" {
		t.Errorf("EnsureUser: ID = %q, want %q", first.ID, "ada")
	}
	if first.CreatedAt.Before(before) || first.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("EnsureUser: CreatedAt = %v, want about now", first.CreatedAt)
	}
	if !first.CreatedAt.Equal(ms(first.CreatedAt)) || first.CreatedAt.Location() != time.UTC {
		t.Errorf("EnsureUser: CreatedAt = %v, want UTC whole milliseconds", first.CreatedAt)
	}

	t.Run("EnsureUserAgain", func(t *testing.T) {
		got, err := s.EnsureUser(ctx, "ada")
		must(t, "EnsureUser", err)
		if diff := cmp.Diff(first, got); diff != "" {
			t.Errorf("second EnsureUser changed the user (-first +second):\n%s", diff)
		}
	})
	t.Run("GetUser", func(t *testing.T) {
		got, err := s.GetUser(ctx, "ada")
		must(t, "GetUser", err)
		if diff := cmp.Diff(first, got); diff != "" {
			t.Errorf("GetUser (-want +got):\n%s", diff)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			call func() error
			want error
		}{
			{"GetUser missing", func() error { _, err := s.GetUser(ctx, "nobody"); return err }, partyline.ErrNotFound},
			{"EnsureUser empty", func() error { _, err := s.EnsureUser(ctx, ""); return err }, partyline.ErrInvalid},
		} {
			t.Run(tc.name, func(t *testing.T) { checkErr(t, tc.name, tc.call(), tc.want) })
		}
	})
}
