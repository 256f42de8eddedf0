package feed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/internal/httpx"
	"github.com/partyline/partyline/internal/server/servertest"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/store/postgres"
	"github.com/partyline/partyline/store/sqlite"
)

// testStore is what the tests need of a store.
type testStore interface {
	feed.Store
	clips.Store
	auth.UserStore
}

// openSQLite returns a migrated SQLite store in a file of the test's
// temporary directory; path is the file, so a test can open it again.
func openSQLite(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "feed.db")
	}
	db, err := sqlite.Open(context.Background(), sqlite.Options{Path: path})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

// openPostgres returns a migrated store in a fresh PostgreSQL database,
// skipping the test when there is none to use.
func openPostgres(t *testing.T) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), postgres.Options{URL: testenv.PostgresURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

// env is a feed with its store, clock and HTTP server.
type env struct {
	t     *testing.T
	db    testStore
	clock *testenv.Clock
	feed  *feed.Service
	srv   *httptest.Server
}

// newEnv builds a feed over a fresh SQLite store; edit adjusts its options.
// The feed's Run is not started; start does that.
func newEnv(t *testing.T, db testStore, edit func(*feed.Options)) *env {
	t.Helper()
	if db == nil {
		db = openSQLite(t, "")
	}
	c := testenv.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	opts := feed.Options{Store: db, Now: c.Now, Model: feed.ModelOptions{Bits: 16}, BoardInterval: time.Hour}
	if edit != nil {
		edit(&opts)
	}
	f, err := feed.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r := chi.NewRouter()
	r.NotFound(httpx.NotFound)
	r.MethodNotAllowed(httpx.MethodNotAllowed)
	r.Route("/v1", func(r chi.Router) {
		r.Use(bearerUser)
		f.MountUsers(r)
		r.Mount("/feed", f.Routes())
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &env{t: t, db: db, clock: c, feed: f, srv: srv}
}

// start runs the feed until the test ends, and waits for it to stop. It
// returns once Run has read the store, so what the test stores next
// reaches the feed only through Observe.
func (e *env) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.feed.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-e.feed.Started():
	case err := <-done:
		e.t.Fatalf("Run returned before it started: %v", err)
	case <-time.After(10 * time.Second):
		e.t.Fatal("Run did not read the store within 10 s")
	}
}

// bearerUser takes the bearer token as the user id, standing in for the
// server's JWT middleware.
func bearerUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := auth.BearerToken(r)
		if !ok {
			httpx.Error(w, r, partyline.Errorf(partyline.ErrUnauthorized, "no bearer token"))
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithUser(r.Context(), auth.User{ID: tok})))
	})
}

// want sends a request as user ("" for none) and fails the test unless
// the status is status, an error coming as problem+json that carries it.
// It returns the body.
func (e *env) want(status int, method, path, user string) []byte {
	e.t.Helper()
	return servertest.Want(e.t, e.srv.Client(), e.srv.URL, status, servertest.Request{Method: method, Path: path, Token: user}).Body
}

// page is a decoded feed page.
type page struct {
	Items []struct {
		Clip struct {
			ID    string `json:"id"`
			Owner string `json:"owner"`
			Game  string `json:"game"`
		} `json:"clip"`
		Source string   `json:"source"`
		Score  *float64 `json:"score"`
	} `json:"items"`
	NextCursor string `json:"next_cursor"`
	Restarted  bool   `json:"restarted"`
}

func (p page) ids() []string {
	out := make([]string, len(p.Items))
	for i, it := range p.Items {
		out[i] = it.Clip.ID
	}
	return out
}

// pageAll reads every page of a feed path (with its query) as user, with
// the given limit, calling during after each page but the last.
func (e *env) pageAll(path, user string, limit int, during func(n int)) []page {
	e.t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	var out []page
	cursor := ""
	for n := 1; ; n++ {
		p := servertest.Decode[page](e.t, e.want(http.StatusOK, "GET", fmt.Sprintf("%s%slimit=%d&cursor=%s", path, sep, limit, cursor), user))
		if p.Restarted {
			e.t.Fatalf("page %d of %s restarted", n, path)
		}
		out = append(out, p)
		if p.NextCursor == "" {
			return out
		}
		if n > 500 {
			e.t.Fatalf("no last page of %s after 500 pages", path)
		}
		cursor = p.NextCursor
		if during != nil {
			during(n)
		}
	}
}

func allIDs(pages []page) []string {
	var out []string
	for _, p := range pages {
		out = append(out, p.ids()...)
	}
	return out
}

func (e *env) users(ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		if _, err := e.db.EnsureUser(context.Background(), id); err != nil {
			e.t.Fatalf("EnsureUser: %v", err)
		}
	}
}

func (e *env) follow(follower, followee string) {
	e.t.Helper()
	if _, err := e.db.Follow(context.Background(), follower, followee); err != nil {
		e.t.Fatalf("Follow: %v", err)
	}
}

// clip stores a ready public clip of owner and game made at.
func (e *env) clip(id, owner, game string, at time.Time, edit ...func(*clips.Clip)) {
	e.t.Helper()
	c := clips.Clip{ID: id, Owner: owner, Title: "clip " + id, Game: game, Visibility: clips.Public,
		Status: clips.StatusReady, DurationMS: 20000, CreatedAt: at}
	for _, fn := range edit {
		fn(&c)
	}
	if err := e.db.CreateClip(context.Background(), c); err != nil {
		e.t.Fatalf("CreateClip: %v", err)
	}
}

// event stores an engagement event and observes it, as clips would.
func (e *env) event(user, clipID, kind string, watchedMS int64) {
	e.t.Helper()
	ev := clips.Event{ClipID: clipID, UserID: user, Kind: kind, WatchedMS: watchedMS, At: e.clock.Now()}
	if kind == clips.EventLike {
		if _, err := e.db.Like(context.Background(), clipID, user); err != nil {
			e.t.Fatalf("Like: %v", err)
		}
	}
	if err := e.db.RecordEvent(context.Background(), ev); err != nil {
		e.t.Fatalf("RecordEvent: %v", err)
	}
	e.feed.Observe(ev)
}

// decodeBody decodes and closes a response body.
func decodeBody(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
