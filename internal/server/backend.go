package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/redisbroker"
)

// Backend is the scale-out backend of the gateway: the Broker, Stream and
// Presence of the Node, and the Leases that place voice rooms.
type Backend struct {
	// Name says which backend it is, for the startup log.
	Name     string
	Broker   realtime.Broker
	Stream   realtime.Stream
	Presence realtime.Presence
	Leases   realtime.Leases
	// Run runs the backend's own background work (presence refresh) until
	// ctx is done; nil when there is none.
	Run func(ctx context.Context) error
	// Close closes the backend's connections; nil when there are none.
	Close func() error
}

// MemoryBackend is the in-process backend of one node.
func MemoryBackend(nodeID string) *Backend {
	b := realtime.NewMemoryBroker(realtime.MemoryBrokerOptions{NodeID: nodeID})
	return &Backend{
		Name:     "memory (one node only)",
		Broker:   b,
		Stream:   realtime.NewMemoryStream(b, realtime.MemoryStreamOptions{}),
		Presence: realtime.NewMemoryPresence(),
		Leases:   realtime.NewMemoryLeases(realtime.MemoryLeasesOptions{}),
	}
}

// RedisBackend is the backend of a cluster on the Redis that client
// reaches, with keys under the default prefix.
func RedisBackend(client goredis.UniversalClient, nodeID string, logger *slog.Logger) (*Backend, error) {
	eng, err := redisbroker.New(redisbroker.Options{Client: client, NodeID: nodeID, Logger: logger})
	if err != nil {
		return nil, err
	}
	leases, err := redisbroker.NewLeases(redisbroker.LeasesOptions{Client: client, Name: "voice"})
	if err != nil {
		return nil, err
	}
	name := "redis"
	if _, cluster := client.(*goredis.ClusterClient); cluster {
		name = "redis cluster (sharded pub/sub)"
	}
	return &Backend{
		Name:     name,
		Broker:   eng.Broker,
		Stream:   eng.Stream,
		Presence: eng.Presence,
		Leases:   leases,
		Run:      eng.Presence.Run,
	}, nil
}

// OpenBackend connects to Redis when url is set, and otherwise returns
// the memory backend. A URL that points at a node of a Redis Cluster
// (cluster_enabled:1) gets a cluster client seeded with that node, and
// sharded pub/sub.
func OpenBackend(ctx context.Context, url, nodeID string, logger *slog.Logger) (*Backend, error) {
	if url == "" {
		return MemoryBackend(nodeID), nil
	}
	client, err := openRedis(ctx, url)
	if err != nil {
		return nil, err
	}
	b, err := RedisBackend(client, nodeID, logger)
	if err != nil {
		client.Close()
		return nil, err
	}
	b.Close = client.Close
	return b, nil
}

func openRedis(ctx context.Context, url string) (goredis.UniversalClient, error) {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("--redis-url: %w", err)
	}
	// No automatic retries: a publish whose reply was lost would be
	// appended twice. A failed publish reaches the client as unavailable,
	// and its idempotent retry is safe.
	opts.MaxRetries = -1
	single := goredis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := single.Info(pctx, "cluster").Result()
	if err != nil {
		single.Close()
		return nil, fmt.Errorf("redis at %s: %w", opts.Addr, err)
	}
	if !strings.Contains(info, "cluster_enabled:1") {
		return single, nil
	}
	single.Close()
	cc := goredis.NewClusterClient(clusterOptions(opts))
	if err := cc.Ping(pctx).Err(); err != nil {
		cc.Close()
		return nil, fmt.Errorf("redis cluster at %s: %w", opts.Addr, err)
	}
	return cc, nil
}

// clusterOptions carries the settings of a parsed single-instance URL over
// to a cluster client seeded with its address, so that the URL's query
// options (pool_size, pool_timeout, timeouts and so on) apply in cluster
// mode too. The database number has no meaning in a cluster.
func clusterOptions(o *goredis.Options) *goredis.ClusterOptions {
	return &goredis.ClusterOptions{
		Addrs:                 []string{o.Addr},
		ClientName:            o.ClientName,
		Protocol:              o.Protocol,
		Username:              o.Username,
		Password:              o.Password,
		MaxRetries:            -1,
		MinRetryBackoff:       o.MinRetryBackoff,
		MaxRetryBackoff:       o.MaxRetryBackoff,
		DialTimeout:           o.DialTimeout,
		ReadTimeout:           o.ReadTimeout,
		WriteTimeout:          o.WriteTimeout,
		ContextTimeoutEnabled: o.ContextTimeoutEnabled,
		PoolFIFO:              o.PoolFIFO,
		PoolSize:              o.PoolSize,
		PoolTimeout:           o.PoolTimeout,
		MinIdleConns:          o.MinIdleConns,
		MaxIdleConns:          o.MaxIdleConns,
		MaxActiveConns:        o.MaxActiveConns,
		ConnMaxIdleTime:       o.ConnMaxIdleTime,
		ConnMaxLifetime:       o.ConnMaxLifetime,
		TLSConfig:             o.TLSConfig,
	}
}
