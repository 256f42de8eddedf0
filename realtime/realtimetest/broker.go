package realtimetest

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
)

// TestBroker runs the Broker conformance suite. newBroker builds a fresh
// Broker for each subtest and returns it with the id of the node it serves
// (the id SendNode reaches); it registers its own cleanup with t.Cleanup.
// The suite runs the broker's Run itself, so the broker must not be
// running.
//
// It checks that ephemeral events reach subscribed channels only, in
// order, with their bytes and offset 0; that Subscribe is idempotent and
// one Unsubscribe stops deliveries; that concurrent publishers lose
// nothing and never make the Deliverer overlap on one channel; and that
// SendNode reaches this node and fails with partyline.ErrNotFound for a
// node that does not exist.
func TestBroker(t *testing.T, newBroker func(t *testing.T) (b realtime.Broker, nodeID string)) {
	setup := func(t *testing.T) (realtime.Broker, string, *Recorder) {
		t.Helper()
		b, node := newBroker(t)
		rec := run(t, b)
		t.Cleanup(func() { rec.CheckNoOverlaps(t) })
		return b, node, rec
	}

	t.Run("PublishEventReachesSubscribers", func(t *testing.T) {
		b, _, rec := setup(t)
		ch := name("room:ev")
		subscribe(t, b, ch)
		msg := []byte(`{"type":"event","channel":"` + ch + `","event":"typing","from":"u_1"}`)
		publishEvent(t, b, ch, msg)
		testenv.Eventually(t, "the event", func() bool { return rec.Count(ch) >= 1 })
		got := rec.Got(ch)
		if len(got) != 1 {
			t.Fatalf("got %d deliveries, want 1", len(got))
		}
		if got[0].Position != (realtime.Position{}) {
			t.Errorf("event position = %+v, want zero", got[0].Position)
		}
		if !bytes.Equal(got[0].Payload, msg) {
			t.Errorf("event payload = %q, want %q", got[0].Payload, msg)
		}
	})

	t.Run("EventsOnlyForSubscribedChannels", func(t *testing.T) {
		b, _, rec := setup(t)
		ch, other := name("room:sub"), name("room:other")
		publishEvent(t, b, ch, []byte("before subscribe"))
		publishEvent(t, b, other, []byte("never subscribed"))
		subscribe(t, b, ch)
		subscribe(t, b, ch) // idempotent: still one delivery per event
		publishEvent(t, b, ch, []byte("subscribed"))
		testenv.Eventually(t, "the first event", func() bool { return rec.Count(ch) >= 1 })
		unsubscribe(t, b, ch) // once undoes both subscribes
		publishEvent(t, b, ch, []byte("unsubscribed"))
		unsubscribe(t, b, ch) // idempotent
		subscribe(t, b, ch)
		publishEvent(t, b, ch, []byte("subscribed again"))
		testenv.Eventually(t, "the second event", func() bool { return rec.Count(ch) >= 2 })
		want := []pub{{Payload: "subscribed"}, {Payload: "subscribed again"}}
		if diff := cmp.Diff(want, pubsOf(rec.Got(ch))); diff != "" {
			t.Errorf("deliveries on %s (-want +got):\n%s", ch, diff)
		}
		// other's first event would have arrived before this one.
		subscribe(t, b, other)
		publishEvent(t, b, other, []byte("sentinel"))
		testenv.Eventually(t, "the sentinel", func() bool { return rec.Count(other) >= 1 })
		if diff := cmp.Diff([]pub{{Payload: "sentinel"}}, pubsOf(rec.Got(other))); diff != "" {
			t.Errorf("deliveries on %s (-want +got):\n%s", other, diff)
		}
	})

	t.Run("UnsubscribeUnknownChannel", func(t *testing.T) {
		b, _, _ := setup(t)
		unsubscribe(t, b, name("room:never"))
	})

	t.Run("EventsKeepOrder", func(t *testing.T) {
		const n = 100
		b, _, rec := setup(t)
		ch := name("room:order")
		subscribe(t, b, ch)
		want := make([]pub, n)
		for i := range want {
			want[i] = pub{Payload: strconv.Itoa(i)}
			publishEvent(t, b, ch, []byte(want[i].Payload))
		}
		testenv.Eventually(t, fmt.Sprintf("%d events", n), func() bool { return rec.Count(ch) >= n })
		if diff := cmp.Diff(want, pubsOf(rec.Got(ch))); diff != "" {
			t.Errorf("deliveries (-want +got):\n%s", diff)
		}
	})

	t.Run("ConcurrentPublishers", func(t *testing.T) {
		const goroutines, each = 16, 50
		b, _, rec := setup(t)
		chs := []string{name("room:conc0"), name("room:conc1")}
		for _, ch := range chs {
			subscribe(t, b, ch)
		}
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					ch := chs[(g+i)%len(chs)]
					p := realtime.Publication{Payload: fmt.Appendf(nil, "%d/%d", g, i)}
					if err := b.PublishEvent(t.Context(), ch, p); err != nil {
						t.Errorf("publisher %d: PublishEvent(%q): %v", g, ch, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		per := goroutines * each / len(chs)
		for _, ch := range chs {
			testenv.Eventually(t, fmt.Sprintf("%d events on %s", per, ch), func() bool { return rec.Count(ch) >= per })
			got := rec.Got(ch)
			if len(got) != per {
				t.Errorf("%s: %d deliveries, want %d", ch, len(got), per)
			}
			// Each publisher's events arrive in the order it sent them.
			last := make(map[int]int)
			for _, p := range got {
				var g, i int
				if _, err := fmt.Sscanf(string(p.Payload), "%d/%d", &g, &i); err != nil {
					t.Fatalf("%s: payload %q: %v", ch, p.Payload, err)
				}
				if prev, ok := last[g]; ok && i <= prev {
					t.Errorf("%s: publisher %d's event %d after its %d", ch, g, i, prev)
				}
				last[g] = i
			}
		}
	})

	t.Run("SendNodeToSelf", func(t *testing.T) {
		b, node, rec := setup(t)
		want := [][]byte{[]byte(`{"op":"voice.offer","n":1}`), []byte(`{"op":"voice.ice","n":2}`), {0, 1, 2, 255}}
		for _, msg := range want {
			if err := b.SendNode(t.Context(), node, msg); err != nil {
				t.Fatalf("SendNode(%q): %v", node, err)
			}
		}
		testenv.Eventually(t, "the node messages", func() bool { return len(rec.NodeMsgs()) >= len(want) })
		if diff := cmp.Diff(want, rec.NodeMsgs()); diff != "" {
			t.Errorf("node messages (-want +got):\n%s", diff)
		}
	})

	t.Run("SendNodeToUnknownNode", func(t *testing.T) {
		b, node, _ := setup(t)
		other := name(node + "-gone")
		if err := b.SendNode(t.Context(), other, []byte("hello")); !errors.Is(err, partyline.ErrNotFound) {
			t.Errorf("SendNode(%q) = %v, want an error wrapping partyline.ErrNotFound", other, err)
		}
	})
}

// publishEvent publishes msg as an ephemeral event on ch or fails the test.
func publishEvent(t *testing.T, b realtime.Broker, ch string, msg []byte) {
	t.Helper()
	if err := b.PublishEvent(t.Context(), ch, realtime.Publication{Payload: msg}); err != nil {
		t.Fatalf("PublishEvent(%q): %v", ch, err)
	}
}
