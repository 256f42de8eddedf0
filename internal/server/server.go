package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/signaling"
)

// Server is a whole partyline node: the store, the gateway backend, the
// gateway Node with chat, clips and voice registered on it, and the feed.
// Build it with New, serve Handler and AdminHandler, call Run, and on
// shutdown Drain, then cancel Run's context, then Close.
type Server struct {
	opts     Options
	logger   *slog.Logger
	store    Store
	ownStore bool // opened by New, so closed by Close
	backend  *Backend
	ownBack  bool
	authn    Authenticator
	signer   *auth.Signer // nil unless dev mode can mint tokens
	registry *prometheus.Registry

	node  *realtime.Node
	chat  *chat.Service
	clips *clips.Service
	feed  *feed.Service
	voice *signaling.Service

	ready atomic.Bool
}

// New opens what opts point at (the store, migrated, and the backend),
// builds every domain with what it needs in its constructor, and registers
// the extensions with the Node. It starts nothing: Run does. On an error
// it closes what it opened.
func New(ctx context.Context, opts Options) (_ *Server, err error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, logger: opts.Logger, registry: opts.Registry, store: opts.Store, backend: opts.Backend}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.store == nil {
		if s.store, err = OpenStore(ctx, opts.DatabaseURL, opts.DataDir, opts.Logger); err != nil {
			return nil, err
		}
		s.ownStore = true
	}
	if s.backend == nil {
		if s.backend, err = OpenBackend(ctx, opts.RedisURL, opts.NodeID, opts.Logger); err != nil {
			return nil, err
		}
		s.ownBack = true
	}
	if err := s.setupAuth(); err != nil {
		return nil, err
	}
	if err := s.setupDomains(); err != nil {
		return nil, err
	}
	return s, nil
}

// setupAuth uses the Authenticator given, or builds the JWT verifier (and
// in dev mode the signer) from the configured key or the dev secret.
func (s *Server) setupAuth() error {
	v, signer, err := buildAuth(s.opts)
	if err != nil {
		return err
	}
	if s.opts.Authenticator != nil {
		s.authn = s.opts.Authenticator
	} else {
		s.authn = jwtAuth{auth.NewAuthenticator(v, s.store)}
	}
	if s.opts.Dev {
		s.signer = signer
		if signer == nil {
			s.logger.Warn("dev mode cannot mint tokens with a public key: POST /v1/dev/token is off")
		}
	}
	return nil
}

// setupDomains builds the Node first, then the domains, each given the
// Node as the small interface it needs, and registers the extensions.
// The feed comes before clips, whose engagement it learns from.
func (s *Server) setupDomains() error {
	o := s.opts
	ropts := realtime.Options{
		NodeID:            o.NodeID,
		Auth:              gatewayAuth{s.authn},
		Broker:            s.backend.Broker,
		Stream:            s.backend.Stream,
		Presence:          s.backend.Presence,
		AllowedOrigins:    o.AllowedOrigins,
		PublishRate:       o.PublishRate,
		MaxSubscriptions:  o.MaxSubscriptions,
		MaxConnsPerUser:   o.MaxConnsPerUser,
		DrainWindow:       o.DrainWindow,
		APIKey:            o.APIKey,
		DisableWSFastPath: o.DisableWSFastPath,
		Registerer:        s.registry,
		Logger:            s.logger,
	}
	tune(o.TuneRealtime, &ropts)
	node, err := realtime.New(ropts)
	if err != nil {
		return err
	}
	s.node = node

	fopts := feed.Options{Store: s.store, Logger: s.logger, Registerer: s.registry}
	tune(o.TuneFeed, &fopts)
	if s.feed, err = feed.New(fopts); err != nil {
		return err
	}

	copts := chat.Options{Store: s.store, Gateway: node, Logger: s.logger}
	tune(o.TuneChat, &copts)
	if s.chat, err = chat.New(copts); err != nil {
		return err
	}

	blobs, err := clips.NewDir(filepath.Join(o.DataDir, "blobs"))
	if err != nil {
		return err
	}
	clopts := clips.Options{
		Store:          s.store,
		Blobs:          blobs,
		Notifier:       node,
		UploadDir:      filepath.Join(o.DataDir, "uploads"),
		Followers:      followerIDs(s.store),
		MaxUploadBytes: o.MaxUploadBytes,
		// Engagement teaches the feed's model and moves trending.
		Observer: s.feed,
		Logger:   s.logger,
	}
	tune(o.TuneClips, &clopts)
	if s.clips, err = clips.New(clopts); err != nil {
		return err
	}

	vopts := signaling.Options{
		Node:              node,
		Members:           signaling.ChatMembers{Store: s.store},
		Placement:         s.backend.Leases,
		UDPAddr:           o.Voice.UDPAddr,
		PublicIP:          o.Voice.PublicIP,
		STUNURLs:          o.Voice.STUNURLs,
		TURNURLs:          o.Voice.TURNURLs,
		TURNSecret:        o.Voice.TURNSecret,
		DisableDirectPath: o.DisableVoiceDirectPath,
		Registerer:        s.registry,
		Logger:            s.logger,
	}
	tune(o.TuneVoice, &vopts)
	if s.voice, err = signaling.New(vopts); err != nil {
		return err
	}

	for _, ext := range []realtime.Extension{s.chat, s.clips, s.voice} {
		if err := node.Register(ext); err != nil {
			return err
		}
	}
	return nil
}

func tune[T any](f func(*T), o *T) {
	if f != nil {
		f(o)
	}
}

// followerIDs adapts feed.Store.Followers to what clips consumes: feed
// imports clips, so clips cannot name feed's types itself.
func followerIDs(st feed.Store) clips.FollowersFunc {
	return func(ctx context.Context, user, cursor string, limit int) ([]string, string, error) {
		fs, next, err := st.Followers(ctx, user, cursor, limit)
		if err != nil {
			return nil, "", err
		}
		ids := make([]string, len(fs))
		for i, f := range fs {
			ids[i] = f.Follower
		}
		return ids, next, nil
	}
}

// Node returns the gateway node.
func (s *Server) Node() *realtime.Node { return s.node }

// Chat returns the chat domain.
func (s *Server) Chat() *chat.Service { return s.chat }

// Clips returns the clips domain.
func (s *Server) Clips() *clips.Service { return s.clips }

// Feed returns the feed domain.
func (s *Server) Feed() *feed.Service { return s.feed }

// Voice returns the voice domain.
func (s *Server) Voice() *signaling.Service { return s.voice }

// Store returns the store.
func (s *Server) Store() Store { return s.store }

// Registry returns the registry the metrics are on.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// BackendName says which gateway backend the server runs on.
func (s *Server) BackendName() string { return s.backend.Name }

// Started is closed once Run has started the Node; the WebSocket handler
// answers 503 before.
func (s *Server) Started() <-chan struct{} { return s.node.Started() }

// Ready reports whether /readyz answers ready: from Run's start until
// Drain.
func (s *Server) Ready() bool { return s.ready.Load() }

// Run runs everything that works off the request path until ctx is done:
// the Node and the backend's own work, clips processing and live counters,
// the feed's learning, and voice. When ctx ends, voice, clips and the feed
// stop first (voice tells its participants, the feed saves its model),
// while the Node still delivers; then the Node and the backend stop. Run
// returns when all have stopped, with their errors joined. Call Drain and
// shut the HTTP servers down before ctx ends, so no request is left
// without the domains. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	nodeCtx, stopNode := context.WithCancel(context.WithoutCancel(ctx))
	defer stopNode()
	nodeDone := make(chan error, 2)
	running := 1
	go func() { nodeDone <- s.node.Run(nodeCtx) }()
	if s.backend.Run != nil {
		running++
		go func() { nodeDone <- s.backend.Run(nodeCtx) }()
	}
	<-s.node.Started()
	s.ready.Store(true)

	domains := []struct {
		name string
		run  func(context.Context) error
	}{{"clips", s.clips.Run}, {"feed", s.feed.Run}, {"voice", s.voice.Run}}
	done := make(chan error, len(domains))
	for _, d := range domains {
		go func() {
			if err := d.run(ctx); err != nil {
				done <- fmt.Errorf("%s: %w", d.name, err)
				return
			}
			done <- nil
		}()
	}
	var errs []error
	for range domains {
		if err := <-done; err != nil {
			errs = append(errs, err)
		}
	}
	stopNode()
	for ; running > 0; running-- {
		if err := <-nodeDone; err != nil {
			errs = append(errs, fmt.Errorf("gateway: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Drain turns readiness false and drains the Node: every connection gets
// a reconnect notice spread over the drain window, then a 1012 close (see
// realtime.Node.Drain). It returns when the last connection is gone, or
// with ctx's error. Shut the HTTP servers down after it.
func (s *Server) Drain(ctx context.Context) error {
	s.ready.Store(false)
	return s.node.Drain(ctx)
}

// Close closes what New opened: the backend, then the store. Call it after
// Run has returned.
func (s *Server) Close() error {
	var errs []error
	if s.ownBack && s.backend != nil && s.backend.Close != nil {
		errs = append(errs, s.backend.Close())
	}
	if s.ownStore && s.store != nil {
		errs = append(errs, s.store.Close())
	}
	return errors.Join(errs...)
}

// newRegistry builds the registry a server's metrics go on: the Go runtime's
// and the process's collectors, then the server's own.
func newRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return r
}
