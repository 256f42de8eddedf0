package realtime_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/realtimetest"
)

func TestMemoryStream(t *testing.T) {
	realtimetest.TestStream(t, func(t *testing.T, cfg realtimetest.StreamConfig) (realtime.Stream, realtime.Broker) {
		b := realtime.NewMemoryBroker(realtime.MemoryBrokerOptions{NodeID: "n1"})
		s := realtime.NewMemoryStream(b, realtime.MemoryStreamOptions{
			HistorySize: cfg.HistorySize,
			HistoryTTL:  cfg.HistoryTTL,
			Now:         cfg.Now,
		})
		return s, b
	})
}

func TestMemoryBroker(t *testing.T) {
	realtimetest.TestBroker(t, func(t *testing.T) (realtime.Broker, string) {
		return realtime.NewMemoryBroker(realtime.MemoryBrokerOptions{NodeID: "n1"}), "n1"
	})
}

func TestMemoryPresence(t *testing.T) {
	realtimetest.TestPresence(t, func(t *testing.T) realtime.Presence {
		return realtime.NewMemoryPresence()
	})
}

// countDeliverer counts deliveries and does nothing else.
type countDeliverer struct{ n atomic.Int64 }

func (d *countDeliverer) Deliver(string, realtime.Publication) { d.n.Add(1) }
func (d *countDeliverer) DeliverNode([]byte)                   { d.n.Add(1) }
func (d *countDeliverer) Resync([]string)                      {}

// startMemoryBroker runs b.Run(d) in a goroutine until it delivers (found
// by publishing on a probe channel until delivered returns true), and
// returns a function that stops Run and waits for it. The test's cleanup
// stops it too, if it still runs.
func startMemoryBroker(tb testing.TB, b *realtime.MemoryBroker, d realtime.Deliverer, delivered func() bool) (stop func()) {
	tb.Helper()
	stop = testenv.Go(tb, "Run", func(ctx context.Context) error { return b.Run(ctx, d) })
	bg := context.Background()
	if err := b.Subscribe(bg, "probe"); err != nil {
		tb.Fatal(err)
	}
	testenv.Eventually(tb, "Run to deliver", func() bool {
		if err := b.PublishEvent(bg, "probe", realtime.Publication{Payload: []byte("probe")}); err != nil {
			tb.Fatal(err)
		}
		return delivered()
	})
	if err := b.Unsubscribe(bg, "probe"); err != nil {
		tb.Fatal(err)
	}
	return stop
}

func TestMemoryLeases(t *testing.T) {
	const ttl = 200 * time.Millisecond
	realtimetest.TestLeases(t, ttl, func(t *testing.T) realtime.Leases {
		return realtime.NewMemoryLeases(realtime.MemoryLeasesOptions{TTL: ttl})
	})
}

func TestMemoryBrokerDeliversOnlyWhileRunning(t *testing.T) {
	ctx := t.Context()
	b := realtime.NewMemoryBroker(realtime.MemoryBrokerOptions{NodeID: "n1"})
	if err := b.Subscribe(ctx, "room:a"); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishEvent(ctx, "room:a", realtime.Publication{Payload: []byte("before")}); err != nil {
		t.Fatalf("PublishEvent before Run: %v", err)
	}
	if err := b.SendNode(ctx, "n1", []byte("before")); err != nil {
		t.Fatalf("SendNode before Run: %v", err)
	}

	rec := realtimetest.NewRecorder()
	stop := startMemoryBroker(t, b, rec, func() bool { return rec.Count("probe") > 0 })
	// Delivery is synchronous, so these arrive before the calls return.
	if err := b.PublishEvent(ctx, "room:a", realtime.Publication{Payload: []byte("during")}); err != nil {
		t.Fatal(err)
	}
	if err := b.SendNode(ctx, "n1", []byte("during")); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := b.PublishEvent(ctx, "room:a", realtime.Publication{Payload: []byte("after")}); err != nil {
		t.Fatalf("PublishEvent after Run: %v", err)
	}
	if err := b.SendNode(ctx, "n1", []byte("after")); err != nil {
		t.Fatalf("SendNode after Run: %v", err)
	}

	var roomA, node []string
	for _, p := range rec.Got("room:a") {
		roomA = append(roomA, string(p.Payload))
	}
	for _, msg := range rec.NodeMsgs() {
		node = append(node, string(msg))
	}
	if diff := cmp.Diff([]string{"during"}, roomA); diff != "" {
		t.Errorf("deliveries on room:a (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"during"}, node); diff != "" {
		t.Errorf("node messages (-want +got):\n%s", diff)
	}
}

func TestMemoryBrokerRunTwice(t *testing.T) {
	b := realtime.NewMemoryBroker(realtime.MemoryBrokerOptions{})
	rec := realtimetest.NewRecorder()
	stop := startMemoryBroker(t, b, rec, func() bool { return rec.Count("probe") > 0 })
	if err := b.Run(t.Context(), realtimetest.NewRecorder()); err == nil {
		t.Error("a second concurrent Run returned nil, want an error")
	}
	stop()
	// Once the first Run has returned, the broker can run again.
	again := realtimetest.NewRecorder()
	startMemoryBroker(t, b, again, func() bool { return again.Count("probe") > 0 })
}

func TestMemoryBrokerSendNode(t *testing.T) {
	ctx := t.Context()
	b := realtime.NewMemoryBroker(realtime.MemoryBrokerOptions{})
	rec := realtimetest.NewRecorder()
	startMemoryBroker(t, b, rec, func() bool { return rec.Count("probe") > 0 })
	if err := b.SendNode(ctx, "local", []byte("hi")); err != nil {
		t.Errorf(`SendNode to the default node id "local": %v`, err)
	}
	if node := rec.NodeMsgs(); len(node) != 1 || string(node[0]) != "hi" {
		t.Errorf("node messages = %q, want [hi]", node)
	}
	for _, id := range []string{"", "n2", "local "} {
		if err := b.SendNode(ctx, id, []byte("hi")); !errors.Is(err, partyline.ErrNotFound) {
			t.Errorf("SendNode(%q) = %v, want an error wrapping partyline.ErrNotFound", id, err)
		}
	}
}

func TestMemoryCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := realtime.NewMemoryBroker(realtime.MemoryBrokerOptions{})
	s := realtime.NewMemoryStream(b, realtime.MemoryStreamOptions{})
	p := realtime.NewMemoryPresence()
	m := realtime.Member{ConnID: "c", User: "u", Node: "n"}
	calls := map[string]error{
		"Subscribe":    b.Subscribe(ctx, "ch"),
		"Unsubscribe":  b.Unsubscribe(ctx, "ch"),
		"PublishEvent": b.PublishEvent(ctx, "ch", realtime.Publication{}),
		"SendNode":     b.SendNode(ctx, "local", nil),
		"SetStatus":    p.SetStatus(ctx, "u", realtime.Status{}),
	}
	_, calls["Publish"] = s.Publish(ctx, "ch", nil)
	_, _, calls["Since"] = s.Since(ctx, "ch", realtime.Position{})
	_, calls["Current"] = s.Current(ctx, "ch")
	_, calls["Join"] = p.Join(ctx, "ch", m)
	_, calls["Leave"] = p.Leave(ctx, "ch", m)
	_, calls["Members"] = p.Members(ctx, "ch")
	_, _, calls["GetStatus"] = p.GetStatus(ctx, "u")
	for call, err := range calls {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context = %v, want context.Canceled", call, err)
		}
	}
}

func TestMemoryStreamForgetsQuietChannels(t *testing.T) {
	ctx := t.Context()
	clk := testenv.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	b := realtime.NewMemoryBroker(realtime.MemoryBrokerOptions{})
	s := realtime.NewMemoryStream(b, realtime.MemoryStreamOptions{HistoryTTL: time.Minute, Now: clk.Now})
	if err := b.Subscribe(ctx, "room:kept"); err != nil {
		t.Fatal(err)
	}
	first := make(map[string]realtime.Position)
	for _, ch := range []string{"room:quiet", "room:kept", "room:busy"} {
		pos, err := s.Publish(ctx, ch, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		first[ch] = pos
	}
	// room:busy stays in use; the others go quiet past the TTL.
	for range 4 {
		clk.Add(20 * time.Second)
		if _, err := s.Current(ctx, "room:busy"); err != nil {
			t.Fatal(err)
		}
	}

	// Forgotten: it comes back at offset 0 of a new epoch.
	cur, err := s.Current(ctx, "room:quiet")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Epoch == first["room:quiet"].Epoch || cur.Offset != 0 {
		t.Errorf("quiet channel after the TTL: Current = %+v, want offset 0 of an epoch other than %q", cur, first["room:quiet"].Epoch)
	}
	if _, _, err := s.Since(ctx, "room:quiet", first["room:quiet"]); !errors.Is(err, realtime.ErrUnrecoverable) {
		t.Errorf("Since the old epoch of a forgotten channel = %v, want ErrUnrecoverable", err)
	}

	// Kept, because the node is subscribed: its history aged out, but the
	// position a subscriber holds still recovers.
	for _, ch := range []string{"room:kept", "room:busy"} {
		pubs, cur, err := s.Since(ctx, ch, first[ch])
		if err != nil || len(pubs) != 0 || cur != first[ch] {
			t.Errorf("%s after the TTL: Since its last position = %d publications, %+v, %v; want none, %+v, nil",
				ch, len(pubs), cur, err, first[ch])
		}
	}
}

func TestMemoryStreamDefaultHistorySize(t *testing.T) {
	ctx := t.Context()
	s := realtime.NewMemoryStream(nil, realtime.MemoryStreamOptions{})
	var pos realtime.Position
	for i := range 1001 {
		var err error
		if pos, err = s.Publish(ctx, "room:d", fmt.Appendf(nil, "%d", i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Since(ctx, "room:d", realtime.Position{Epoch: pos.Epoch}); !errors.Is(err, realtime.ErrUnrecoverable) {
		t.Errorf("Since offset 0 after 1001 publications = %v, want ErrUnrecoverable", err)
	}
	pubs, _, err := s.Since(ctx, "room:d", realtime.Position{Epoch: pos.Epoch, Offset: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(pubs) != 1000 || string(pubs[0].Payload) != "2" || string(pubs[999].Payload) != "1001" {
		t.Errorf("Since offset 1 = %d publications; want 1000, from 2 to 1001", len(pubs))
	}
}

// countingStream returns a running memory broker that delivers to a
// Deliverer that only counts, and a memory stream on it.
func countingStream(b *testing.B) (*realtime.MemoryBroker, *realtime.MemoryStream) {
	br := realtime.NewMemoryBroker(realtime.MemoryBrokerOptions{})
	d := &countDeliverer{}
	startMemoryBroker(b, br, d, func() bool { return d.n.Load() > 0 })
	return br, realtime.NewMemoryStream(br, realtime.MemoryStreamOptions{})
}

func BenchmarkMemoryStreamPublish(b *testing.B) {
	payload := []byte(`"id":"01JD8XK3M2Q7V4","kind":"message","from":"u_1","ts":1732760000123,"data":{"text":"gg"}`)
	ctx := context.Background()

	// publishLoop publishes payload on ch once per iteration.
	publishLoop := func(b *testing.B, s *realtime.MemoryStream, ch string) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Publish(ctx, ch, payload); err != nil {
				b.Fatal(err)
			}
		}
	}

	b.Run("NoSubscribers", func(b *testing.B) {
		publishLoop(b, realtime.NewMemoryStream(realtime.NewMemoryBroker(realtime.MemoryBrokerOptions{}), realtime.MemoryStreamOptions{}), "room:bench")
	})

	b.Run("NopDeliverer", func(b *testing.B) {
		br, s := countingStream(b)
		if err := br.Subscribe(ctx, "room:bench"); err != nil {
			b.Fatal(err)
		}
		publishLoop(b, s, "room:bench")
	})

	b.Run("ParallelChannels", func(b *testing.B) {
		br, s := countingStream(b)
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ch := fmt.Sprintf("room:bench%d", next.Add(1))
			if err := br.Subscribe(ctx, ch); err != nil {
				b.Error(err)
				return
			}
			for pb.Next() {
				if _, err := s.Publish(ctx, ch, payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
