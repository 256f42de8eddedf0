package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/signaling"
)

// Options configures a Server. cmd/partyline maps its flags and PARTYLINE_*
// variables onto it; tests fill it in directly. Each field's comment gives
// its zero value.
type Options struct {
	// NodeID names this node. Zero means the hostname.
	NodeID string
	// DataDir holds the SQLite file, blobs, resumable uploads and the dev
	// secret. Zero means "./data".
	DataDir string
	// DatabaseURL is a PostgreSQL URL. Zero means SQLite in DataDir.
	DatabaseURL string
	// RedisURL is a Redis URL (a single instance, or a node of a Redis
	// Cluster). Zero means the in-process backend, for one node only.
	RedisURL string
	// Store, when set, is used instead of opening one from DatabaseURL; it
	// must be migrated, and Close leaves it open.
	Store Store
	// Backend, when set, is used instead of opening one from RedisURL;
	// Close leaves it open, but Run runs its Run.
	Backend *Backend

	// JWTSecret (HS256) or JWTPublicKeyPEM (RS256/EdDSA) verifies tokens;
	// JWTIssuer and JWTAudience, when set, are checked. With neither key,
	// Dev must be on: tokens are then signed with a secret kept in DataDir.
	JWTSecret       string
	JWTPublicKeyPEM []byte
	JWTIssuer       string
	JWTAudience     string
	// Dev turns on token minting (POST /v1/dev/token). Zero means off.
	Dev bool
	// Authenticator, when set, verifies tokens instead of the JWT settings
	// (tests).
	Authenticator Authenticator

	// AllowedOrigins are browser Origin host patterns. Zero means
	// same-origin only.
	AllowedOrigins []string
	// APIKey enables the server API (/v1/server/*). Zero means it is off.
	APIKey string
	// PublishRate is client publishes per second per connection. Zero
	// means 10.
	PublishRate float64
	// MaxSubscriptions per connection. Zero means 500.
	MaxSubscriptions int
	// MaxConnsPerUser caps a user's connections. Zero means 16.
	MaxConnsPerUser int
	// DrainWindow is what Drain spreads reconnect notices over. Zero means
	// 10 s; negative means none (connections close at once with 1001).
	DrainWindow time.Duration
	// MaxUploadBytes caps one clip's media. Zero means 500 MiB.
	MaxUploadBytes int64
	// Voice configures the voice sockets and ICE servers.
	Voice VoiceOptions
	// DisableWSFastPath writes WebSocket data messages through the
	// library instead of framing them beneath it (realtime/internal/wsframe).
	// Zero means the fast path is on.
	DisableWSFastPath bool
	// DisableVoiceDirectPath leaves every voice packet to Pion's path
	// instead of the node's direct SRTP path
	// (signaling/internal/srtpdirect). Zero means the direct path is on.
	DisableVoiceDirectPath bool

	// Registry receives the metrics. Nil means a new one with the Go
	// runtime and process collectors.
	Registry *prometheus.Registry
	// Logger receives the server's logs. Nil means slog.Default().
	Logger *slog.Logger

	// TuneRealtime, TuneChat, TuneClips, TuneFeed and TuneVoice, when set,
	// adjust a component's options after the server filled them in and
	// before the component is built (tests and benchmarks).
	TuneRealtime func(*realtime.Options)
	TuneChat     func(*chat.Options)
	TuneClips    func(*clips.Options)
	TuneFeed     func(*feed.Options)
	TuneVoice    func(*signaling.Options)
}

// VoiceOptions are the voice settings of a Server.
type VoiceOptions struct {
	// UDPAddr is the one ICE UDP address. Zero means "127.0.0.1:7882".
	UDPAddr string
	// PublicIP is advertised in place of the bound address (1:1 NAT). Zero
	// means the bound addresses.
	PublicIP string
	// STUNURLs and TURNURLs are handed to clients; TURN credentials are
	// derived from TURNSecret. Zero means none.
	STUNURLs   []string
	TURNURLs   []string
	TURNSecret string
}

func (o *Options) setDefaults() error {
	if o.NodeID == "" {
		o.NodeID, _ = os.Hostname()
		if o.NodeID == "" {
			o.NodeID = "node"
		}
	}
	if o.DataDir == "" {
		o.DataDir = "./data"
	}
	if o.JWTSecret != "" && len(o.JWTPublicKeyPEM) > 0 {
		return errors.New("server: set either JWTSecret or JWTPublicKeyPEM, not both")
	}
	if o.Authenticator == nil && o.JWTSecret == "" && len(o.JWTPublicKeyPEM) == 0 && !o.Dev {
		return errors.New("no JWT key is configured: set --jwt-secret or --jwt-public-key")
	}
	if o.Registry == nil {
		o.Registry = newRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// Authenticator verifies a bearer token, for the WebSocket hello and for
// REST. It returns the user and when the token expires (zero: never);
// failures wrap partyline.ErrUnauthorized.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (user auth.User, expires time.Time, err error)
}

// jwtAuth verifies JWTs and upserts the user on first sight.
type jwtAuth struct{ a *auth.Authenticator }

func (j jwtAuth) Authenticate(ctx context.Context, token string) (auth.User, time.Time, error) {
	u, claims, err := j.a.Authenticate(ctx, token)
	if err != nil {
		return auth.User{}, time.Time{}, err
	}
	return u, claims.ExpiresAt, nil
}

// gatewayAuth adapts an Authenticator to what the gateway needs.
type gatewayAuth struct{ a Authenticator }

func (g gatewayAuth) Authenticate(ctx context.Context, token string) (string, time.Time, error) {
	u, exp, err := g.a.Authenticate(ctx, token)
	if err != nil {
		return "", time.Time{}, err
	}
	return u.ID, exp, nil
}

// buildAuth returns the verifier for opts and, when an HS256 secret is
// available, a signer with the same secret. Without a configured key the
// dev secret in the data dir is used, which only dev mode allows.
func buildAuth(o Options) (*auth.Verifier, *auth.Signer, error) {
	opts := auth.Options{Issuer: o.JWTIssuer, Audience: o.JWTAudience}
	switch {
	case len(o.JWTPublicKeyPEM) > 0:
		opts.PublicKeyPEM = o.JWTPublicKeyPEM
	case o.JWTSecret != "":
		opts.Secret = []byte(o.JWTSecret)
	case o.Dev:
		secret, err := auth.DevSecret(o.DataDir)
		if err != nil {
			return nil, nil, fmt.Errorf("dev secret: %w", err)
		}
		opts.Secret = secret
	default:
		return nil, nil, nil // an Authenticator was given
	}
	v, err := auth.NewVerifier(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("jwt: %w", err)
	}
	if opts.Secret == nil {
		return v, nil, nil
	}
	s, err := auth.NewSigner(opts.Secret, o.JWTIssuer, o.JWTAudience)
	if err != nil {
		return nil, nil, fmt.Errorf("jwt: %w", err)
	}
	return v, s, nil
}
