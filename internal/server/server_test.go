package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/partyline/partyline/internal/server"
	"github.com/partyline/partyline/internal/testenv"
)

// TestLifecycle runs a server built from settings alone, as cmd/partyline
// builds it: New opens the store in the data dir, Run starts everything,
// Drain turns readiness false before the HTTP server goes, and Run returns
// once its context ends.
func TestLifecycle(t *testing.T) {
	srv, err := server.New(context.Background(), server.Options{
		NodeID:      "lifecycle",
		DataDir:     t.TempDir(),
		Dev:         true,
		DrainWindow: 50 * time.Millisecond,
		Voice:       server.VoiceOptions{UDPAddr: "127.0.0.1:0"},
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	h, err := srv.Handler()
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	defer hs.Close()
	if got := status(t, hs.URL+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz before Run = %d, want 503", got)
	}

	stop := testenv.Go(t, "Run", srv.Run)
	<-srv.Started()
	testenv.Eventually(t, "ready", func() bool { return status(t, hs.URL+"/readyz") == http.StatusOK })
	if got := status(t, hs.URL+"/v1/openapi.json"); got != http.StatusOK {
		t.Errorf("/v1/openapi.json = %d", got)
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer dcancel()
	if err := srv.Drain(dctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if srv.Ready() {
		t.Error("still ready after Drain")
	}
	if got := status(t, hs.URL+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz after Drain = %d, want 503", got)
	}
	stop()
}

// TestNewRefuses checks the settings New refuses, and that a refused New
// leaves nothing open.
func TestNewRefuses(t *testing.T) {
	for name, opts := range map[string]server.Options{
		"no JWT key without dev mode": {},
		"both JWT keys":               {JWTSecret: "s", JWTPublicKeyPEM: []byte("k")},
		"an unreachable Redis":        {Dev: true, RedisURL: "redis://127.0.0.1:1/0"},
		"a bad Redis URL":             {Dev: true, RedisURL: "http://nope"},
	} {
		t.Run(name, func(t *testing.T) {
			opts.DataDir = t.TempDir()
			opts.Logger = slog.New(slog.DiscardHandler)
			srv, err := server.New(context.Background(), opts)
			if err == nil {
				srv.Close()
				t.Fatal("New succeeded")
			}
		})
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
