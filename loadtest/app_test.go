package loadtest

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/internal/httpx"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/signaling"
	"github.com/partyline/partyline/store/sqlite"
)

// appAuth adapts the JWT authenticator to the gateway, upserting users as
// the server does.
type appAuth struct{ a *auth.Authenticator }

func (a appAuth) Authenticate(ctx context.Context, token string) (string, time.Time, error) {
	u, c, err := a.a.Authenticate(ctx, token)
	if err != nil {
		return "", time.Time{}, err
	}
	return u.ID, c.ExpiresAt, nil
}

// startApp runs a gateway with chat, clips and the feed on an embedded
// store, routed as the server routes them: what the scenarios talk to. It
// returns the base URL.
func startApp(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "lt.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Options{Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	authn := auth.NewAuthenticator(v, db)
	c, err := chat.New(chat.Options{Store: db, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := clips.NewDir(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	fd, err := feed.New(feed.Options{Store: db, Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(),
		BoardInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := clips.New(clips.Options{
		Store: db, Blobs: blobs, NoMediaTools: true, Logger: slog.New(slog.DiscardHandler),
		OnEvent: fd.Observe, OnComment: fd.ObserveComment,
	})
	if err != nil {
		t.Fatal(err)
	}
	voice, err := signaling.New(signaling.Options{
		Members: signaling.ChatMembers{Store: db}, UDPAddr: "127.0.0.1:0",
		Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	node, err := realtime.New(realtime.Options{
		NodeID: "lt-test", Auth: appAuth{authn}, Extensions: []realtime.Extension{c, cl, voice},
		APIKey: testAPIKey, MaxConnsPerUser: 100, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.SetPublisher(node)
	cl.SetNotifier(node)
	voice.Attach(node)
	runCtx, stop := context.WithCancel(ctx)
	voiceCtx, stopVoice := context.WithCancel(ctx)
	voiceDone := make(chan error, 1)
	go func() { voiceDone <- voice.Run(voiceCtx) }()
	ran := make(chan error, 3)
	go func() { ran <- node.Run(runCtx) }()
	go func() { ran <- cl.Run(runCtx) }()
	go func() { ran <- fd.Run(runCtx) }()
	<-node.Started()

	requireUser := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, _ := auth.BearerToken(r)
			u, _, err := authn.Authenticate(r.Context(), tok)
			if err != nil {
				httpx.Error(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(auth.WithUser(r.Context(), u)))
		})
	}
	// The routes as the server lays them out (cmd/partyline/routes.go).
	r := chi.NewRouter()
	r.Handle("/v1/ws", node)
	r.With(requireUser).Put("/v1/clips/{id}/media", cl.HandleUpload)
	r.Route("/v1", func(r chi.Router) {
		r.Mount("/server", node.ServerAPI())
		r.Group(func(r chi.Router) {
			r.Use(requireUser)
			r.Mount("/rooms", c.RoomRoutes())
			r.Mount("/clips", cl.Routes())
			fd.MountUsers(r)
			r.Mount("/feed", fd.Routes())
		})
	})
	srv := httptest.NewServer(r)
	t.Cleanup(func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = node.Drain(dctx)
		cancel()
		srv.CloseClientConnections()
		srv.Close()
		stopVoice()
		if err := <-voiceDone; err != nil {
			t.Errorf("voice Run: %v", err)
		}
		stop()
		for range 3 {
			if err := <-ran; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	})
	return srv.URL
}
