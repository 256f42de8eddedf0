package signaling_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/internal/server"
	"github.com/partyline/partyline/internal/server/servertest"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/signaling"
	"github.com/partyline/partyline/store/sqlite"
)

// quietLogger discards logs (PARTYLINE_TEST_VERBOSE=1 shows them) but
// fails the test on an error record: a panic caught in a room actor, or
// a failure that should not happen.
func quietLogger(t testing.TB) *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(io.Discard, nil)
	if os.Getenv("PARTYLINE_TEST_VERBOSE") != "" {
		h = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	return slog.New(failOnError{h, t})
}

type failOnError struct {
	slog.Handler
	t testing.TB
}

func (f failOnError) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && strings.HasPrefix(r.Message, "voice:") {
		var attrs []string
		r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a.String()); return true })
		f.t.Errorf("error log: %s %v", r.Message, attrs)
	}
	return f.Handler.Handle(ctx, r)
}

func (f failOnError) WithAttrs(as []slog.Attr) slog.Handler {
	return failOnError{f.Handler.WithAttrs(as), f.t}
}

func (f failOnError) WithGroup(name string) slog.Handler {
	return failOnError{f.Handler.WithGroup(name), f.t}
}

// openDB returns a migrated SQLite store, closed when the test ends.
func openDB(t testing.TB) *sqlite.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "voice.db")})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

// makeRoom creates a room owned by owner with the other users as members.
func makeRoom(t testing.TB, db *sqlite.DB, id, owner string, members ...string) {
	t.Helper()
	ctx := context.Background()
	if err := db.CreateRoom(ctx, chat.Room{ID: id, Name: id, Visibility: chat.Private, Owner: owner, CreatedAt: time.Now()}); err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	for _, m := range members {
		if err := db.PutMember(ctx, id, m, chat.RoleMember); err != nil {
			t.Fatalf("PutMember: %v", err)
		}
	}
}

// stackConfig describes one node of a test deployment.
type stackConfig struct {
	db       *sqlite.DB
	nodeID   string
	backend  *server.Backend          // nil: the memory backend
	node     func(*realtime.Options)  // adjusts the node's options
	voice    func(*signaling.Options) // adjusts the voice options
	registry *prometheus.Registry
}

// stack is one node, a whole server built by the one assembly
// (servertest), with voice on loopback.
type stack struct {
	t     testing.TB
	db    *sqlite.DB
	voice *signaling.Service
	node  *realtime.Node
	srv   *servertest.Server
	reg   *prometheus.Registry
}

func newStack(t testing.TB, cfg stackConfig) *stack {
	t.Helper()
	if cfg.db == nil {
		cfg.db = openDB(t)
	}
	if cfg.nodeID == "" {
		cfg.nodeID = "test"
	}
	if cfg.registry == nil {
		cfg.registry = prometheus.NewRegistry()
	}
	srv := servertest.Start(t, server.Options{
		NodeID:       cfg.nodeID,
		Store:        cfg.db,
		Backend:      cfg.backend,
		Registry:     cfg.registry,
		Logger:       quietLogger(t),
		TuneRealtime: cfg.node,
		TuneVoice: func(o *signaling.Options) {
			o.DisconnectTimeout = 2 * time.Second
			o.ICEDisconnectedTimeout = time.Second
			o.RefreshInterval = 200 * time.Millisecond
			if cfg.voice != nil {
				cfg.voice(o)
			}
		},
	})
	s := &stack{t: t, db: cfg.db, voice: srv.Voice(), node: srv.Node(), srv: srv, reg: cfg.registry}
	testenv.Eventually(t, "voice to run", func() bool {
		_, err := s.voice.SelfCheck()
		return err == nil
	})
	return s
}

// counter reads a counter or gauge of the stack's registry.
func (s *stack) metric(name string, labels ...string) float64 {
	s.t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		s.t.Fatalf("gather: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}
