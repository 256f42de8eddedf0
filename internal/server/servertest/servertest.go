package servertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/internal/server"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/wire"
	"github.com/partyline/partyline/store/sqlite"
)

// APIKey is the server API key of every test server.
const APIKey = "test-api-key"

// Server is a running test server.
type Server struct {
	*server.Server
	// URL is the server's base URL, http://127.0.0.1:port.
	URL string
	// WS is the WebSocket URL, ws://127.0.0.1:port/v1/ws.
	WS string
	// HTTP is the test server's client.
	HTTP *http.Client
}

// Start builds a server from opts, filling in the test defaults for what
// opts leave zero, serves it and runs it until the test ends. The
// defaults: node id "test", a temporary data dir, a migrated SQLite store
// in it, the memory backend, Tokens as the Authenticator unless a JWT key
// is set, APIKey, 1000 publishes per second, voice on 127.0.0.1 at a free
// port, a logger that discards, and the fast paths under the libraries
// off when testenv.FastPaths says so. Extra routes, such as a test page
// that must be on the server's origin, are served beside the server's own.
func Start(t testing.TB, opts server.Options, extra ...Route) *Server {
	t.Helper()
	ctx := context.Background()
	if opts.NodeID == "" {
		opts.NodeID = "test"
	}
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Store == nil && opts.DatabaseURL == "" {
		db, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(opts.DataDir, "partyline.db")})
		if err != nil {
			t.Fatalf("servertest: sqlite: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("servertest: migrate: %v", err)
		}
		opts.Store = db
	}
	if opts.Authenticator == nil && opts.JWTSecret == "" && len(opts.JWTPublicKeyPEM) == 0 {
		opts.Authenticator = Tokens{Users: opts.Store}
	}
	if opts.APIKey == "" {
		opts.APIKey = APIKey
	}
	if opts.PublishRate == 0 {
		opts.PublishRate = 1000
	}
	if opts.Voice.UDPAddr == "" {
		opts.Voice.UDPAddr = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if !testenv.FastPaths() {
		opts.DisableWSFastPath = true
		opts.DisableVoiceDirectPath = true
	}
	srv, err := server.New(ctx, opts)
	if err != nil {
		t.Fatalf("servertest: server.New: %v", err)
	}
	h, err := srv.Handler()
	if err != nil {
		srv.Close()
		t.Fatalf("servertest: Handler: %v", err)
	}
	if len(extra) > 0 {
		mux := http.NewServeMux()
		mux.Handle("/", h)
		for _, r := range extra {
			mux.Handle(r.Pattern, r.Handler)
		}
		h = mux
	}
	hs := httptest.NewServer(h)
	// Cleanups run last first: Go's stops Run before this one closes.
	t.Cleanup(func() {
		hs.Close()
		if err := srv.Close(); err != nil {
			t.Errorf("servertest: Close: %v", err)
		}
	})
	returned := make(chan struct{})
	testenv.Go(t, "servertest: Run", func(ctx context.Context) error {
		defer close(returned)
		return srv.Run(ctx)
	})
	select {
	case <-srv.Started():
	case <-returned:
		t.Fatalf("servertest: Run returned at once")
	}
	return &Server{
		Server: srv,
		URL:    hs.URL,
		WS:     "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/ws",
		HTTP:   hs.Client(),
	}
}

// Route is an extra route of a test server.
type Route struct {
	Pattern string // a net/http ServeMux pattern
	Handler http.Handler
}

// Tokens is the test Authenticator: a token is the user id itself. An
// empty token, "bad", and one that is not a valid id are refused with
// ErrUnauthorized; "expired:<user>" is a token that has expired. The user
// is upserted in Users on first sight, as with real tokens, when Users is
// set.
type Tokens struct {
	Users auth.UserStore
}

// Authenticate implements server.Authenticator.
func (a Tokens) Authenticate(ctx context.Context, token string) (auth.User, time.Time, error) {
	if strings.HasPrefix(token, "expired:") {
		return auth.User{}, time.Time{}, partyline.Errorf(partyline.ErrUnauthorized, "token expired")
	}
	if token == "" || token == "bad" || !wire.ValidID(token) {
		return auth.User{}, time.Time{}, fmt.Errorf("bad token %q: %w", token, partyline.ErrUnauthorized)
	}
	if a.Users == nil {
		return auth.User{ID: token}, time.Now().Add(time.Hour), nil
	}
	u, err := a.Users.EnsureUser(ctx, token)
	if err != nil {
		return auth.User{}, time.Time{}, errors.Join(partyline.ErrUnavailable, err)
	}
	return u, time.Now().Add(time.Hour), nil
}
