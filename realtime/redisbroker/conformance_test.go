package redisbroker

import (
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/realtimetest"
)

// topologies are the two kinds of Redis every suite runs against: the
// shared single instance and the test cluster.
var topologies = []struct {
	name   string
	client func(t testing.TB) goredis.UniversalClient
}{
	{"Single", func(t testing.TB) goredis.UniversalClient { return singleClient(t) }},
	{"Cluster", func(t testing.TB) goredis.UniversalClient { return clusterClient(t) }},
}

func TestStreamConformance(t *testing.T) {
	for _, top := range topologies {
		t.Run(top.name, func(t *testing.T) {
			c := top.client(t)
			realtimetest.TestStream(t, func(t *testing.T, cfg realtimetest.StreamConfig) (realtime.Stream, realtime.Broker) {
				if cfg.Now != nil {
					t.Skip("skipping: the Redis stream ages history by Redis's clock, not an injected one")
				}
				e := newEngine(t, c, Options{HistorySize: cfg.HistorySize, HistoryTTL: cfg.HistoryTTL})
				return e.Stream, e.Broker
			})
		})
	}
}

func TestBrokerConformance(t *testing.T) {
	for _, top := range topologies {
		t.Run(top.name, func(t *testing.T) {
			c := top.client(t)
			realtimetest.TestBroker(t, func(t *testing.T) (realtime.Broker, string) {
				e := newEngine(t, c, Options{})
				return e.Broker, e.Broker.NodeID()
			})
		})
	}
}

func TestPresenceConformance(t *testing.T) {
	for _, top := range topologies {
		t.Run(top.name, func(t *testing.T) {
			c := top.client(t)
			realtimetest.TestPresence(t, func(t *testing.T) realtime.Presence {
				return newEngine(t, c, Options{}).Presence
			})
		})
	}
}
