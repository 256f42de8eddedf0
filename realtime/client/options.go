package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Options configures a Client. Only URL and Token are required.
type Options struct {
	// URL is the gateway: a base URL such as "http://127.0.0.1:8080" (the
	// client dials <base>/v1/ws), or the full WebSocket URL ending in /v1/ws.
	// The schemes http, https, ws and wss are accepted.
	URL string

	// Token returns the JWT sent in hello. It is called before every
	// connection, the first one and each reconnect, so it can hand out a
	// refreshed token. Its ctx ends with the connection attempt. An error
	// fails Dial; during a reconnect it is retried with backoff, except
	// right after a 4003 close, where it ends the client (see Client).
	// During reconnects it runs on the client's goroutine, so it must not
	// call Close, which waits for that goroutine.
	Token func(ctx context.Context) (string, error)

	// ClientName is the hello's client field, such as "loadtest/1.0". Zero
	// value means "partyline-go".
	ClientName string

	// DisableReconnect turns automatic reconnection off: the first lost
	// connection ends the client, and Err reports why. Zero value means
	// the client reconnects.
	DisableReconnect bool

	// BackoffBase and BackoffCap shape the full-jitter exponential backoff
	// between reconnect attempts: attempt n waits a uniform random time in
	// [0, min(BackoffCap, BackoffBase*2^n)]. Zero values mean 500ms and 20s.
	BackoffBase time.Duration
	BackoffCap  time.Duration

	// RequestTimeout bounds each request from send to reply, and each
	// connection attempt from dial to the hello reply, on top of any
	// deadline of the caller's ctx. Zero value means 10 seconds.
	RequestTimeout time.Duration

	// MessageBuffer is the capacity of the Messages channel. Zero value
	// means 1024.
	MessageBuffer int

	// ReadLimit is the largest frame the client accepts from the server, in
	// bytes; a larger one drops the connection with 1009. A history reply
	// of 200 messages can be far over the 64 KiB the server accepts from
	// clients, hence the generous default. Zero value means 8 MiB; a
	// negative value means no limit.
	ReadLimit int64

	// HTTPClient makes the WebSocket handshake. Zero value means
	// http.DefaultClient.
	HTTPClient *http.Client

	// HTTPHeader is added to the handshake request, for example an Origin
	// when talking to a gateway as a browser would. Zero value adds none.
	HTTPHeader http.Header

	// Logger receives connection-level events: reconnects, dropped
	// undecodable messages, late replies. Tokens and message bodies are
	// never logged. Zero value means no logging.
	Logger *slog.Logger
}

const (
	defaultClientName     = "partyline-go"
	defaultBackoffBase    = 500 * time.Millisecond
	defaultBackoffCap     = 20 * time.Second
	defaultRequestTimeout = 10 * time.Second
	defaultMessageBuffer  = 1024
	defaultReadLimit      = 8 << 20
)

// withDefaults validates o and fills in the zero values. It returns the
// WebSocket URL to dial.
func (o *Options) withDefaults() (string, error) {
	if o.Token == nil {
		return "", errors.New("client: Options.Token is required")
	}
	u, err := endpoint(o.URL)
	if err != nil {
		return "", err
	}
	if o.ClientName == "" {
		o.ClientName = defaultClientName
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = defaultBackoffBase
	}
	if o.BackoffCap <= 0 {
		o.BackoffCap = defaultBackoffCap
	}
	if o.BackoffCap < o.BackoffBase {
		o.BackoffCap = o.BackoffBase
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = defaultRequestTimeout
	}
	if o.MessageBuffer <= 0 {
		o.MessageBuffer = defaultMessageBuffer
	}
	if o.ReadLimit == 0 {
		o.ReadLimit = defaultReadLimit
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return u, nil
}

// endpoint turns Options.URL into the URL of the WebSocket endpoint.
func endpoint(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("client: bad URL: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return "", fmt.Errorf("client: URL %q: scheme must be ws, wss, http or https", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("client: URL %q has no host", raw)
	}
	if !strings.HasSuffix(u.Path, "/v1/ws") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/ws"
		u.RawPath = ""
	}
	return u.String(), nil
}
