package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline"
)

func newTestSigner(t *testing.T, secret []byte, issuer, audience string) *Signer {
	t.Helper()
	s, err := NewSigner(secret, issuer, audience)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	s.now = fixedNow
	return s
}

func TestSignerRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		issuer   string
		audience string
		ttl      time.Duration
	}{
		{"with iss and aud", testIssuer, testAudience, 24 * time.Hour},
		{"without iss and aud", "", "", time.Hour},
		{"fractional ttl truncated to whole seconds", "", "", 90 * time.Second / 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestSigner(t, testSecret, tt.issuer, tt.audience)
			v, err := NewVerifier(Options{Secret: testSecret, Issuer: tt.issuer, Audience: tt.audience, Now: fixedNow})
			if err != nil {
				t.Fatalf("NewVerifier: %v", err)
			}
			tok, exp, err := s.Sign("bob_42", tt.ttl)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if want := t0.Add(tt.ttl).Truncate(time.Second); !exp.Equal(want) {
				t.Errorf("Sign expiresAt = %v; want %v", exp, want)
			}
			got, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := Claims{UserID: "bob_42", ExpiresAt: exp, IssuedAt: t0}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Verify claims (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSignerVerifierMismatch checks that a Verifier configured differently
// from the Signer rejects its tokens, as does one whose clock is past
// their expiry.
func TestSignerVerifierMismatch(t *testing.T) {
	s := newTestSigner(t, testSecret, testIssuer, testAudience)
	tok, _, err := s.Sign("alice", time.Hour)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	tests := []struct {
		name string
		opts Options
	}{
		{"other secret", Options{Secret: []byte(strings.Repeat("k", 32))}},
		{"other issuer", Options{Secret: testSecret, Issuer: "other"}},
		{"other audience", Options{Secret: testSecret, Audience: "other"}},
		{"public key", Options{PublicKeyPEM: pkixPEM(t, testEdKey().Public())}},
		{"after expiry", Options{Secret: testSecret, Issuer: testIssuer, Audience: testAudience, Now: func() time.Time {
			return t0.Add(time.Hour + defaultLeeway + time.Second)
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts.Now == nil {
				tt.opts.Now = fixedNow
			}
			v, err := NewVerifier(tt.opts)
			if err != nil {
				t.Fatalf("NewVerifier: %v", err)
			}
			if _, err := v.Verify(tok); !errors.Is(err, partyline.ErrUnauthorized) {
				t.Errorf("Verify = %v; want an error wrapping ErrUnauthorized", err)
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	s := newTestSigner(t, testSecret, "", "")
	tests := []struct {
		name string
		user string
		ttl  time.Duration
	}{
		{"empty user", "", time.Hour},
		{"65-char user", strings.Repeat("a", 65), time.Hour},
		{"user with a slash", "a/b", time.Hour},
		{"zero ttl", "alice", 0},
		{"negative ttl", "alice", -time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, _, err := s.Sign(tt.user, tt.ttl)
			if !errors.Is(err, partyline.ErrInvalid) {
				t.Fatalf("Sign = %q, %v; want an error wrapping ErrInvalid", tok, err)
			}
		})
	}
}

func TestNewSignerShortSecret(t *testing.T) {
	if _, err := NewSigner(testSecret[:MinSecretBytes-1], "", ""); !errors.Is(err, partyline.ErrInvalid) {
		t.Errorf("NewSigner with a short secret = %v; want an error wrapping ErrInvalid", err)
	}
}
