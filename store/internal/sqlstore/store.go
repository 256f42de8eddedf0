package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/clips"
)

// Row is one result row. pgx.Row, pgx.Rows, *sql.Row and *sql.Rows all
// have this method.
type Row interface {
	Scan(dest ...any) error
}

// Rows is a result being read, closed by Close.
type Rows interface {
	Row
	Next() bool
	Err() error
	Close()
}

// Conn runs statements on a pool or inside a transaction. Statements number
// their parameters $1, $2, ..., which both PostgreSQL and SQLite accept.
// Arguments and scan destinations are plain Go values: time.Time, []string,
// strings and integers; a Conn converts them to and from the stored forms
// of its database, and returns every time in UTC, the zero time for NULL.
// A read that finds no row reports an error that errors.Is sql.ErrNoRows.
type Conn interface {
	Exec(ctx context.Context, query string, args ...any) (rowsAffected int64, err error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Options says how a Store reaches its database and what differs in it.
type Options struct {
	// Name prefixes every error message: "postgres" or "sqlite".
	Name string
	// Read runs reads and Write runs writes outside transactions. They may
	// be the same Conn.
	Read, Write Conn
	// InTx runs fn in a transaction, committing when fn returns nil and
	// rolling back otherwise. fn must use the Conn it is given.
	InTx func(ctx context.Context, fn func(tx Conn) error) error
	// Classify maps a constraint violation to partyline.ErrConflict,
	// ErrNotFound or ErrInvalid, keeping the driver error in the chain, and
	// returns any other error unchanged.
	Classify func(error) error
	// RetryInsert reports whether an insert of a message with an
	// idempotency key lost a race with another insert of the same key and
	// should run again, now finding the winner's message. Nil means never:
	// the database serializes those inserts itself.
	RetryInsert func(error) bool
	// SQL holds the statements whose text differs between databases.
	SQL Statements
	// NewestClips returns up to per of the newest listable clips for each
	// of values, in column col ("game" or "owner", never input), in any
	// order. It is called only with some values and a positive per.
	NewestClips func(ctx context.Context, col string, values []string, per int) ([]clips.Clip, error)
}

// Statements are the statements written per database, with the parameters
// and result columns documented on each.
type Statements struct {
	// RowLock ends the read of a row that the same transaction then
	// updates: " FOR UPDATE", or "" where write transactions are exclusive.
	RowLock string
	// AddOwner inserts the first member of a new room: room_id $1,
	// user_id $2, role $3, joined_at $4.
	AddOwner string
	// PutMember upserts a member with the same parameters, changing only
	// the role of an existing one.
	PutMember string
	// AdvanceRoomMarker moves a member's last_read_id forward to $3, never
	// back: room_id $1, user_id $2.
	AdvanceRoomMarker string
	// UserRooms lists the rooms of user $1 newest activity first, with the
	// columns scanRoomSummary reads.
	UserRooms string
	// Engagement returns the hourly engagement since $1 with the columns
	// Engagement reads.
	Engagement string
	// ViewerHistory returns up to $2 newest events and likes of viewer $1
	// with the columns ViewerHistory reads.
	ViewerHistory string
}

// Store implements the parts of chat.Store, clips.Store, feed.Store and
// auth.UserStore whose logic is the same in every database. It is safe for
// concurrent use when its Conns are.
type Store struct {
	r, w Conn // opts.Read and opts.Write, used everywhere
	opts Options
}

// New returns a Store over the Conns in opts.
func New(opts Options) *Store {
	return &Store{r: opts.Read, w: opts.Write, opts: opts}
}

// errorf returns an error whose message starts with the store's name.
func (s *Store) errorf(format string, args ...any) error {
	return fmt.Errorf(s.opts.Name+": "+format, args...)
}

// notFound wraps partyline.ErrNotFound with what was missing.
func (s *Store) notFound(op, id string) error {
	return s.errorf("%s %s: %w", op, id, partyline.ErrNotFound)
}

// found returns v, or when err says that no row was found, ErrNotFound
// naming op and id; any other error is wrapped with them.
func found[T any](s *Store, v T, err error, op, id string) (T, error) {
	var zero T
	if errors.Is(err, sql.ErrNoRows) {
		return zero, s.notFound(op, id)
	}
	if err != nil {
		return zero, s.errorf("%s %s: %w", op, id, err)
	}
	return v, nil
}

// affected turns an Exec result into ErrNotFound, naming op and id, when no
// row changed.
func (s *Store) affected(n int64, err error, op, id string) error {
	if err != nil {
		return s.errorf("%s %s: %w", op, id, err)
	}
	if n == 0 {
		return s.notFound(op, id)
	}
	return nil
}

// List runs query on c and scans every row with scan into a slice that is
// never nil.
func List[T any](ctx context.Context, c Conn, scan func(Row) (T, error), query string, args ...any) ([]T, error) {
	rows, err := c.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
