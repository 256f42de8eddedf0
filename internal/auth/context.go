package auth

import "context"

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
