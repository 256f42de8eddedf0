package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strings"

	"github.com/pressly/goose/v3"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/store/internal/sqlstore"
)

var (
	_ chat.Store     = (*DB)(nil)
	_ clips.Store    = (*DB)(nil)
	_ feed.Store     = (*DB)(nil)
	_ auth.UserStore = (*DB)(nil)
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options configures Open.
type Options struct {
	// Path is the database file, created when missing. Its directory must
	// exist. Required; it may not contain '?'.
	Path string
}

// DB is the SQLite store. It is safe for concurrent use.
//
// Writes go through w, a pool of exactly one connection whose transactions
// begin IMMEDIATE, so writers queue in Go instead of contending for the
// SQLite write lock. Reads use r, a pool of read-only connections that WAL
// mode lets run beside the writer.
//
// What both stores do alike is sqlstore.Store's; DB adds what SQLite does
// its own way.
type DB struct {
	*sqlstore.Store
	w *sql.DB
	r *sql.DB
}

// busyTimeoutMS bounds how long a connection waits for a lock held by
// another process (a second partyline, or a migrate run); within this
// process the single writer means no write ever waits on a lock.
const busyTimeoutMS = 10000

// Open opens, and creates when missing, the database file at opts.Path in
// WAL mode with foreign keys on. It does not migrate: call Migrate before
// first use of a new file.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.Path == "" || strings.Contains(opts.Path, "?") {
		return nil, fmt.Errorf("sqlite: open: bad path %q: %w", opts.Path, partyline.ErrInvalid)
	}
	common := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)", busyTimeoutMS)
	w, err := sql.Open("sqlite", opts.Path+"?"+common+
		"&_txlock=immediate&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", opts.Path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// Connect the writer first: it creates the file and switches it to WAL,
	// which the readers then find in place.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", opts.Path, err)
	}
	r, err := sql.Open("sqlite", opts.Path+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", opts.Path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", opts.Path, err)
	}
	return newDB(w, r), nil
}

func newDB(w, r *sql.DB) *DB {
	db := &DB{w: w, r: r}
	db.Store = sqlstore.New(sqlstore.Options{
		Name:        "sqlite",
		Read:        conn{r},
		Write:       conn{w},
		InTx:        db.inTx,
		Classify:    classify,
		SQL:         statements,
		NewestClips: db.newestClips,
	})
	return db
}

// Close closes both pools. Operations after Close fail.
func (db *DB) Close() error {
	return errors.Join(db.r.Close(), db.w.Close())
}

// Ping checks that both the writer and a reader answer.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Migrate brings the schema up to the newest embedded migration. It is safe
// to run on an up-to-date file, where it changes nothing. Migrations run on
// the writer connection, so they queue behind, and ahead of, other writes of
// this process.
func (db *DB) Migrate(ctx context.Context) error {
	p, err := db.provider()
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

// Version returns the schema version: the number of the newest migration
// applied, or 0 on a file never migrated.
func (db *DB) Version(ctx context.Context) (int64, error) {
	p, err := db.provider()
	if err != nil {
		return 0, fmt.Errorf("sqlite: schema version: %w", err)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("sqlite: schema version: %w", err)
	}
	return v, nil
}

func (db *DB) provider() (*goose.Provider, error) {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectSQLite3, db.w, dir)
}

// inTx runs fn in an IMMEDIATE transaction on the writer, committing when fn
// returns nil and rolling back otherwise. fn must use tx for every statement:
// the writer has one connection, which tx holds.
func (db *DB) inTx(ctx context.Context, fn func(sqlstore.Conn) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(conn{tx}); err != nil {
		return errors.Join(err, rollback(tx))
	}
	return tx.Commit()
}

func rollback(tx *sql.Tx) error {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}

// classify maps a constraint violation to its domain error, keeping the
// driver error in the chain: unique violations are ErrConflict, missing
// referenced rows ErrNotFound, and failed checks ErrInvalid. Other errors
// are returned unchanged.
func classify(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("%w: %w", partyline.ErrConflict, err)
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("%w: %w", partyline.ErrNotFound, err)
	case sqlite3.SQLITE_CONSTRAINT_CHECK:
		return fmt.Errorf("%w: %w", partyline.ErrInvalid, err)
	}
	return err
}
