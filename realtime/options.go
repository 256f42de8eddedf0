package realtime

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/partyline/partyline/realtime/wire"
)

// Authenticator verifies a hello token. It returns the user id and when the
// token expires; failures wrap partyline.ErrUnauthorized.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (user string, expires time.Time, err error)
}

// Options configures a Node. The zero value of each field is documented;
// New fills the defaults in.
type Options struct {
	// NodeID names this node in hello replies and presence. Zero means the
	// hostname.
	NodeID string
	// Broker, Stream and Presence are the scale-out backends. Nil Broker
	// and Stream mean the in-process memory ones (one node only); a Stream
	// must be given together with the Broker it publishes through. Nil
	// Presence means memory presence.
	Broker   Broker
	Stream   Stream
	Presence Presence
	// Auth verifies hello tokens. Required.
	Auth Authenticator
	// AllowedOrigins are host patterns (path.Match syntax, such as
	// "*.example.com" or "localhost:3000") a browser Origin may have. Zero
	// means same-origin only. Requests without an Origin are allowed.
	AllowedOrigins []string
	// MaxFrameBytes is the largest frame accepted or sent. Zero means 64 KiB.
	MaxFrameBytes int
	// HeartbeatInterval is how often the server pings. Zero means 25 s.
	HeartbeatInterval time.Duration
	// HelloTimeout is how long a connection may go without hello. Zero
	// means 10 s.
	HelloTimeout time.Duration
	// PublishRate is client publishes per second per connection, with a
	// burst of twice that. Zero means 10.
	PublishRate float64
	// MaxSubscriptions per connection. Zero means 500.
	MaxSubscriptions int
	// MaxConnsPerUser caps a user's connections: on this node, and across
	// the nodes that share the Presence (Presence.JoinAtMost). Zero means
	// 16.
	MaxConnsPerUser int
	// SendQueueMessages bounds a connection's outbound queue; past it the
	// connection is closed as a slow consumer (4009). Zero means 4096.
	SendQueueMessages int
	// SendQueueBytes bounds the queued bytes the same way. Zero means 8 MiB.
	SendQueueBytes int
	// WriteTimeout is how long one socket write may take; the heartbeat
	// closes a connection whose write has been stuck for longer, so the cut
	// comes within a heartbeat interval after it. Zero means 10 s.
	WriteTimeout time.Duration
	// DisableWSFastPath writes every frame through the WebSocket library
	// (coder/websocket), from each connection's own writer goroutine,
	// instead of framing data messages beneath it (realtime/internal/wsframe).
	// The wire is the same; it is the way back when a library upgrade breaks
	// what wsframe relies on. Zero means the fast path is on.
	DisableWSFastPath bool
	// DrainWindow is what Drain spreads reconnect delays over. Zero means
	// 10 s. Negative means no drain window: Drain closes every connection
	// at once with 1001, without a reconnect notice.
	DrainWindow time.Duration
	// OfflineDelay is how long a user must be gone from every node before
	// their status turns offline. Zero means 5 s.
	OfflineDelay time.Duration
	// ReapInterval is how often the node claims the offline statuses that
	// are due, whichever node's connection was the last (a drained or dead
	// one's too), and, on a Presence that can reap, announces the users of
	// dead nodes. An offline status is late by at most this much when the
	// node that scheduled it is gone. Zero means 5 s.
	ReapInterval time.Duration
	// TypingInterval is the minimum gap between typing events one
	// connection fans out per channel. Zero means 2 s.
	TypingInterval time.Duration
	// APIKey enables the server API (/v1/server/*). Zero means it is off.
	APIKey string
	// Registerer receives the metrics. Nil means a private registry.
	Registerer prometheus.Registerer
	// Logger receives the gateway's logs. Nil means slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	if o.Auth == nil {
		return errors.New("realtime: Options.Auth is required")
	}
	if o.Stream != nil && o.Broker == nil {
		return errors.New("realtime: Options.Stream needs the Broker it publishes through")
	}
	if o.NodeID == "" {
		o.NodeID, _ = os.Hostname()
		if o.NodeID == "" {
			o.NodeID = "node"
		}
	}
	if o.Broker == nil {
		b := NewMemoryBroker(MemoryBrokerOptions{NodeID: o.NodeID})
		o.Broker = b
		o.Stream = NewMemoryStream(b, MemoryStreamOptions{})
	}
	if o.Stream == nil {
		if b, ok := o.Broker.(*MemoryBroker); ok {
			o.Stream = NewMemoryStream(b, MemoryStreamOptions{})
		} else {
			return errors.New("realtime: Options.Broker needs its Stream")
		}
	}
	if o.Presence == nil {
		o.Presence = NewMemoryPresence()
	}
	setDefault(&o.MaxFrameBytes, wire.DefaultFrameBytes)
	setDefault(&o.HeartbeatInterval, 25*time.Second)
	setDefault(&o.HelloTimeout, 10*time.Second)
	setDefault(&o.PublishRate, 10)
	setDefault(&o.MaxSubscriptions, 500)
	setDefault(&o.MaxConnsPerUser, 16)
	setDefault(&o.SendQueueMessages, 4096)
	setDefault(&o.SendQueueBytes, 8<<20)
	setDefault(&o.WriteTimeout, 10*time.Second)
	setDefault(&o.DrainWindow, 10*time.Second)
	setDefault(&o.OfflineDelay, 5*time.Second)
	if o.ReapInterval < 0 {
		return errors.New("realtime: Options.ReapInterval is negative")
	}
	setDefault(&o.ReapInterval, 5*time.Second)
	setDefault(&o.TypingInterval, 2*time.Second)
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}
