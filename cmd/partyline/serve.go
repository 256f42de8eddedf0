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
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/partyline/partyline/internal/httpx"
	"github.com/partyline/partyline/internal/server"
)

// shutdownMargin is how long HTTP shutdown and the drain may run past the
// drain window before the process gives up waiting.
const shutdownMargin = 5 * time.Second

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

	opts, err := cfg.serverOptions(dev, logger)
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, opts)
	if err != nil {
		return err
	}
	defer srv.Close()
	mainHandler, err := srv.Handler()
	if err != nil {
		return err
	}

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
	adminSrv := httpx.NewServer(srv.AdminHandler(), httpx.ServerOptions{ErrorLog: logger})

	if dev {
		logger.Warn("dev mode is on: POST /v1/dev/token mints tokens for any user; never expose this server")
	}
	logger.Info("partyline serving",
		"version", buildVersion(),
		"node", cfg.NodeID,
		"store", server.StoreName(cfg.DatabaseURL, cfg.DataDir),
		"broker", srv.BackendName(),
		"addr", mainLn.Addr().String(),
		"admin_addr", adminLn.Addr().String(),
		"dev", dev,
	)

	// The server's background work (the node, clips, the feed, voice)
	// outlives the HTTP servers: it must keep delivering while connections
	// drain, so it stops only after shutdown has finished; the store
	// closes after it.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	ran := make(chan error, 1)
	go func() { ran <- srv.Run(runCtx) }()
	<-srv.Started() // serve no WebSocket before the node runs

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveHTTP(mainSrv, mainLn, "main") })
	g.Go(func() error { return serveHTTP(adminSrv, adminLn, "admin") })
	g.Go(func() error {
		<-gctx.Done()
		return shutdown(logger, cfg.DrainWindow, srv.Drain, mainSrv, adminSrv)
	})
	err = g.Wait()
	stopRun()
	if rerr := <-ran; rerr != nil {
		err = errors.Join(err, rerr)
	}
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

// shutdown runs the shutdown order: readiness false and the drain, then
// the HTTP servers, all within the drain window plus a margin. The
// server's background work and then the store stop after it.
func shutdown(logger *slog.Logger, window time.Duration, drain func(context.Context) error, servers ...*http.Server) error {
	logger.Info("shutting down", "drain_window", window.String())
	ctx, cancel := context.WithTimeout(context.Background(), window+shutdownMargin)
	defer cancel()
	var errs []error
	if err := drain(ctx); err != nil {
		errs = append(errs, fmt.Errorf("drain: %w", err))
	}
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			srv.Close()
		}
	}
	return errors.Join(errs...)
}
