package redisbroker

import (
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/partyline/partyline/internal/testenv"
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

// forEachTopology runs f as a subtest for each of topologies, with a
// client of it.
func forEachTopology(t *testing.T, f func(t *testing.T, c goredis.UniversalClient)) {
	t.Helper()
	for _, top := range topologies {
		t.Run(top.name, func(t *testing.T) { f(t, top.client(t)) })
	}
}

func TestStreamConformance(t *testing.T) {
	forEachTopology(t, func(t *testing.T, c goredis.UniversalClient) {
		realtimetest.TestStream(t, func(t *testing.T, cfg realtimetest.StreamConfig) (realtime.Stream, realtime.Broker) {
			if cfg.Now != nil {
				t.Skip("skipping: the Redis stream ages history by Redis's clock, not an injected one")
			}
			e := newEngine(t, c, Options{HistorySize: cfg.HistorySize, HistoryTTL: cfg.HistoryTTL})
			return e.Stream, e.Broker
		})
	})
}

func TestBrokerConformance(t *testing.T) {
	forEachTopology(t, func(t *testing.T, c goredis.UniversalClient) {
		realtimetest.TestBroker(t, func(t *testing.T) (realtime.Broker, string) {
			e := newEngine(t, c, Options{})
			return e.Broker, e.Broker.NodeID()
		})
	})
}

func TestPresenceConformance(t *testing.T) {
	forEachTopology(t, func(t *testing.T, c goredis.UniversalClient) {
		realtimetest.TestPresence(t, func(t *testing.T) realtime.Presence {
			return newEngine(t, c, Options{}).Presence
		})
	})
}

func TestLeasesConformance(t *testing.T) {
	const ttl = 300 * time.Millisecond
	forEachTopology(t, func(t *testing.T, c goredis.UniversalClient) {
		realtimetest.TestLeases(t, ttl, func(t *testing.T) realtime.Leases {
			l, err := NewLeases(LeasesOptions{Client: c, Prefix: testenv.KeyPrefix(), Name: "voice", TTL: ttl})
			if err != nil {
				t.Fatal(err)
			}
			return l
		})
	})
	c := singleClient(t)
	for _, bad := range []LeasesOptions{
		{Client: c, Prefix: "bad{", Name: "voice"},
		{Client: c, Name: "vo}ice"},
		{Client: c},
		{Name: "voice"},
	} {
		if _, err := NewLeases(bad); err == nil {
			t.Errorf("NewLeases(%+v) accepted bad options", bad)
		}
	}
}

// TestLeasesKeyLayout pins the key a lease lives at, which nodes of
// different versions in one cluster must agree on.
func TestLeasesKeyLayout(t *testing.T) {
	c := singleClient(t)
	prefix := testenv.KeyPrefix()
	l, err := NewLeases(LeasesOptions{Client: c, Prefix: prefix, Name: "voice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Claim(t.Context(), "r_1", "node-a", ""); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(t.Context(), prefix+"voice:{r_1}:node").Result()
	if err != nil || got != "node-a" {
		t.Fatalf("GET %svoice:{r_1}:node = %q, %v; want node-a", prefix, got, err)
	}
}
