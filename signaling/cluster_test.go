package signaling_test

import (
	"context"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/partyline/partyline/internal/server"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/redisbroker"
)

// clusterNode builds a node on the shared Redis with its own engine and
// the shared placement. kill stops the node's gateway at once, as if it
// died: its broker stops, so the other nodes no longer see it, while its
// voice still holds the rooms it had.
func clusterNode(t *testing.T, cfg stackConfig, prefix string, placement realtime.Leases) (s *stack, kill func()) {
	t.Helper()
	eng, err := redisbroker.New(redisbroker.Options{Client: redisClient(t), Prefix: prefix, NodeID: cfg.nodeID, ProbeInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("redis engine: %v", err)
	}
	broker := &killableBroker{Broker: eng.Broker, kill: make(chan struct{})}
	cfg.backend = &server.Backend{
		Name:     "redis",
		Broker:   broker,
		Stream:   eng.Stream,
		Presence: eng.Presence,
		Leases:   placement,
		Run:      eng.Presence.Run,
	}
	var once sync.Once
	return newStack(t, cfg), func() { once.Do(func() { close(broker.kill) }) }
}

// killableBroker is a Broker whose Run ends when kill is closed.
type killableBroker struct {
	realtime.Broker
	kill chan struct{}
}

func (b *killableBroker) Run(ctx context.Context, d realtime.Deliverer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-b.kill:
			cancel()
		case <-ctx.Done():
		}
	}()
	return b.Broker.Run(ctx, d)
}

func redisClient(t testing.TB) *goredis.Client {
	t.Helper()
	opt, err := goredis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatalf("parse %s: %v", testenv.RedisURLEnv, err)
	}
	c := goredis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestCrossNodeVoice(t *testing.T) {
	rc := redisClient(t) // skips without PARTYLINE_TEST_REDIS_URL
	prefix := testenv.KeyPrefix()
	placement, err := redisbroker.NewLeases(redisbroker.LeasesOptions{Client: rc, Prefix: prefix, Name: "voice", TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t)
	makeRoom(t, db, "r1", "a", "b")
	n1, _ := clusterNode(t, stackConfig{db: db, nodeID: "n1"}, prefix, placement)
	n2, killN2 := clusterNode(t, stackConfig{db: db, nodeID: "n2"}, prefix, placement)
	testenv.Eventually(t, "both nodes registered", func() bool {
		nodes, err := n1.node.Nodes(t.Context())
		return err == nil && len(nodes) == 2
	})
	api := loopbackAPI(t)

	// B, on node 2, opens the room there; A joins from node 1.
	b := newPeer(t, api, n2.dial("b"))
	b.join("r1")
	if host, _ := placement.Lookup(t.Context(), "r1"); host != "n2" {
		t.Fatalf("room r1 is on %q, want n2", host)
	}
	aClient := n1.dial("a")
	aClient.OK(map[string]any{"type": "sub", "channel": "voice:r1"})
	a := newPeer(t, api, aClient)
	reply := decodeJoin(t, a.join("r1"))
	if len(reply.Participants) != 2 {
		t.Errorf("A's join reply participants = %+v, want a and b", reply.Participants)
	}
	a.hearsAll(t, 10*time.Second, "b")
	b.hearsAll(t, 10*time.Second, "a")
	a.assertLoopbackPair(t)
	b.assertLoopbackPair(t)
	if got := n1.metric("partyline_voice_relayed_requests_total"); got == 0 {
		t.Error("node 1 relayed nothing")
	}
	if got := n2.metric("partyline_voice_participants"); got != 2 {
		t.Errorf("node 2 holds %v participants, want 2 (the room is there)", got)
	}
	if got := n1.metric("partyline_voice_participants"); got != 0 {
		t.Errorf("node 1 holds %v participants, want 0", got)
	}
	// Mute relayed through node 1 works too.
	aClient.OK(map[string]any{"type": "voice.mute", "room": "r1", "muted": true})
	waitMsg(t, aClient, "voice.muted", func(d map[string]any) bool { return d["user"] == "a" && d["muted"] == true })
	aClient.OK(map[string]any{"type": "voice.mute", "room": "r1", "muted": false})

	// Node 2 dies (its gateway stops; nothing of it answers): A is told it
	// left, and its next join moves the room to node 1.
	killN2()
	waitMsg(t, aClient, "voice.left", func(d map[string]any) bool { return d["user"] == "a" && d["reason"] == "node_lost" })
	a.renew(api)
	a.join("r1")
	if host, _ := placement.Lookup(t.Context(), "r1"); host != "n1" {
		t.Errorf("after node 2 died, room r1 is on %q, want n1", host)
	}
	testenv.Eventually(t, "the moved room on node 1", func() bool { return n1.metric("partyline_voice_participants") == 1 })
}
