package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/partyline/partyline/store/internal/sqlstore"
)

// querier is what a pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// conn is the pool or a transaction as a sqlstore.Conn. Its errors pass
// through unavailable, so every store method reports an outage as
// partyline.ErrUnavailable without handling it itself, and it reads
// timestamptz into *time.Time destinations in UTC, NULL as the zero time.
type conn struct{ q querier }

func (c conn) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := c.q.Exec(ctx, sql, args...)
	return tag.RowsAffected(), unavailable(err)
}

func (c conn) Query(ctx context.Context, sql string, args ...any) (sqlstore.Rows, error) {
	// Like pgxpool, return rows even with an error: Close on them is safe.
	rows, err := c.q.Query(ctx, sql, args...)
	return resultRows{rows}, unavailable(err)
}

func (c conn) QueryRow(ctx context.Context, sql string, args ...any) sqlstore.Row {
	return resultRow{c.q.QueryRow(ctx, sql, args...)}
}

// resultRows is a result whose errors say when the connection was lost while
// reading it.
type resultRows struct{ pgx.Rows }

func (r resultRows) Err() error             { return unavailable(r.Rows.Err()) }
func (r resultRows) Scan(dest ...any) error { return unavailable(r.Rows.Scan(destinations(dest)...)) }

type resultRow struct{ pgx.Row }

func (r resultRow) Scan(dest ...any) error { return unavailable(r.Row.Scan(destinations(dest)...)) }

// destinations returns dest with every *time.Time replaced by a utcTime.
func destinations(dest []any) []any {
	out := make([]any, len(dest))
	for i, d := range dest {
		if t, ok := d.(*time.Time); ok {
			out[i] = utcTime{t}
		} else {
			out[i] = d
		}
	}
	return out
}

// utcTime reads a timestamptz in UTC, and NULL as the zero time.
type utcTime struct{ t *time.Time }

func (u utcTime) ScanTimestamptz(v pgtype.Timestamptz) error {
	*u.t = time.Time{}
	if v.Valid {
		*u.t = v.Time.UTC()
	}
	return nil
}
