package auth

import (
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/partyline/partyline"
)

// Signer mints HS256 tokens that a Verifier built with the same secret,
// issuer and audience accepts. Dev mode (POST /v1/dev/token) and
// `partyline token` use it. It is immutable and safe for concurrent use.
type Signer struct {
	secret   []byte
	issuer   string
	audience string
	now      func() time.Time // time.Now; tests replace it
}

// NewSigner returns a Signer for secret, which must be at least
// MinSecretBytes long. An empty issuer or audience leaves that claim out.
// Errors wrap partyline.ErrInvalid.
func NewSigner(secret []byte, issuer, audience string) (*Signer, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("auth: secret is %d bytes, want at least %d: %w", len(secret), MinSecretBytes, partyline.ErrInvalid)
	}
	return &Signer{
		secret:   append([]byte(nil), secret...),
		issuer:   issuer,
		audience: audience,
		now:      time.Now,
	}, nil
}

// Sign mints a token for user that expires after ttl, and returns it with
// its expiry (whole seconds, as in the exp claim). user must match
// ^[A-Za-z0-9_-]{1,64}$ and ttl must be positive; otherwise the error wraps
// partyline.ErrInvalid.
func (s *Signer) Sign(user string, ttl time.Duration) (token string, expiresAt time.Time, err error) {
	if !validUserID(user) {
		return "", time.Time{}, fmt.Errorf("auth: sign: user id must be 1 to 64 of A-Z a-z 0-9 _ -: %w", partyline.ErrInvalid)
	}
	if ttl <= 0 {
		return "", time.Time{}, fmt.Errorf("auth: sign: ttl %s is not positive: %w", ttl, partyline.ErrInvalid)
	}
	now := s.now()
	rc := jwt.RegisteredClaims{
		Subject:   user,
		Issuer:    s.issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	if s.audience != "" {
		rc.Audience = jwt.ClaimStrings{s.audience}
	}
	token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, rc).SignedString(s.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign: %w", err)
	}
	return token, rc.ExpiresAt.Time, nil
}
