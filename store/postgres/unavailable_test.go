package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/internal/httpx"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/wire"
)

func TestIsUnavailable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", fmt.Errorf("acquire: %w", refused), true},
		{"dropped connection", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"closed by the server", io.EOF, true},
		{"conn closed", pgconn.ErrConnClosed, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"cannot connect now", &pgconn.PgError{Code: "57P03"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"deadline while waiting for a connection", fmt.Errorf("acquire: %w", context.DeadlineExceeded), true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"query canceled by the server", &pgconn.PgError{Code: "57014"}, false},
		{"no rows", pgx.ErrNoRows, false},
		{"cancelled context", context.Canceled, false},
		{"cancelled context over a net error", errors.Join(context.Canceled, refused), false},
		{"other", errors.New("boom"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isUnavailable(tc.err); got != tc.want {
				t.Errorf("isUnavailable(%v) = %t; want %t", tc.err, got, tc.want)
			}
			err := unavailable(tc.err)
			if got := errors.Is(err, partyline.ErrUnavailable); got != tc.want {
				t.Errorf("unavailable(%v) is ErrUnavailable = %t; want %t", tc.err, got, tc.want)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("unavailable(%v) = %v; lost the original error", tc.err, err)
			}
		})
	}
	if err := unavailable(nil); err != nil {
		t.Errorf("unavailable(nil) = %v; want nil", err)
	}
}

// newDB returns a store on a pool made from url and cfg's changes, closed
// when t ends. Unlike Open it does not ping, so the server may be down.
func newDB(t *testing.T, url string, configure func(*pgxpool.Config)) *DB {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if configure != nil {
		configure(cfg)
	}
	p, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("NewWithConfig: %v", err)
	}
	t.Cleanup(p.Close)
	return fromPool(p)
}

// storeCalls are a read and a write through each way the store reaches the
// database: QueryRow, Query, Exec and a transaction.
var storeCalls = []struct {
	name string
	call func(context.Context, *DB) error
}{
	{"GetUser", func(ctx context.Context, db *DB) error {
		_, err := db.GetUser(ctx, "alice")
		return err
	}},
	{"UserClips", func(ctx context.Context, db *DB) error {
		_, _, err := db.UserClips(ctx, "alice", "", 10)
		return err
	}},
	{"Follow", func(ctx context.Context, db *DB) error {
		_, err := db.Follow(ctx, "alice", "bob")
		return err
	}},
	{"CreateRoom", func(ctx context.Context, db *DB) error {
		return db.CreateRoom(ctx, chat.Room{ID: "r1", Name: "r", Visibility: chat.Public, Owner: "alice"})
	}},
}

func TestServerDownIsUnavailable(t *testing.T) {
	// Nothing listens on port 1, so every connection is refused.
	db := newDB(t, "postgres://postgres@127.0.0.1:1/partyline?sslmode=disable&connect_timeout=5", nil)
	for _, c := range storeCalls {
		t.Run(c.name, func(t *testing.T) {
			err := c.call(t.Context(), db)
			if !errors.Is(err, partyline.ErrUnavailable) {
				t.Errorf("%s with the server down: got %v; want ErrUnavailable", c.name, err)
			}
		})
	}
	// What a client sees: a request with a token fails in authentication
	// with 503, and hello with unavailable, not 500 or internal.
	t.Run("authentication", func(t *testing.T) {
		secret := []byte("0123456789abcdef0123456789abcdef")
		signer, err := auth.NewSigner(secret, "", "")
		if err != nil {
			t.Fatal(err)
		}
		v, err := auth.NewVerifier(auth.Options{Secret: secret})
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := signer.Sign("alice", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = auth.NewAuthenticator(v, db).Authenticate(t.Context(), tok)
		if got, want := httpx.Status(err), http.StatusServiceUnavailable; got != want {
			t.Errorf("HTTP status of %v = %d; want %d", err, got, want)
		}
		if got, want := realtime.ErrorCode(err), wire.CodeUnavailable; got != want {
			t.Errorf("wire code of %v = %q; want %q", err, got, want)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		for _, c := range storeCalls {
			err := c.call(ctx, db)
			if !errors.Is(err, context.Canceled) || errors.Is(err, partyline.ErrUnavailable) {
				t.Errorf("%s with a cancelled context: got %v; want context.Canceled, not ErrUnavailable", c.name, err)
			}
		}
	})
}

func TestTerminatedBackendIsUnavailable(t *testing.T) {
	url := testenv.PostgresURL(t)
	// Without the ping on acquire the pool hands out the dead connection,
	// as it does to a statement racing the termination.
	db := newDB(t, url, func(cfg *pgxpool.Config) {
		cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	})
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	admin, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer admin.Close(context.Background())

	for _, c := range storeCalls {
		t.Run(c.name, func(t *testing.T) {
			if _, err := db.GetUser(t.Context(), "nobody"); !errors.Is(err, partyline.ErrNotFound) {
				t.Fatalf("GetUser before the termination: got %v; want ErrNotFound", err)
			}
			terminateOthers(t, admin)
			err := c.call(t.Context(), db)
			if !errors.Is(err, partyline.ErrUnavailable) {
				t.Errorf("%s on a terminated connection: got %v; want ErrUnavailable", c.name, err)
			}
		})
	}
}

// terminateOthers ends every other session on admin's database and waits
// until they are gone.
func terminateOthers(t *testing.T, admin *pgx.Conn) {
	t.Helper()
	const others = `FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`
	if _, err := admin.Exec(t.Context(), `SELECT pg_terminate_backend(pid) `+others); err != nil {
		t.Fatalf("pg_terminate_backend: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := admin.QueryRow(t.Context(), `SELECT count(*) `+others).Scan(&n); err != nil {
			t.Fatalf("count sessions: %v", err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions still running 10s after pg_terminate_backend", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
