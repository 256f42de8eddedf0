package httpx

import (
	"log/slog"
	"net/http"
	"time"
)

// ServerOptions tunes NewServer.
type ServerOptions struct {
	// ReadHeaderTimeout bounds reading request headers. Zero means 10 s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections. Zero means 120 s.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps request header size. Zero means 64 KiB.
	MaxHeaderBytes int
	// ErrorLog receives net/http's own errors. Nil means the default slog logger.
	ErrorLog *slog.Logger
}

// NewServer returns an http.Server for h with header, idle and header-size
// limits set. It sets no ReadTimeout or WriteTimeout: WebSocket connections
// and media streams live long, and they bound themselves.
func NewServer(h http.Handler, opts ServerOptions) *http.Server {
	if opts.ReadHeaderTimeout == 0 {
		opts.ReadHeaderTimeout = 10 * time.Second
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = 120 * time.Second
	}
	if opts.MaxHeaderBytes == 0 {
		opts.MaxHeaderBytes = 64 << 10
	}
	logger := opts.ErrorLog
	if logger == nil {
		logger = slog.Default()
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
