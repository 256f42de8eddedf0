package sqlstore

import (
	"context"
	"errors"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/store/internal/record"
)

// EnsureUser returns the user, creating the row on first sight. Most calls
// find the row, so it reads first and writes only when the user is new.
func (s *Store) EnsureUser(ctx context.Context, id string) (auth.User, error) {
	if err := record.ID("user", id); err != nil {
		return auth.User{}, s.errorf("ensure user: %w", err)
	}
	u, err := s.GetUser(ctx, id)
	if err == nil || !errors.Is(err, partyline.ErrNotFound) {
		return u, err
	}
	// A racing call may insert first; DO NOTHING makes that harmless, and the
	// read below, a new statement, sees whichever row won.
	if _, err := s.w.Exec(ctx,
		`INSERT INTO users (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`,
		id, record.Now()); err != nil {
		return auth.User{}, s.errorf("ensure user %s: %w", id, s.opts.Classify(err))
	}
	return s.GetUser(ctx, id)
}

// GetUser returns the user, or ErrNotFound.
func (s *Store) GetUser(ctx context.Context, id string) (auth.User, error) {
	var u auth.User
	err := s.r.QueryRow(ctx, `SELECT id, created_at FROM users WHERE id = $1`, id).Scan(&u.ID, &u.CreatedAt)
	return found(s, u, err, "get user", id)
}
