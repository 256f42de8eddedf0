package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline"
)

// memUsers is a small in-memory UserStore that counts EnsureUser calls.
type memUsers struct {
	mu      sync.Mutex
	users   map[string]User
	ensures int
	err     error // returned by EnsureUser when set
}

var _ UserStore = (*memUsers)(nil)

func (m *memUsers) EnsureUser(_ context.Context, id string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ensures++
	if m.err != nil {
		return User{}, m.err
	}
	if m.users == nil {
		m.users = make(map[string]User)
	}
	u, ok := m.users[id]
	if !ok {
		u = User{ID: id, CreatedAt: t0}
		m.users[id] = u
	}
	return u, nil
}

func (m *memUsers) GetUser(_ context.Context, id string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[id]
	if !ok {
		return User{}, fmt.Errorf("user %s: %w", id, partyline.ErrNotFound)
	}
	return u, nil
}

func TestAuthenticate(t *testing.T) {
	v, err := NewVerifier(Options{Secret: testSecret, Now: fixedNow})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	valid := sign(t, jwt.SigningMethodHS256, testSecret, claims())
	storeDown := fmt.Errorf("db: %w", partyline.ErrUnavailable)

	tests := []struct {
		name        string
		token       string
		storeErr    error
		wantUser    User
		wantClaims  Claims
		wantErr     error
		wantEnsures int
	}{
		{
			name:        "valid token",
			token:       valid,
			wantUser:    User{ID: "alice", CreatedAt: t0},
			wantClaims:  Claims{UserID: "alice", ExpiresAt: t0.Add(time.Hour), IssuedAt: t0.Add(-time.Minute)},
			wantEnsures: 1,
		},
		{
			name:        "rejected token never reaches the store",
			token:       sign(t, jwt.SigningMethodHS256, testSecret, claims("exp", t0.Add(-time.Hour).Unix())),
			wantErr:     partyline.ErrUnauthorized,
			wantEnsures: 0,
		},
		{
			name:        "store error is not unauthorized",
			token:       valid,
			storeErr:    storeDown,
			wantErr:     partyline.ErrUnavailable,
			wantEnsures: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users := &memUsers{err: tt.storeErr}
			a := NewAuthenticator(v, users)
			u, c, err := a.Authenticate(t.Context(), tt.token)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Authenticate error = %v; want %v", err, tt.wantErr)
			}
			if tt.storeErr != nil && errors.Is(err, partyline.ErrUnauthorized) {
				t.Errorf("Authenticate reported a store error as unauthorized: %v", err)
			}
			if users.ensures != tt.wantEnsures {
				t.Errorf("EnsureUser calls = %d; want %d", users.ensures, tt.wantEnsures)
			}
			if diff := cmp.Diff(tt.wantUser, u); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantClaims, c); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAuthenticateUpsertsOnce(t *testing.T) {
	v, err := NewVerifier(Options{Secret: testSecret, Now: fixedNow})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	users := &memUsers{}
	a := NewAuthenticator(v, users)
	tok := sign(t, jwt.SigningMethodHS256, testSecret, claims())
	for i := range 3 {
		if _, _, err := a.Authenticate(t.Context(), tok); err != nil {
			t.Fatalf("Authenticate #%d: %v", i, err)
		}
	}
	if got, want := users.ensures, 3; got != want {
		t.Errorf("EnsureUser calls = %d; want %d (one per Authenticate)", got, want)
	}
	got, err := users.GetUser(t.Context(), "alice")
	if err != nil {
		t.Fatalf("GetUser: %v", err)
	}
	if diff := cmp.Diff(User{ID: "alice", CreatedAt: t0}, got); diff != "" {
		t.Errorf("stored user (-want +got):\n%s", diff)
	}
	if n := len(users.users); n != 1 {
		t.Errorf("store holds %d users; want 1", n)
	}
}

func TestUserContext(t *testing.T) {
	if u, ok := UserFrom(t.Context()); ok {
		t.Errorf("UserFrom(empty context) = %+v, true; want false", u)
	}
	want := User{ID: "alice", CreatedAt: t0}
	got, ok := UserFrom(WithUser(t.Context(), want))
	if !ok {
		t.Fatalf("UserFrom(WithUser(...)) = false; want true")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("UserFrom (-want +got):\n%s", diff)
	}
}
