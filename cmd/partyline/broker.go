package main

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

// backend is the scale-out backend of the gateway: nil fields mean the
// in-process memory ones.
type backend struct {
	name     string
	broker   realtime.Broker
	stream   realtime.Stream
	presence realtime.Presence
	// redis is the client, for voice placement; nil with the memory broker.
	redis goredis.UniversalClient
	// run runs the backend's own background work (presence refresh) until
	// ctx is done; nil when there is none.
	run   func(ctx context.Context) error
	close func() error
}

// openBackend connects to Redis when --redis-url is set. A URL that points
// at a node of a Redis Cluster (cluster_enabled:1) gets a cluster client
// seeded with that node, and sharded pub/sub.
func openBackend(ctx context.Context, cfg config, logger *slog.Logger) (*backend, error) {
	if cfg.RedisURL == "" {
		return &backend{name: "memory (one node only)", close: func() error { return nil }}, nil
	}
	client, cluster, err := openRedis(ctx, cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	eng, err := redisbroker.New(redisbroker.Options{Client: client, NodeID: cfg.NodeID, Logger: logger})
	if err != nil {
		client.Close()
		return nil, err
	}
	name := "redis"
	if cluster {
		name = "redis cluster (sharded pub/sub)"
	}
	return &backend{
		name:     name,
		broker:   eng.Broker,
		stream:   eng.Stream,
		presence: eng.Presence,
		redis:    client,
		run:      eng.Presence.Run,
		close:    client.Close,
	}, nil
}

func openRedis(ctx context.Context, url string) (goredis.UniversalClient, bool, error) {
	opts, err := goredis.ParseURL(url)
	if err != nil {
		return nil, false, fmt.Errorf("--redis-url: %w", err)
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
		return nil, false, fmt.Errorf("redis at %s: %w", opts.Addr, err)
	}
	if !strings.Contains(info, "cluster_enabled:1") {
		return single, false, nil
	}
	single.Close()
	cc := goredis.NewClusterClient(clusterOptions(opts))
	if err := cc.Ping(pctx).Err(); err != nil {
		cc.Close()
		return nil, false, fmt.Errorf("redis cluster at %s: %w", opts.Addr, err)
	}
	return cc, true, nil
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
