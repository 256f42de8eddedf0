package postgres_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/store/postgres"
	"github.com/partyline/partyline/store/storetest"
)

// open returns a store on a fresh database of its own, closed when t ends.
func open(t *testing.T) storetest.Store {
	t.Helper()
	db, err := postgres.Open(t.Context(), postgres.Options{URL: testenv.PostgresURL(t), MaxConns: 8})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

func TestStore(t *testing.T) {
	// Skip once here rather than in each of the suite's parallel subtests.
	if os.Getenv(testenv.DatabaseURLEnv) == "" {
		t.Skipf("skipping: %s is not set (PostgreSQL tests need it)", testenv.DatabaseURLEnv)
	}
	storetest.Run(t, open)
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts postgres.Options
	}{
		{"empty URL", postgres.Options{}},
		{"negative MaxConns", postgres.Options{URL: "postgres://localhost/x", MaxConns: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := postgres.Open(ctx, tc.opts)
			if !errors.Is(err, partyline.ErrInvalid) {
				t.Errorf("Open: got %v, want ErrInvalid", err)
			}
		})
	}
}

func TestVersionBeforeMigrate(t *testing.T) {
	db := open(t)
	v, err := db.Version(t.Context())
	if err != nil || v != 0 {
		t.Errorf("Version of a new database = %d, %v; want 0, nil", v, err)
	}
}
