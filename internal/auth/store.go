package auth

import (
	"context"
	"time"
)

// User is a user of partyline, created on first sight from a verified token.
type User struct {
	ID        string
	CreatedAt time.Time
}

// UserStore keeps user rows. Implementations are safe for concurrent use.
type UserStore interface {
	// EnsureUser returns the user, creating the row on first sight. It is
	// idempotent and safe to race: concurrent calls for one id create one row.
	EnsureUser(ctx context.Context, id string) (User, error)
	// GetUser returns the user, or an error wrapping partyline.ErrNotFound.
	GetUser(ctx context.Context, id string) (User, error)
}
