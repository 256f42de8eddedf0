package auth

import (
	"context"

	"github.com/partyline/partyline"
)

// userKey is the context key for the authenticated user. Its type is
// unexported, so only this package can set or read the value.
type userKey struct{}

// WithUser returns a copy of ctx carrying u as the authenticated user.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user put in ctx by WithUser, and false when there is
// none.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(userKey{}).(User)
	return u, ok
}

// UserID returns the id of the user put in ctx by WithUser, "" when there
// is none (an anonymous request).
func UserID(ctx context.Context) string {
	u, _ := UserFrom(ctx)
	return u.ID
}

// RequireUserID returns the id of the user put in ctx by WithUser, or an
// error wrapping partyline.ErrUnauthorized when there is none. Handlers of
// routes that need a signed-in user call it.
func RequireUserID(ctx context.Context) (string, error) {
	if id := UserID(ctx); id != "" {
		return id, nil
	}
	return "", partyline.Errorf(partyline.ErrUnauthorized, "this needs a bearer token")
}
