package redisbroker

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	goredis "github.com/redis/go-redis/v9"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/realtimetest"
)

// TestLostStream deletes a channel's keys, as an eviction, a flush or a
// restart without persistence would, and checks that the stream starts a
// new epoch instead of continuing silently; and that a history that lost
// only its entries is reported unrecoverable where it has holes.
func TestLostStream(t *testing.T) {
	forEachTopology(t, func(t *testing.T, c goredis.UniversalClient) {
		e := newEngine(t, c, Options{})
		ks := e.Broker.keys
		ctx := t.Context()
		ch := "room:lost"
		var old realtime.Position
		for range 3 {
			pos, err := e.Stream.Publish(ctx, ch, []byte("x"))
			if err != nil {
				t.Fatalf("Publish: %v", err)
			}
			old = pos
		}

		// Only the entries go: the epoch goes on, with a hole.
		if err := c.Del(ctx, ks.stream(ch)).Err(); err != nil {
			t.Fatal(err)
		}
		pos, err := e.Stream.Publish(ctx, ch, []byte("y"))
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if want := (realtime.Position{Epoch: old.Epoch, Offset: 4}); pos != want {
			t.Errorf("Publish after the entries were lost = %+v, want %+v", pos, want)
		}
		if _, _, err := e.Stream.Since(ctx, ch, old); err != nil {
			t.Errorf("Since(%+v) = %v, want offset 4", old, err)
		}
		if _, cur, err := e.Stream.Since(ctx, ch, realtime.Position{Epoch: old.Epoch, Offset: 2}); !errors.Is(err, realtime.ErrUnrecoverable) || cur != pos {
			t.Errorf("Since across the hole = current %+v, %v; want %+v, ErrUnrecoverable", cur, err, pos)
		}

		// Everything goes: a new epoch.
		if err := c.Del(ctx, ks.meta(ch)).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c.Del(ctx, ks.stream(ch)).Err(); err != nil {
			t.Fatal(err)
		}
		next, err := e.Stream.Publish(ctx, ch, []byte("z"))
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if next.Epoch == old.Epoch || next.Offset != 1 {
			t.Errorf("Publish after the keys were lost = %+v, want offset 1 of an epoch other than %q", next, old.Epoch)
		}
		if _, cur, err := e.Stream.Since(ctx, ch, pos); !errors.Is(err, realtime.ErrUnrecoverable) || cur != next {
			t.Errorf("Since(%+v) from the lost epoch = current %+v, %v; want %+v, ErrUnrecoverable", pos, cur, err, next)
		}
		pubs, cur, err := e.Stream.Since(ctx, ch, realtime.Position{Epoch: next.Epoch})
		if err != nil || cur != next || len(pubs) != 1 || string(pubs[0].Payload) != "z" {
			t.Errorf("Since the start of the new epoch = %d publications, %+v, %v; want z at %+v", len(pubs), cur, err, next)
		}
	})
}

func TestDecodePublication(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want realtime.Publication
	}{
		{"k3j2 58\n{\"a\":1}", realtime.Publication{Position: realtime.Position{Epoch: "k3j2", Offset: 58}, Payload: []byte(`{"a":1}`)}},
		{"e 1\n", realtime.Publication{Position: realtime.Position{Epoch: "e", Offset: 1}, Payload: []byte{}}},
		{"e 2\na b\nc \n", realtime.Publication{Position: realtime.Position{Epoch: "e", Offset: 2}, Payload: []byte("a b\nc \n")}},
		{" 0\n{\"type\":\"event\"}", realtime.Publication{Payload: []byte(`{"type":"event"}`)}},
		{string(appendEvent(nil, []byte("x y\nz"))), realtime.Publication{Payload: []byte("x y\nz")}},
	} {
		got, err := decodePublication(tc.msg)
		if err != nil {
			t.Errorf("decodePublication(%q): %v", tc.msg, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("decodePublication(%q) (-want +got):\n%s", tc.msg, diff)
		}
	}
	for _, bad := range []string{"", "e1\nx", "e 1", "e x\ny", " 1\nx", "e 0\nx", "e -1\nx"} {
		if _, err := decodePublication(bad); err == nil {
			t.Errorf("decodePublication(%q) succeeded, want an error", bad)
		}
	}
}

func TestHashTag(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"room:r_9f2", "room:r_9f2"},
		{"a{b", "a{b"},
		{"", "~"},
		{"a}b", "~617d62"},
		{"~", "~7e"},
		{"~7e", "~7e3765"},
	} {
		if got := hashTag(tc.in); got != tc.want {
			t.Errorf("hashTag(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	k := keyspace{prefix: "pl:"}
	if got, want := k.meta("room:x"), "pl:{room:x}:m"; got != want {
		t.Errorf("meta key = %q, want %q", got, want)
	}
	if got, want := k.node("n1"), "pl:{node:n1}"; got != want {
		t.Errorf("node channel = %q, want %q", got, want)
	}
	if got, want := k.status("u1"), "pl:{status:u1}:v"; got != want {
		t.Errorf("status key = %q, want %q", got, want)
	}
}

// TestPublishWhileRunStops stops the broker's Run under concurrent
// publishers: every publish still gets its own position, queued or not,
// and the offsets stay gapless.
func TestPublishWhileRunStops(t *testing.T) {
	const publishers, each = 16, 100
	e := newEngine(t, singleClient(t), Options{HistorySize: publishers * each})
	d := realtimetest.NewRecorder()
	stop := runBroker(t, e.Broker, d)
	waitDelivering(t, e.Broker, d, "room:up")
	ch := "room:stopping"
	var (
		mu      sync.Mutex
		offsets = make(map[uint64]bool)
		wg      sync.WaitGroup
	)
	for range publishers {
		wg.Go(func() {
			for range each {
				pos, err := e.Stream.Publish(t.Context(), ch, []byte("x"))
				if err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
				mu.Lock()
				offsets[pos.Offset] = true
				mu.Unlock()
			}
		})
	}
	testenv.Eventually(t, "some publishes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(offsets) >= publishers*each/4
	})
	stop()
	wg.Wait()
	for off := range uint64(publishers * each) {
		if !offsets[off+1] {
			t.Fatalf("no publish got offset %d", off+1)
		}
	}
}

// TestPublishExpiry checks the keys' expiry, which the publish script
// pushes back only once per refresh interval: after any publish both keys
// live at least the key TTL, including a stream that was lost on its own
// and made again while its meta hash lived.
func TestPublishExpiry(t *testing.T) {
	forEachTopology(t, func(t *testing.T, c goredis.UniversalClient) {
		e := newEngine(t, c, Options{})
		ks := e.Broker.keys
		ctx := t.Context()
		ch := "room:expiry"
		check := func(when string) {
			t.Helper()
			for _, k := range []string{ks.meta(ch), ks.stream(ch)} {
				ttl, err := c.PTTL(ctx, k).Result()
				if err != nil {
					t.Fatal(err)
				}
				if min := e.Stream.keyTTL - time.Second; ttl < min {
					t.Errorf("%s: %s expires in %v, want at least %v", when, k, ttl, min)
				}
			}
		}
		for i := range 3 {
			if _, err := e.Stream.Publish(ctx, ch, []byte("x")); err != nil {
				t.Fatal(err)
			}
			check(fmt.Sprintf("publish %d", i+1))
		}
		if err := c.Del(ctx, ks.stream(ch)).Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Stream.Publish(ctx, ch, []byte("y")); err != nil {
			t.Fatal(err)
		}
		check("the stream made again")
		// A read that sets the meta hash's expiry to the key TTL does
		// not cut it below that.
		if _, err := e.Stream.Current(ctx, ch); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Stream.Publish(ctx, ch, []byte("z")); err != nil {
			t.Fatal(err)
		}
		check("a read, then a publish")
	})
}

// TestPublishBatch sends one batch of publications as the broker's
// workers do: on one Redis that is one script call for all of them. Each
// publication gets its own position, in batch order within a channel, and
// is delivered; one whose channel's keys are broken gets its own error
// while the others still happen.
func TestPublishBatch(t *testing.T) {
	forEachTopology(t, func(t *testing.T, c goredis.UniversalClient) {
		e := newEngine(t, c, Options{})
		d := realtimetest.NewRecorder()
		runBroker(t, e.Broker, d)
		ctx := t.Context()
		a, b, broken := "room:batch-a", "room:batch-b", "room:batch-broken"
		for _, ch := range []string{a, b} {
			waitDelivering(t, e.Broker, d, ch)
		}
		first, err := e.Stream.Publish(ctx, a, []byte("a0"))
		if err != nil {
			t.Fatalf("Publish: %v", err)
		}
		if err := c.Set(ctx, e.Broker.keys.meta(broken), "not a hash", time.Minute).Err(); err != nil {
			t.Fatalf("SET: %v", err)
		}
		var calls []*pubCall
		for _, p := range []struct{ ch, payload string }{{a, "a1"}, {b, "b1"}, {broken, "x"}, {a, "a2"}} {
			calls = append(calls, &pubCall{
				ctx:  ctx,
				pub:  e.Stream.publication(p.ch, []byte(p.payload), e.Broker.keys.channel(p.ch)),
				done: make(chan struct{}),
			})
		}
		e.Broker.pub.send(ctx, calls)
		var got []string
		for i, call := range calls {
			<-call.done
			if i == 2 {
				if call.err == nil || !strings.Contains(call.err.Error(), "WRONGTYPE") {
					t.Errorf("publication to a channel whose meta key is a string: err %v, want WRONGTYPE", call.err)
				}
				continue
			}
			if call.err != nil {
				t.Fatalf("publication %d: %v", i, call.err)
			}
			pos, err := parsePosition(call.val)
			if err != nil {
				t.Fatalf("publication %d: %v", i, err)
			}
			got = append(got, fmt.Sprintf("%s/%d", map[bool]string{true: "first", false: "other"}[pos.Epoch == first.Epoch], pos.Offset))
		}
		// a's epoch continues; b is new, with an epoch of its own.
		if diff := cmp.Diff([]string{"first/2", "other/1", "first/3"}, got); diff != "" {
			t.Errorf("positions (-want +got):\n%s", diff)
		}
		pubs, _, err := e.Stream.Since(ctx, a, first)
		if err != nil {
			t.Fatalf("Since: %v", err)
		}
		var payloads []string
		for _, p := range pubs {
			payloads = append(payloads, string(p.Payload))
		}
		if diff := cmp.Diff([]string{"a1", "a2"}, payloads); diff != "" {
			t.Errorf("history of %s after the batch (-want +got):\n%s", a, diff)
		}
		// Offset 0 is waitDelivering's events.
		offsets := func(ch string) []uint64 {
			var offs []uint64
			for _, p := range d.Got(ch) {
				if p.Offset > 0 {
					offs = append(offs, p.Offset)
				}
			}
			return offs
		}
		testenv.Eventually(t, "the batch delivered", func() bool { return len(offsets(a)) >= 3 && len(offsets(b)) >= 1 })
		if diff := cmp.Diff([]uint64{1, 2, 3}, offsets(a)); diff != "" {
			t.Errorf("offsets delivered on %s (-want +got):\n%s", a, diff)
		}
		if diff := cmp.Diff([]uint64{1}, offsets(b)); diff != "" {
			t.Errorf("offsets delivered on %s (-want +got):\n%s", b, diff)
		}
	})
}
