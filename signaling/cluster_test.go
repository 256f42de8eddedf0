package signaling_test

import (
	"testing"
	"time"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/redisbroker"
	"github.com/partyline/partyline/signaling"
)

// clusterNode builds a node on the shared Redis with its own engine and
// the shared placement.
func clusterNode(t *testing.T, cfg stackConfig, prefix string, placement signaling.Placement) *stack {
	t.Helper()
	eng, err := redisbroker.New(redisbroker.Options{Client: redisClient(t), Prefix: prefix, NodeID: cfg.nodeID, ProbeInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("redis engine: %v", err)
	}
	cfg.node = func(o *realtime.Options) {
		o.Broker, o.Stream, o.Presence = eng.Broker, eng.Stream, eng.Presence
	}
	cfg.voice = func(o *signaling.Options) { o.Placement = placement }
	return newStack(t, cfg)
}

func TestCrossNodeVoice(t *testing.T) {
	rc := redisClient(t) // skips without PARTYLINE_TEST_REDIS_URL
	prefix := testenv.KeyPrefix()
	placement, err := signaling.NewRedisPlacement(signaling.RedisPlacementOptions{Client: rc, Prefix: prefix, TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t)
	makeRoom(t, db, "r1", "a", "b")
	n1 := clusterNode(t, stackConfig{db: db, nodeID: "n1"}, prefix, placement)
	n2 := clusterNode(t, stackConfig{db: db, nodeID: "n2"}, prefix, placement)
	eventually(t, "both nodes registered", func() bool {
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
	aClient.ok(map[string]any{"type": "sub", "channel": "voice:r1"})
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
	aClient.ok(map[string]any{"type": "voice.mute", "room": "r1", "muted": true})
	waitMsg(t, aClient, "voice.muted", func(d map[string]any) bool { return d["user"] == "a" && d["muted"] == true })
	aClient.ok(map[string]any{"type": "voice.mute", "room": "r1", "muted": false})

	// Node 2 dies (its gateway stops; nothing of it answers): A is told it
	// left, and its next join moves the room to node 1.
	n2.stopNode()
	waitMsg(t, aClient, "voice.left", func(d map[string]any) bool { return d["user"] == "a" && d["reason"] == "node_lost" })
	a.renew(api)
	a.join("r1")
	if host, _ := placement.Lookup(t.Context(), "r1"); host != "n1" {
		t.Errorf("after node 2 died, room r1 is on %q, want n1", host)
	}
	eventually(t, "the moved room on node 1", func() bool { return n1.metric("partyline_voice_participants") == 1 })
}
