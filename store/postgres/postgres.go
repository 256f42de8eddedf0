package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

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
	// URL is the PostgreSQL connection string, a postgres:// URL or a
	// key=value DSN as pgx accepts it. Required.
	URL string
	// MaxConns caps the connection pool. Zero means the pgxpool default
	// (the greater of 4 and the number of CPUs).
	MaxConns int32
}

// DB is the PostgreSQL store. It is safe for concurrent use. What both
// stores do alike is sqlstore.Store's; DB adds what PostgreSQL does its own
// way.
type DB struct {
	*sqlstore.Store
	pool *pgxpool.Pool
	conn conn // pool as a sqlstore.Conn
}

// Open connects to PostgreSQL and checks the connection with a ping. It does
// not migrate: call Migrate before first use of a new database.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.URL == "" {
		return nil, fmt.Errorf("postgres: open: empty URL: %w", partyline.ErrInvalid)
	}
	if opts.MaxConns < 0 {
		return nil, fmt.Errorf("postgres: open: negative MaxConns %d: %w", opts.MaxConns, partyline.ErrInvalid)
	}
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	p, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := p.Ping(ctx); err != nil {
		p.Close()
		return nil, fmt.Errorf("postgres: open: ping: %w", unavailable(err))
	}
	return fromPool(p), nil
}

func fromPool(p *pgxpool.Pool) *DB {
	db := &DB{pool: p, conn: conn{p}}
	db.Store = sqlstore.New(sqlstore.Options{
		Name:        "postgres",
		Read:        db.conn,
		Write:       db.conn,
		InTx:        db.inTx,
		Classify:    classify,
		RetryInsert: lostIdemRace,
		SQL:         statements,
		NewestClips: db.newestClips,
	})
	return db
}

// Close closes every connection of the pool. It waits for connections in use
// to be released, so it must not be called while an operation is still
// expected to finish; operations after Close fail.
func (db *DB) Close() { db.pool.Close() }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", unavailable(err))
	}
	return nil
}

// Migrate brings the schema up to the newest embedded migration. It is safe
// to run on an up-to-date database, where it changes nothing, and from
// several nodes at once: a PostgreSQL advisory lock lets one node migrate
// while the others wait for it.
func (db *DB) Migrate(ctx context.Context) error {
	p, closeFn, err := db.provider()
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer closeFn()
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// Version returns the schema version: the number of the newest migration
// applied, or 0 on a database never migrated.
func (db *DB) Version(ctx context.Context) (int64, error) {
	p, closeFn, err := db.provider()
	if err != nil {
		return 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	defer closeFn()
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	return v, nil
}

func (db *DB) provider() (*goose.Provider, func(), error) {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, nil, err
	}
	// Poll for the lock every second, for up to five minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, nil, err
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, dir, goose.WithSessionLocker(locker))
	if err != nil {
		sqlDB.Close()
		return nil, nil, err
	}
	// Closing the *sql.DB returns its connections to the pool; the pool
	// itself stays open.
	return p, func() { sqlDB.Close() }, nil
}

// inTx runs fn in a read-committed transaction, committing when fn returns
// nil and rolling back otherwise. Its error, fn's included, says when the
// database is unavailable (see unavailable).
func (db *DB) inTx(ctx context.Context, fn func(sqlstore.Conn) error) error {
	return unavailable(pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return fn(conn{tx}) }))
}

// unavailable wraps err with partyline.ErrUnavailable, keeping err in the
// chain, when err says the database cannot be reached (see isUnavailable),
// so clients get 503 and the WebSocket code unavailable instead of an
// internal error. Any other error, nil included, is returned unchanged.
func unavailable(err error) error {
	if err == nil || errors.Is(err, partyline.ErrUnavailable) || !isUnavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", partyline.ErrUnavailable, err)
}

// isUnavailable reports whether err, from pgx, pgxpool or pgconn, means that
// the database could not be reached or dropped the connection, which a retry
// later may fix, rather than that the statement failed. A cancelled context
// is the caller giving up, never an outage, even where pgconn reports it as
// a timeout.
func isUnavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	// Checked before PgError: a server that refuses the connection (a
	// missing database, a failed login) is an outage for the client too.
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case codeAdminShutdown, codeCrashShutdown, codeCannotConnectNow, codeTooManyConnections:
			return true
		}
		return strings.HasPrefix(pe.Code, classConnectionException)
	}
	var ne net.Error
	return errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed) ||
		// A deadline that passes in a statement is a pgconn timeout; one
		// that passes while waiting for a connection of a busy pool is
		// the bare context error.
		pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded)
}

// PostgreSQL error codes the store gives a domain meaning.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeCheckViolation      = "23514"
	codeInvalidText         = "22P02"
	codeInvalidJSON         = "22032"

	// The codes isUnavailable takes for an outage.
	classConnectionException = "08"
	codeAdminShutdown        = "57P01"
	codeCrashShutdown        = "57P02"
	codeCannotConnectNow     = "57P03"
	codeTooManyConnections   = "53300"
)

// classify maps a constraint violation to its domain error, keeping the
// driver error in the chain: unique violations are ErrConflict, missing
// referenced rows ErrNotFound, and malformed values ErrInvalid. Other errors
// are returned unchanged.
func classify(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case codeUniqueViolation:
		return fmt.Errorf("%w: %w", partyline.ErrConflict, err)
	case codeForeignKeyViolation:
		return fmt.Errorf("%w: %w", partyline.ErrNotFound, err)
	case codeCheckViolation, codeInvalidText, codeInvalidJSON:
		return fmt.Errorf("%w: %w", partyline.ErrInvalid, err)
	}
	return err
}

// lostIdemRace reports whether err is the unique violation of an insert of
// a message that lost a race with another insert of its idempotency key.
// Two retries racing with one key both miss the lookup and both insert; the
// unique index on (author, idem_key) makes the later insert wait for the
// earlier one and then fail, and the loser runs again, now finding the
// winner's message.
func lostIdemRace(err error) bool {
	return uniqueViolation(err, "messages_author_idem_key_idx") || uniqueViolation(err, "messages_pkey")
}

// uniqueViolation reports whether err is a unique violation of the named
// constraint or index.
func uniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == codeUniqueViolation && pe.ConstraintName == constraint
}
