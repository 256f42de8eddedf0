package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	goredis "github.com/redis/go-redis/v9"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/realtimetest"
)

// TestProbeRestartsStuckSubscription makes the pub/sub connection stuck
// (open, but silent) and checks that the probe notices, the connection is
// replaced, the channel is resynced and deliveries resume.
func TestProbeRestartsStuckSubscription(t *testing.T) {
	opt, err := goredis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, opt.Addr)
	opt.Addr = p.addr()
	e := newEngine(t, clientFor(t, opt), Options{ProbeInterval: 100 * time.Millisecond})
	d := realtimetest.NewRecorder()
	runBroker(t, e.Broker, d)
	ch := "room:stuck"
	waitDelivering(t, e.Broker, d, ch)

	if n := p.freezePubSub(); n != 1 {
		t.Fatalf("froze %d pub/sub connections, want 1", n)
	}
	if err := e.Broker.PublishEvent(t.Context(), ch, realtime.Publication{Payload: []byte("lost")}); err != nil {
		t.Fatalf("PublishEvent: %v", err)
	}
	testenv.Eventually(t, "a resync of "+ch, func() bool { return d.Resynced(ch) > 0 })
	testenv.Eventually(t, "deliveries to resume", func() bool {
		if err := e.Broker.PublishEvent(t.Context(), ch, realtime.Publication{Payload: []byte("after")}); err != nil {
			t.Fatalf("PublishEvent: %v", err)
		}
		return d.HasPayload(ch, "after")
	})
	if d.HasPayload(ch, "lost") {
		t.Errorf("the event published while the subscription was stuck was delivered")
	}
}

// TestKilledConnectionResubscribes kills the broker's pub/sub connections
// on the server side and checks that every channel is resynced and
// delivered again, on one Redis and on the cluster (where the channels
// spread over one connection per master).
func TestKilledConnectionResubscribes(t *testing.T) {
	for _, top := range []struct {
		name   string
		client func(t *testing.T, name string) goredis.UniversalClient
		// masters runs f on the client of every server.
		masters func(t *testing.T, c goredis.UniversalClient, f func(*goredis.Client) error) error
	}{
		{
			name: "Single",
			client: func(t *testing.T, name string) goredis.UniversalClient {
				opt, err := goredis.ParseURL(testenv.RedisURL(t))
				if err != nil {
					t.Fatal(err)
				}
				opt.ClientName = name
				return clientFor(t, opt)
			},
			masters: func(t *testing.T, c goredis.UniversalClient, f func(*goredis.Client) error) error {
				return f(c.(*goredis.Client))
			},
		},
		{
			name: "Cluster",
			client: func(t *testing.T, name string) goredis.UniversalClient {
				c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: sharedCluster(t), ClientName: name})
				t.Cleanup(func() { _ = c.Close() })
				return c
			},
			masters: func(t *testing.T, c goredis.UniversalClient, f func(*goredis.Client) error) error {
				return c.(*goredis.ClusterClient).ForEachMaster(t.Context(), func(_ context.Context, m *goredis.Client) error { return f(m) })
			},
		},
	} {
		t.Run(top.name, func(t *testing.T) {
			name := "pltest-" + newEpoch()
			c := top.client(t, name)
			e := newEngine(t, c, Options{})
			d := realtimetest.NewRecorder()
			runBroker(t, e.Broker, d)
			chs := make([]string, 12)
			for i := range chs {
				chs[i] = fmt.Sprintf("room:kill%d", i)
			}
			waitDelivering(t, e.Broker, d, chs[0])
			for _, ch := range chs[1:] {
				if err := e.Broker.Subscribe(t.Context(), ch); err != nil {
					t.Fatalf("Subscribe(%q): %v", ch, err)
				}
			}
			if top.name == "Cluster" {
				if n := shardCount(e.Broker); n != 3 {
					t.Errorf("%d pub/sub connections for 12 channels on 3 masters, want 3", n)
				}
			}

			var mu sync.Mutex
			killed := 0
			err := top.masters(t, c, func(m *goredis.Client) error {
				ids, err := pubsubConnIDs(t.Context(), m, name)
				if err != nil {
					return err
				}
				for _, id := range ids {
					if err := m.Do(t.Context(), "client", "kill", "id", id).Err(); err != nil {
						return err
					}
				}
				mu.Lock()
				killed += len(ids)
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Fatalf("kill the pub/sub connections: %v", err)
			}
			if killed == 0 {
				t.Fatal("found no pub/sub connection to kill")
			}
			for _, ch := range chs {
				testenv.Eventually(t, "a resync of "+ch, func() bool { return d.Resynced(ch) > 0 })
				testenv.Eventually(t, "deliveries on "+ch+" to resume", func() bool {
					if err := e.Broker.PublishEvent(t.Context(), ch, realtime.Publication{Payload: []byte("again")}); err != nil {
						t.Fatalf("PublishEvent: %v", err)
					}
					return d.HasPayload(ch, "again")
				})
			}
		})
	}
}

// TestRedisRestart restarts a private Redis without persistence under a
// running broker: Run survives, subscriptions come back with a resync,
// the stream starts a new epoch, and the node is reachable again.
func TestRedisRestart(t *testing.T) {
	r := startPrivateRedis(t)
	c := clientFor(t, &goredis.Options{Addr: r.addr()})
	e := newEngine(t, c, Options{ProbeInterval: 200 * time.Millisecond})
	d := realtimetest.NewRecorder()
	runBroker(t, e.Broker, d)
	ch := "room:restart"
	waitDelivering(t, e.Broker, d, ch)
	before, err := e.Stream.Publish(t.Context(), ch, []byte("before"))
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	testenv.Eventually(t, "the publication before the restart", func() bool { return d.HasPayload(ch, "before") })

	r.stop()
	r.start()

	testenv.Eventually(t, "a resync of "+ch, func() bool { return d.Resynced(ch) > 0 })
	var after realtime.Position
	testenv.Eventually(t, "a publication after the restart to be delivered", func() bool {
		pos, err := e.Stream.Publish(t.Context(), ch, []byte("after"))
		if err == nil && after == (realtime.Position{}) {
			after = pos
		}
		return d.HasPayload(ch, "after")
	})
	if after.Epoch == before.Epoch || after.Offset != 1 {
		t.Errorf("first publication after the restart at %+v, want offset 1 of an epoch other than %q", after, before.Epoch)
	}
	if _, cur, err := e.Stream.Since(t.Context(), ch, before); !errors.Is(err, realtime.ErrUnrecoverable) || cur.Epoch != after.Epoch {
		t.Errorf("Since(%+v) after the restart = current %+v, %v; want ErrUnrecoverable in epoch %q", before, cur, err, after.Epoch)
	}
	testenv.Eventually(t, "a node message after the restart", func() bool {
		err := e.Broker.SendNode(t.Context(), e.Broker.NodeID(), []byte("hello"))
		if err != nil && !errors.Is(err, partyline.ErrNotFound) {
			t.Fatalf("SendNode: %v", err)
		}
		return len(d.NodeMsgs()) > 0
	})
}

// TestNodes checks the node registry and node-to-node messages between
// two brokers.
func TestNodes(t *testing.T) {
	forEachTopology(t, func(t *testing.T, c goredis.UniversalClient) {
		prefix := testenv.KeyPrefix()
		a := newEngine(t, c, Options{Prefix: prefix, NodeID: "a"})
		b := newEngine(t, c, Options{Prefix: prefix, NodeID: "b"})
		da, db := realtimetest.NewRecorder(), realtimetest.NewRecorder()
		runBroker(t, a.Broker, da)
		stopB := runBroker(t, b.Broker, db)
		waitDelivering(t, a.Broker, da, "room:a")
		waitDelivering(t, b.Broker, db, "room:b")

		nodes, err := a.Broker.Nodes(t.Context())
		if err != nil {
			t.Fatalf("Nodes: %v", err)
		}
		slices.Sort(nodes)
		if diff := cmp.Diff([]string{"a", "b"}, nodes); diff != "" {
			t.Errorf("Nodes (-want +got):\n%s", diff)
		}
		if err := a.Broker.SendNode(t.Context(), "b", []byte("a to b")); err != nil {
			t.Fatalf("SendNode(b): %v", err)
		}
		testenv.Eventually(t, "b's node message", func() bool { return len(db.NodeMsgs()) > 0 })
		if got := string(db.NodeMsgs()[0]); got != "a to b" {
			t.Errorf("b got %q, want %q", got, "a to b")
		}
		if n := len(da.NodeMsgs()); n != 0 {
			t.Errorf("a got %d node messages meant for b", n)
		}

		stopB()
		nodes, err = a.Broker.Nodes(t.Context())
		if err != nil {
			t.Fatalf("Nodes: %v", err)
		}
		if diff := cmp.Diff([]string{"a"}, nodes); diff != "" {
			t.Errorf("Nodes after b stopped (-want +got):\n%s", diff)
		}
		if err := a.Broker.SendNode(t.Context(), "b", []byte("gone")); !errors.Is(err, partyline.ErrNotFound) {
			t.Errorf("SendNode to a stopped node = %v, want an error wrapping partyline.ErrNotFound", err)
		}
	})
}

// TestOrderingAcrossNodes publishes concurrently through one node and
// checks that another node receives the channel's offsets in order, with
// no gap.
func TestOrderingAcrossNodes(t *testing.T) {
	const publishers, each = 16, 200
	forEachTopology(t, func(t *testing.T, c goredis.UniversalClient) {
		prefix := testenv.KeyPrefix()
		pub := newEngine(t, c, Options{Prefix: prefix, NodeID: "pub", HistorySize: publishers * each})
		sub := newEngine(t, c, Options{Prefix: prefix, NodeID: "sub"})
		runBroker(t, pub.Broker, realtimetest.NewRecorder())
		d := realtimetest.NewRecorder()
		runBroker(t, sub.Broker, d)
		ch := "room:order"
		waitDelivering(t, sub.Broker, d, ch)

		var wg sync.WaitGroup
		for g := range publishers {
			wg.Go(func() {
				for i := range each {
					if _, err := pub.Stream.Publish(t.Context(), ch, fmt.Appendf(nil, "%d/%d", g, i)); err != nil {
						t.Errorf("Publish: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		total := publishers * each
		published := func() []realtime.Publication { // leaves out waitDelivering's events
			var ps []realtime.Publication
			for _, p := range d.Got(ch) {
				if p.Offset > 0 {
					ps = append(ps, p)
				}
			}
			return ps
		}
		testenv.Eventually(t, fmt.Sprintf("%d publications on the other node", total), func() bool {
			return len(published()) >= total
		})
		got := published()
		if len(got) != total {
			t.Fatalf("%d deliveries, want %d", len(got), total)
		}
		for i, p := range got {
			if p.Offset != uint64(i+1) || p.Epoch != got[0].Epoch {
				t.Fatalf("delivery #%d at %+v, want offset %d of epoch %q", i+1, p.Position, i+1, got[0].Epoch)
			}
		}
	})
}

// TestSubscribeBeforeRun checks that channels subscribed while Run is not
// running are subscribed when it starts, and that a second Run fails.
func TestSubscribeBeforeRun(t *testing.T) {
	forEachTopology(t, func(t *testing.T, c goredis.UniversalClient) {
		e := newEngine(t, c, Options{})
		ch := "room:early"
		if err := e.Broker.Subscribe(t.Context(), ch); err != nil {
			t.Fatalf("Subscribe before Run: %v", err)
		}
		if err := e.Broker.Subscribe(t.Context(), "room:dropped"); err != nil {
			t.Fatalf("Subscribe before Run: %v", err)
		}
		if err := e.Broker.Unsubscribe(t.Context(), "room:dropped"); err != nil {
			t.Fatalf("Unsubscribe before Run: %v", err)
		}
		d := realtimetest.NewRecorder()
		runBroker(t, e.Broker, d)
		waitDelivering(t, e.Broker, d, "room:up")
		if err := e.Broker.Run(t.Context(), realtimetest.NewRecorder()); err == nil {
			t.Errorf("a second Run returned nil, want an error")
		}
		for _, c := range []string{ch, "room:dropped"} {
			if err := e.Broker.PublishEvent(t.Context(), c, realtime.Publication{Payload: []byte(c)}); err != nil {
				t.Fatalf("PublishEvent: %v", err)
			}
		}
		testenv.Eventually(t, "the event on "+ch, func() bool { return d.HasPayload(ch, ch) })
		if d.Count("room:dropped") != 0 {
			t.Errorf("got an event on a channel unsubscribed before Run")
		}
	})
}
