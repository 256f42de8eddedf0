package auth

import (
	"context"
	"fmt"
)

// Authenticator turns a token into a user: it verifies the token and upserts
// the user row on first sight. It is safe for concurrent use when its
// UserStore is.
type Authenticator struct {
	verifier *Verifier
	users    UserStore
}

// NewAuthenticator returns an Authenticator that verifies with v and keeps
// user rows in users.
func NewAuthenticator(v *Verifier, users UserStore) *Authenticator {
	return &Authenticator{verifier: v, users: users}
}

// Authenticate verifies token and returns its user, created on first sight,
// with the token's claims. It calls users.EnsureUser once per successful
// verification and never for a rejected token.
//
// A rejected token gives an error wrapping partyline.ErrUnauthorized. A store
// failure is returned wrapped as it is (for example partyline.ErrUnavailable),
// never as unauthorized, so a database outage does not log everyone out.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (User, Claims, error) {
	claims, err := a.verifier.Verify(token)
	if err != nil {
		return User{}, Claims{}, err
	}
	u, err := a.users.EnsureUser(ctx, claims.UserID)
	if err != nil {
		return User{}, Claims{}, fmt.Errorf("auth: ensure user %s: %w", claims.UserID, err)
	}
	return u, claims, nil
}
