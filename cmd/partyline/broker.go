package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/partyline/partyline/realtime"
	predis "github.com/partyline/partyline/realtime/redis"
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
func openBackend(ctx context.Context, cfg config) (*backend, error) {
	if cfg.RedisURL == "" {
		return &backend{name: "memory (one node only)", close: func() error { return nil }}, nil
	}
	client, cluster, err := openRedis(ctx, cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	eng, err := predis.New(predis.Options{Client: client, NodeID: cfg.NodeID})
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
	cc := goredis.NewClusterClient(&goredis.ClusterOptions{
		Addrs:      []string{opts.Addr},
		Username:   opts.Username,
		Password:   opts.Password,
		TLSConfig:  opts.TLSConfig,
		MaxRetries: -1,
	})
	if err := cc.Ping(pctx).Err(); err != nil {
		cc.Close()
		return nil, false, fmt.Errorf("redis cluster at %s: %w", opts.Addr, err)
	}
	return cc, true, nil
}
