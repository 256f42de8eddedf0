package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/internal/httpx"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/signaling"
)

// shutdownMargin is how long HTTP shutdown and the drain may run past the
// drain window before the process gives up waiting.
const shutdownMargin = 5 * time.Second

// app is everything serve wires together; routes.go mounts it.
type app struct {
	cfg      config
	dev      bool
	logger   *slog.Logger
	store    appStore
	authn    *auth.Authenticator
	signer   *auth.Signer // nil unless dev mode can mint tokens
	registry *prometheus.Registry
	node     *realtime.Node
	chat     *chat.Chat
	clips    *clips.Service
	feed     *feed.Feed // follows and feeds; see setupFeed
	voice    *signaling.Voice
	backend  *backend
	ready    atomic.Bool
	// drainHooks run, in order, after readiness turns false and before the
	// HTTP servers shut down. Each gets a context bounded by the drain window
	// plus a margin.
	drainHooks []func(ctx context.Context) error
}

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("partyline serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	if err := cfg.registerFlags(fs, getenv); err != nil {
		return err
	}
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	dev, err := cfg.devMode()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))

	// The first SIGINT or SIGTERM starts a graceful shutdown; the next one
	// ends the process at once. Deferred before anything else is opened,
	// the watch lasts until serve returns, through the store's close.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	defer watchSignals(logger, stop)()

	a := &app{cfg: cfg, dev: dev, logger: logger}
	st, storeName, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	a.store = st
	if err := a.setupAuth(); err != nil {
		return err
	}
	a.registry = prometheus.NewRegistry()
	a.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	be, err := openBackend(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer be.close()
	a.backend = be

	if err := a.setupDomains(); err != nil {
		return err
	}
	mainHandler, err := a.routes()
	if err != nil {
		return err
	}
	adminHandler := a.adminRoutes()

	var lc net.ListenConfig
	mainLn, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on --addr: %w", err)
	}
	adminLn, err := lc.Listen(ctx, "tcp", cfg.AdminAddr)
	if err != nil {
		mainLn.Close()
		return fmt.Errorf("listen on --admin-addr: %w", err)
	}
	mainSrv := httpx.NewServer(mainHandler, httpx.ServerOptions{ErrorLog: logger})
	adminSrv := httpx.NewServer(adminHandler, httpx.ServerOptions{ErrorLog: logger})

	if dev {
		logger.Warn("dev mode is on: POST /v1/dev/token mints tokens for any user; never expose this server")
	}
	logger.Info("partyline serving",
		"version", buildVersion(),
		"node", cfg.NodeID,
		"store", storeName,
		"broker", be.name,
		"addr", mainLn.Addr().String(),
		"admin_addr", adminLn.Addr().String(),
		"dev", dev,
	)
	a.ready.Store(true)

	g, gctx := errgroup.WithContext(ctx)
	// The node outlives the HTTP servers: it must keep delivering while
	// connections drain, so it stops only after shutdown has finished.
	nodeCtx, stopNode := context.WithCancel(context.WithoutCancel(ctx))
	nodeDone := make(chan error, 2)
	running := 1
	go func() { nodeDone <- a.node.Run(nodeCtx) }()
	if be.run != nil {
		running++
		go func() { nodeDone <- be.run(nodeCtx) }()
	}
	<-a.node.Started() // serve no WebSocket before the node runs
	defer func() {
		stopNode()
		for ; running > 0; running-- {
			if err := <-nodeDone; err != nil {
				logger.Error("gateway backend stopped with an error", "err", err)
			}
		}
	}()
	// Clips work off the request path (processing, live counters, clip.new)
	// until the HTTP servers have shut down, so no request is left without
	// it; the node and then the store stop after.
	clipsCtx, stopClips := context.WithCancel(context.WithoutCancel(ctx))
	defer stopClips()
	g.Go(func() error { return a.clips.Run(clipsCtx) })
	// The feed learns and saves its model until the HTTP servers have shut
	// down; its Run saves once more as it stops, before the store closes.
	feedCtx, stopFeed := context.WithCancel(context.WithoutCancel(ctx))
	defer stopFeed()
	g.Go(func() error { return a.feed.Run(feedCtx) })
	// Voice opens its sockets in Run and closes every room as it stops,
	// telling participants; it stops after the HTTP servers, before the
	// node, so those last publications still go out.
	voiceCtx, stopVoice := context.WithCancel(context.WithoutCancel(ctx))
	defer stopVoice()
	g.Go(func() error {
		if err := a.voice.Run(voiceCtx); err != nil {
			return fmt.Errorf("voice: %w", err)
		}
		return nil
	})
	g.Go(func() error { return serveHTTP(mainSrv, mainLn, "main") })
	g.Go(func() error { return serveHTTP(adminSrv, adminLn, "admin") })
	g.Go(func() error {
		<-gctx.Done()
		defer stopClips()
		defer stopFeed()
		defer stopVoice()
		return a.shutdown(mainSrv, adminSrv)
	})
	err = g.Wait()
	logger.Info("partyline stopped")
	return err
}

// hardExit ends the process when a second signal arrives during a graceful
// shutdown. It is a variable so that a test can put something else there.
var hardExit = os.Exit

// watchSignals calls stop on the first SIGINT or SIGTERM, and hardExit
// with 128 plus the signal's number (the shell's code for "killed by") on
// the next. It keeps its handler installed rather than restoring the
// default action after the first signal: a signal that was ignored when the
// process started (nohup, a background job of a script) would be ignored
// again, and the second one would do nothing. The returned func stops the
// watch and waits for its goroutine.
func watchSignals(logger *slog.Logger, stop context.CancelFunc) (unwatch func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case sig := <-sigs:
			logger.Info("signal received; shutting down, and a second signal exits at once", "signal", sig.String())
			stop()
		case <-done:
			return
		}
		select {
		case sig := <-sigs:
			code := 1
			if n, ok := sig.(syscall.Signal); ok {
				code = 128 + int(n)
			}
			logger.Error("second signal; exiting at once without finishing the shutdown", "signal", sig.String(), "exit_code", code)
			hardExit(code)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
		<-exited
	}
}

func serveHTTP(srv *http.Server, ln net.Listener, name string) error {
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s listener: %w", name, err)
	}
	return nil
}

// shutdown runs the shutdown order: readiness false, the drain hooks, then
// the HTTP servers. The store closes when serve returns.
func (a *app) shutdown(servers ...*http.Server) error {
	a.ready.Store(false)
	a.logger.Info("shutting down", "drain_window", a.cfg.DrainWindow.String())
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.DrainWindow+shutdownMargin)
	defer cancel()
	var errs []error
	for _, hook := range a.drainHooks {
		if err := hook(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain: %w", err))
		}
	}
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			srv.Close()
		}
	}
	return errors.Join(errs...)
}

// setupDomains builds clips, the feed and voice, then the gateway node
// that they plug into as extensions.
func (a *app) setupDomains() error {
	for _, setup := range []func() error{a.setupClips, a.setupFeed, a.setupVoice, a.setupRealtime} {
		if err := setup(); err != nil {
			return err
		}
	}
	return nil
}

// setupRealtime builds the gateway node and registers its drain hook.
func (a *app) setupRealtime() error {
	var origins []string
	for _, o := range strings.Split(a.cfg.AllowedOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			origins = append(origins, o)
		}
	}
	ch, err := chat.New(chat.Options{Store: a.store, Logger: a.logger})
	if err != nil {
		return err
	}
	node, err := realtime.New(realtime.Options{
		NodeID:           a.cfg.NodeID,
		Auth:             tokenAuth{a.authn},
		Extensions:       []realtime.Extension{ch, a.clips, a.voice},
		Broker:           a.backend.broker,
		Stream:           a.backend.stream,
		Presence:         a.backend.presence,
		AllowedOrigins:   origins,
		PublishRate:      a.cfg.PublishRate,
		MaxSubscriptions: a.cfg.MaxSubscriptions,
		MaxConnsPerUser:  a.cfg.MaxConnsPerUser,
		DrainWindow:      drainWindow(a.cfg.DrainWindow),
		APIKey:           a.cfg.APIKey,
		Registerer:       a.registry,
		Logger:           a.logger,

		DisableWSFastPath: !a.cfg.WSFastPath.or(true),
	})
	if err != nil {
		return err
	}
	ch.SetPublisher(node)
	a.clips.SetNotifier(node)
	a.voice.Attach(node)
	a.node, a.chat = node, ch
	a.drainHooks = append(a.drainHooks, node.Drain)
	return nil
}

// drainWindow maps --drain-window to the node's option, where zero means
// the default and a negative window means none: --drain-window 0 closes
// connections at once with 1001.
func drainWindow(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// tokenAuth adapts the JWT authenticator to what the gateway needs.
type tokenAuth struct{ a *auth.Authenticator }

func (t tokenAuth) Authenticate(ctx context.Context, token string) (string, time.Time, error) {
	u, claims, err := t.a.Authenticate(ctx, token)
	if err != nil {
		return "", time.Time{}, err
	}
	return u.ID, claims.ExpiresAt, nil
}

// setupAuth builds the verifier (and in dev mode the signer) from the
// configured key, or from the dev secret in the data dir.
func (a *app) setupAuth() error {
	v, signer, err := buildAuth(a.cfg, a.dev)
	if err != nil {
		return err
	}
	a.authn = auth.NewAuthenticator(v, a.store)
	if a.dev {
		a.signer = signer
		if signer == nil {
			a.logger.Warn("dev mode cannot mint tokens with a public key: POST /v1/dev/token is off")
		}
	}
	return nil
}

// buildAuth returns the verifier for cfg and, when an HS256 secret is
// available, a signer with the same secret. Without a configured key the
// dev secret in the data dir is used, which only dev mode allows.
func buildAuth(cfg config, dev bool) (*auth.Verifier, *auth.Signer, error) {
	opts := auth.Options{Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience}
	switch {
	case cfg.JWTPublicKey != "":
		pem, err := os.ReadFile(cfg.JWTPublicKey)
		if err != nil {
			return nil, nil, fmt.Errorf("--jwt-public-key: %w", err)
		}
		opts.PublicKeyPEM = pem
	case cfg.JWTSecret != "":
		opts.Secret = []byte(cfg.JWTSecret)
	case dev:
		secret, err := auth.DevSecret(cfg.DataDir)
		if err != nil {
			return nil, nil, fmt.Errorf("dev secret: %w", err)
		}
		opts.Secret = secret
	default:
		return nil, nil, errors.New("no JWT key is configured: set --jwt-secret or --jwt-public-key")
	}
	v, err := auth.NewVerifier(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("jwt: %w", err)
	}
	if opts.Secret == nil {
		return v, nil, nil
	}
	s, err := auth.NewSigner(opts.Secret, cfg.JWTIssuer, cfg.JWTAudience)
	if err != nil {
		return nil, nil, fmt.Errorf("jwt: %w", err)
	}
	return v, s, nil
}

// setupFeed builds the feed: follows, the following, trending and for-you
// feeds, and the ranking model, which its Run loads from and saves to the
// store. Engagement reaches the model through feed.Observe and
// feed.ObserveComment.
func (a *app) setupFeed() error {
	f, err := feed.New(feed.Options{Store: a.store, Logger: a.logger, Registerer: a.registry})
	if err != nil {
		return err
	}
	a.feed = f
	return nil
}
