package sqlite_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/store/sqlite"
	"github.com/partyline/partyline/store/storetest"
)

// open returns a store on a new file of its own, closed when t ends.
func open(t *testing.T) storetest.Store {
	t.Helper()
	db, err := sqlite.Open(t.Context(), sqlite.Options{Path: filepath.Join(t.TempDir(), "partyline.db")})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, open)
}

func TestOpen(t *testing.T) {
	for _, path := range []string{"", "a?b"} {
		_, err := sqlite.Open(t.Context(), sqlite.Options{Path: path})
		if !errors.Is(err, partyline.ErrInvalid) {
			t.Errorf("Open(%q): got %v, want ErrInvalid", path, err)
		}
	}
}

func TestVersionBeforeMigrate(t *testing.T) {
	db := open(t)
	v, err := db.Version(t.Context())
	if err != nil || v != 0 {
		t.Errorf("Version of a new file = %d, %v; want 0, nil", v, err)
	}
}

// TestReopen checks that data and schema survive closing and opening the
// file again.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "partyline.db")
	db, err := sqlite.Open(t.Context(), sqlite.Options{Path: path})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	u, err := db.EnsureUser(t.Context(), "ada")
	if err != nil {
		t.Fatalf("EnsureUser: %v", err)
	}
	// The write-ahead log exists only in WAL mode.
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("no write-ahead log beside the file: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	db, err = sqlite.Open(t.Context(), sqlite.Options{Path: path})
	if err != nil {
		t.Fatalf("Open again: %v", err)
	}
	defer db.Close()
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	got, err := db.GetUser(t.Context(), "ada")
	if err != nil || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Errorf("GetUser after reopen = %+v, %v; want %+v", got, err, u)
	}
}
