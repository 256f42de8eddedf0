package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/store/internal/record"
)

// EnsureUser returns the user, creating the row on first sight. Most calls
// find the row, so it reads first and writes only when the user is new.
func (db *DB) EnsureUser(ctx context.Context, id string) (auth.User, error) {
	if err := record.ID("user", id); err != nil {
		return auth.User{}, fmt.Errorf("postgres: ensure user: %w", err)
	}
	u, err := db.GetUser(ctx, id)
	if err == nil || !errors.Is(err, partyline.ErrNotFound) {
		return u, err
	}
	// A racing call may insert first; DO NOTHING makes that harmless, and the
	// read below, a new statement, sees whichever row won.
	if _, err := db.pool.Exec(ctx,
		`INSERT INTO users (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`,
		id, record.Now()); err != nil {
		return auth.User{}, fmt.Errorf("postgres: ensure user %s: %w", id, classify(err))
	}
	return db.GetUser(ctx, id)
}

// GetUser returns the user, or ErrNotFound.
func (db *DB) GetUser(ctx context.Context, id string) (auth.User, error) {
	var u auth.User
	err := db.pool.QueryRow(ctx, `SELECT id, created_at FROM users WHERE id = $1`, id).Scan(&u.ID, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.User{}, notFound("get user", id)
	}
	if err != nil {
		return auth.User{}, fmt.Errorf("postgres: get user %s: %w", id, err)
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return u, nil
}

// utc returns *t in UTC, or the zero time for NULL.
func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// nullTime returns nil for the zero time, so it is stored as NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = record.Time(t)
	return &t
}
