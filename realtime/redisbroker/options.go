package redisbroker

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/partyline/partyline"
)

// Options configures an Engine. The Broker, Stream and Presence of one
// Engine share them.
type Options struct {
	// Client is the connection to Redis: a *goredis.Client for a single
	// instance (or a Sentinel failover client), or a *goredis.ClusterClient
	// for a Redis Cluster, which needs Redis 7 or later for sharded pub/sub.
	// A *goredis.Ring is not supported. Required. The Engine never closes
	// it; its owner does, after every Run has returned.
	Client goredis.UniversalClient
	// Prefix starts every key and pub/sub channel name, so several
	// deployments (or tests) can share one Redis. It must not contain '{'
	// or '}', which would break the cluster hash tags. Zero means "pl:".
	Prefix string
	// NodeID is this node's id, the one SendNode reaches it by. Every node
	// of a deployment needs a different one. Required.
	NodeID string
	// HistorySize is how many publications each channel's stream keeps for
	// recovery. Zero or negative means 1000.
	HistorySize int
	// HistoryTTL is how long a publication is kept for recovery. A
	// channel's keys expire HistoryTTL plus one minute after its last
	// publication (Since and Current push the expiry of its epoch along
	// too), after which the channel starts over under a new epoch. Zero or
	// negative means 10 minutes.
	HistoryTTL time.Duration
	// PresenceTTL is how long a presence entry lives unless the Presence
	// that joined it refreshes it; its Run refreshes every PresenceTTL/3. So
	// the members of a node that dies disappear within PresenceTTL. Zero or
	// negative means 30 seconds.
	PresenceTTL time.Duration
	// ProbeInterval is how often the Broker's Run sends a probe through each
	// of its pub/sub connections and renews the node's entry in the node
	// registry. A probe that has not come back by the next one restarts its
	// connection. Nodes stay listed for three intervals after their last
	// renewal. Zero or negative means 5 seconds.
	ProbeInterval time.Duration
	// Logger receives what the Engine's background work cannot return,
	// such as renewals that failed and will be retried. Nil discards it.
	Logger *slog.Logger
}

// The defaults of the Options fields.
const (
	DefaultPrefix        = "pl:"
	DefaultHistorySize   = 1000
	DefaultHistoryTTL    = 10 * time.Minute
	DefaultPresenceTTL   = 30 * time.Second
	DefaultProbeInterval = 5 * time.Second
)

// historyKeyMargin is how much longer than HistoryTTL a channel's keys
// outlive its last publication: long enough that a reader who is a little
// late still finds the epoch, short enough that quiet channels go away.
const historyKeyMargin = time.Minute

// expiryRefresh is how often a busy channel's keys have their expiry
// pushed back; it must stay under historyKeyMargin (see publishScript).
const expiryRefresh = historyKeyMargin / 2

// Engine is the Redis backend of one node: a Broker, the Stream that
// publishes through it, and a Presence, all on one client.
type Engine struct {
	Broker   *Broker
	Stream   *Stream
	Presence *Presence
}

// New checks opts, fills in the defaults and returns an Engine. It starts
// no goroutines and makes no network calls: the Broker's Run and the
// Presence's Run do the work in the background, and the caller runs both
// (a realtime.Node runs the Broker's).
func New(opts Options) (*Engine, error) {
	if opts.Client == nil {
		return nil, fmt.Errorf("redis: Options.Client is required: %w", partyline.ErrInvalid)
	}
	if _, ok := opts.Client.(*goredis.Ring); ok {
		return nil, fmt.Errorf("redis: a goredis.Ring is not supported; use a Client or a ClusterClient: %w", partyline.ErrInvalid)
	}
	if opts.NodeID == "" {
		return nil, fmt.Errorf("redis: Options.NodeID is required: %w", partyline.ErrInvalid)
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("redis: Options.Prefix %q contains a brace: %w", opts.Prefix, partyline.ErrInvalid)
	}
	if opts.HistorySize <= 0 {
		opts.HistorySize = DefaultHistorySize
	}
	if opts.HistoryTTL <= 0 {
		opts.HistoryTTL = DefaultHistoryTTL
	}
	if opts.PresenceTTL <= 0 {
		opts.PresenceTTL = DefaultPresenceTTL
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = DefaultProbeInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.HistoryTTL < time.Millisecond || opts.PresenceTTL < 3*time.Millisecond || opts.ProbeInterval < time.Millisecond {
		return nil, fmt.Errorf("redis: TTLs and intervals must be a few milliseconds at least: %w", partyline.ErrInvalid)
	}
	b := newBroker(opts)
	return &Engine{
		Broker:   b,
		Stream:   newStream(b, opts),
		Presence: newPresence(opts),
	}, nil
}
