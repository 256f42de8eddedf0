package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/partyline/partyline/store/internal/record"
	"github.com/partyline/partyline/store/internal/sqlstore"
)

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn is a pool or a transaction as a sqlstore.Conn. It stores a time.Time
// argument as INTEGER unix milliseconds and a []string as a JSON array in
// TEXT, and reads them back into *time.Time (NULL is the zero time) and
// *[]string destinations.
type conn struct{ q querier }

func (c conn) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := c.q.ExecContext(ctx, query, values(args)...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (c conn) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := c.q.QueryContext(ctx, query, values(args)...)
	if err != nil {
		return nil, err
	}
	return resultRows{rows}, nil
}

func (c conn) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return resultRow{c.q.QueryRowContext(ctx, query, values(args)...)}
}

type resultRow struct{ *sql.Row }

func (r resultRow) Scan(dest ...any) error { return r.Row.Scan(destinations(dest)...) }

type resultRows struct{ *sql.Rows }

func (r resultRows) Scan(dest ...any) error { return r.Rows.Scan(destinations(dest)...) }

// Close closes the rows; an error closing them shows in Err.
func (r resultRows) Close() { r.Rows.Close() }

// values returns args with times and string lists in their stored form.
func values(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch a := a.(type) {
		case time.Time:
			out[i] = record.Time(a).UnixMilli()
		case []string:
			b, err := json.Marshal(record.Tags(a))
			if err != nil {
				panic(err) // a []string always marshals
			}
			out[i] = string(b)
		default:
			out[i] = a
		}
	}
	return out
}

// destinations returns dest with *time.Time and *[]string replaced by
// scanners of their stored form.
func destinations(dest []any) []any {
	out := make([]any, len(dest))
	for i, d := range dest {
		switch d := d.(type) {
		case *time.Time:
			out[i] = msTime{d}
		case *[]string:
			out[i] = jsonList{d}
		default:
			out[i] = d
		}
	}
	return out
}

// msTime reads INTEGER unix milliseconds, or NULL as the zero time.
type msTime struct{ t *time.Time }

func (m msTime) Scan(src any) error {
	switch src := src.(type) {
	case int64:
		*m.t = time.UnixMilli(src).UTC()
	case nil:
		*m.t = time.Time{}
	default:
		return fmt.Errorf("time stored as %T, want INTEGER milliseconds", src)
	}
	return nil
}

// jsonList reads a JSON array of strings from TEXT; NULL is nil.
type jsonList struct{ l *[]string }

func (j jsonList) Scan(src any) error {
	switch src := src.(type) {
	case string:
		return json.Unmarshal([]byte(src), j.l)
	case []byte:
		return json.Unmarshal(src, j.l)
	case nil:
		*j.l = nil
		return nil
	}
	return fmt.Errorf("list stored as %T, want JSON TEXT", src)
}
