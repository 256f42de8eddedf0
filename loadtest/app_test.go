package loadtest

import (
	"testing"
	"time"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/internal/server"
	"github.com/partyline/partyline/internal/server/servertest"
)

// startApp runs a whole server on an embedded store, built by the one
// assembly: what the scenarios talk to. It returns the base URL.
func startApp(t *testing.T) string {
	t.Helper()
	srv := servertest.Start(t, server.Options{
		JWTSecret:       testSecret,
		APIKey:          testAPIKey,
		MaxConnsPerUser: 100,
		TuneClips:       func(o *clips.Options) { o.NoMediaTools = true },
		TuneFeed:        func(o *feed.Options) { o.BoardInterval = 100 * time.Millisecond },
	})
	return srv.URL
}
