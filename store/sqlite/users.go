package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/store/internal/record"
)

// EnsureUser returns the user, creating the row on first sight. Most calls
// find the row, so it reads first and takes the writer only for a new user.
func (db *DB) EnsureUser(ctx context.Context, id string) (auth.User, error) {
	if err := record.ID("user", id); err != nil {
		return auth.User{}, fmt.Errorf("sqlite: ensure user: %w", err)
	}
	u, err := db.GetUser(ctx, id)
	if err == nil || !errors.Is(err, partyline.ErrNotFound) {
		return u, err
	}
	// A racing call may insert first; DO NOTHING makes that harmless, and the
	// read below sees whichever row won, since it was committed before.
	if _, err := db.w.ExecContext(ctx,
		`INSERT INTO users (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`,
		id, ms(record.Now())); err != nil {
		return auth.User{}, fmt.Errorf("sqlite: ensure user %s: %w", id, classify(err))
	}
	return db.GetUser(ctx, id)
}

// GetUser returns the user, or ErrNotFound.
func (db *DB) GetUser(ctx context.Context, id string) (auth.User, error) {
	var (
		u       auth.User
		created int64
	)
	err := db.r.QueryRowContext(ctx, `SELECT id, created_at FROM users WHERE id = ?`, id).Scan(&u.ID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return auth.User{}, notFound("get user", id)
	}
	if err != nil {
		return auth.User{}, fmt.Errorf("sqlite: get user %s: %w", id, err)
	}
	u.CreatedAt = fromMS(created)
	return u, nil
}
