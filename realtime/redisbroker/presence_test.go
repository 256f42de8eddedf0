package redisbroker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	goredis "github.com/redis/go-redis/v9"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
)

// presenceTTL is the short entry lifetime of the expiry tests.
const presenceTTL = time.Second

// presencePair runs the presences of nodes "a" and "b", with presenceTTL,
// on one new key prefix of c. StopB ends b's renewals, as b's death would.
func presencePair(t *testing.T, c goredis.UniversalClient) (a, b *Presence, stopB func()) {
	t.Helper()
	prefix := testenv.KeyPrefix()
	a = newEngine(t, c, Options{Prefix: prefix, NodeID: "a", PresenceTTL: presenceTTL}).Presence
	b = newEngine(t, c, Options{Prefix: prefix, NodeID: "b", PresenceTTL: presenceTTL}).Presence
	runPresence(t, a)
	return a, b, runPresence(t, b)
}

// TestPresenceExpiresDeadNode stops the renewals of one of two nodes and
// checks that its members disappear everywhere, while the other node's
// outlive the TTL.
func TestPresenceExpiresDeadNode(t *testing.T) {
	forEachTopology(t, func(t *testing.T, c goredis.UniversalClient) {
		a, b, stopB := presencePair(t, c)
		ch := "room:ttl"
		a1 := realtime.Member{ConnID: "a1", User: "u1", Node: "a"}
		b1 := realtime.Member{ConnID: "b1", User: "u2", Node: "b"}
		b2 := realtime.Member{ConnID: "b2", User: "u1", Node: "b"}
		join(t, a, ch, a1, true)
		join(t, b, ch, b1, true)
		join(t, b, ch, b2, false)
		members(t, a, ch, []realtime.Member{a1, b1, b2})

		stopB() // b dies: nobody renews b1 and b2
		stopped := time.Now()
		testenv.Eventually(t, "b's members to expire", func() bool {
			ms, err := a.Members(t.Context(), ch)
			if err != nil {
				t.Fatalf("Members: %v", err)
			}
			return len(ms) == 1
		})
		t.Logf("b's members expired %v after b stopped renewing (TTL %v)", time.Since(stopped).Round(time.Millisecond), presenceTTL)
		members(t, a, ch, []realtime.Member{a1})
		// b1 and b2 expired, so u2 is new again and a1 is u1's last.
		join(t, a, ch, realtime.Member{ConnID: "a2", User: "u2", Node: "a"}, true)
		leave(t, a, ch, a1, true)
	})
}

// TestPresenceRenewsLostEntries deletes a channel's presence keys, as a
// Redis restart without persistence would, and checks that the owning
// node's renewal puts its entries back.
func TestPresenceRenewsLostEntries(t *testing.T) {
	c := singleClient(t)
	e := newEngine(t, c, Options{PresenceTTL: presenceTTL})
	runPresence(t, e.Presence)
	ch := "room:renew"
	m := realtime.Member{ConnID: "c1", User: "u1", Node: "n1"}
	join(t, e.Presence, ch, m, true)
	if err := c.Del(t.Context(), e.Broker.keys.presence(ch)...).Err(); err != nil {
		t.Fatal(err)
	}
	members(t, e.Presence, ch, nil)
	testenv.Eventually(t, "the entry to come back", func() bool {
		ms, err := e.Presence.Members(t.Context(), ch)
		if err != nil {
			t.Fatalf("Members: %v", err)
		}
		return len(ms) == 1
	})
	members(t, e.Presence, ch, []realtime.Member{m})
	// The renewal put back its user's first entry: it is reported, once.
	testenv.Eventually(t, "the entry to be reported as rejoined", func() bool {
		for _, d := range e.Presence.Rejoined() {
			if d == (realtime.Departure{Channel: ch, User: "u1"}) {
				return true
			}
		}
		return false
	})
	leave(t, e.Presence, ch, m, true)
}

func TestMemberEncoding(t *testing.T) {
	for _, m := range []realtime.Member{
		{ConnID: "c", User: "u", Node: "n"},
		{ConnID: "c", User: "", Node: ""},
		{ConnID: "c:1", User: "u:2:x", Node: "n:3"},
		{ConnID: "c", User: "12:ab", Node: "é✓"},
	} {
		v := encodeMember(m)
		got, err := decodeMember(m.ConnID, v)
		if err != nil {
			t.Errorf("decodeMember(%q): %v", v, err)
			continue
		}
		if got != m {
			t.Errorf("decodeMember(encodeMember(%+v)) = %+v", m, got)
		}
	}
	for _, bad := range []string{"", "x", "3:ab", "-1:ab", "a:b"} {
		if _, err := decodeMember("c", bad); err == nil {
			t.Errorf("decodeMember(%q) succeeded, want an error", bad)
		}
	}
}

func join(t *testing.T, p *Presence, ch string, m realtime.Member, wantFirst bool) {
	t.Helper()
	first, err := p.Join(t.Context(), ch, m)
	if err != nil {
		t.Fatalf("Join(%+v): %v", m, err)
	}
	if first != wantFirst {
		t.Errorf("Join(%+v) firstForUser = %v, want %v", m, first, wantFirst)
	}
}

func leave(t *testing.T, p *Presence, ch string, m realtime.Member, wantLast bool) {
	t.Helper()
	last, err := p.Leave(t.Context(), ch, m)
	if err != nil {
		t.Fatalf("Leave(%+v): %v", m, err)
	}
	if last != wantLast {
		t.Errorf("Leave(%+v) lastForUser = %v, want %v", m, last, wantLast)
	}
}

func members(t *testing.T, p *Presence, ch string, want []realtime.Member) {
	t.Helper()
	got, err := p.Members(t.Context(), ch)
	if err != nil {
		t.Fatalf("Members: %v", err)
	}
	byConn := cmpopts.SortSlices(func(a, b realtime.Member) bool { return strings.Compare(a.ConnID, b.ConnID) < 0 })
	if diff := cmp.Diff(want, got, byConn, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Members(%q) (-want +got):\n%s", ch, diff)
	}
}

// TestPresenceReap: when a node stops renewing, Reap on a live node
// reports each user whose last connection in a channel went with it, once,
// and nothing for a user who still has a live connection there.
func TestPresenceReap(t *testing.T) {
	forEachTopology(t, func(t *testing.T, c goredis.UniversalClient) {
		a, b, stopB := presencePair(t, c)
		join(t, a, "room:reap", realtime.Member{ConnID: "a1", User: "u1", Node: "a"}, true)
		join(t, b, "room:reap", realtime.Member{ConnID: "b1", User: "u1", Node: "b"}, false)
		join(t, b, "room:reap", realtime.Member{ConnID: "b2", User: "u2", Node: "b"}, true)
		join(t, b, "online/u2", realtime.Member{ConnID: "b2", User: "u2", Node: "b"}, true)
		if deps, err := a.Reap(t.Context()); err != nil || len(deps) != 0 {
			t.Fatalf("Reap before anything expired = %v, %v", deps, err)
		}
		stopB()
		var got []realtime.Departure
		testenv.Eventually(t, "the dead node's departures", func() bool {
			deps, err := a.Reap(t.Context())
			if err != nil {
				t.Fatalf("Reap: %v", err)
			}
			got = append(got, deps...)
			return len(got) >= 2
		})
		want := []realtime.Departure{{Channel: "online/u2", User: "u2"}, {Channel: "room:reap", User: "u2"}}
		less := func(x, y realtime.Departure) bool { return x.Channel < y.Channel }
		if diff := cmp.Diff(want, got, cmpopts.SortSlices(less)); diff != "" {
			t.Fatalf("departures (-want +got):\n%s", diff)
		}
		if deps, err := b.Reap(t.Context()); err != nil || len(deps) != 0 {
			t.Fatalf("a second Reap = %v, %v; each departure is reported once", deps, err)
		}
	})
}

// TestRenewalMovesTheIndex checks that a renewal sets the channel's due
// time in the reap index to the earliest expiry in the channel: later than
// its own old expiry when it is alone, so a live channel is not swept once
// per TTL for nothing, and never later than a dead node's entry.
func TestRenewalMovesTheIndex(t *testing.T) {
	c := singleClient(t)
	prefix := testenv.KeyPrefix()
	live := newEngine(t, c, Options{Prefix: prefix, NodeID: "live", PresenceTTL: time.Minute})
	dead := newEngine(t, c, Options{Prefix: prefix, NodeID: "dead", PresenceTTL: time.Minute})
	ctx := t.Context()
	idx := live.Broker.keys.presenceIndex()
	due := func(ch string) float64 {
		t.Helper()
		v, err := c.ZScore(ctx, idx, ch).Result()
		if err != nil {
			t.Fatalf("index of %s: %v", ch, err)
		}
		return v
	}

	alone := "room:renew-alone"
	join(t, live.Presence, alone, realtime.Member{ConnID: "a1", User: "u1", Node: "live"}, true)
	before := due(alone)
	time.Sleep(20 * time.Millisecond)
	live.Presence.renew(ctx)
	if after := due(alone); after < before+20 {
		t.Errorf("after a renewal the channel is due at %v, want at least %v (its renewed expiry)", after, before+20)
	}

	shared := "room:renew-shared"
	join(t, dead.Presence, shared, realtime.Member{ConnID: "d1", User: "u2", Node: "dead"}, true)
	deadline := due(shared)
	time.Sleep(20 * time.Millisecond)
	join(t, live.Presence, shared, realtime.Member{ConnID: "l1", User: "u3", Node: "live"}, true)
	live.Presence.renew(ctx)
	if got := due(shared); got != deadline {
		t.Errorf("with a dead node's entry the channel is due at %v, want %v (that entry's expiry)", got, deadline)
	}
}

// TestRenewalInChunks: a node with more channels than one renewal pipeline
// carries renews every one of them, chunk by chunk.
func TestRenewalInChunks(t *testing.T) {
	c := singleClient(t)
	e := newEngine(t, c, Options{PresenceTTL: 3 * time.Second})
	ctx := t.Context()
	n := 2*renewChunk + 10
	chans := make([]string, n)
	for i := range chans {
		chans[i] = fmt.Sprintf("room:chunk%d", i)
		join(t, e.Presence, chans[i], realtime.Member{ConnID: fmt.Sprintf("c%d", i), User: "u1", Node: "n1"}, true)
	}
	before := make([]float64, n)
	for i, ch := range chans {
		before[i] = c.ZScore(ctx, e.Broker.keys.presence(ch)[0], fmt.Sprintf("c%d", i)).Val()
	}
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	e.Presence.renew(ctx)
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("the renewal took %v; its 3 chunks should be spread over half of the 1 s period", took)
	}
	for i, ch := range chans {
		if after := c.ZScore(ctx, e.Broker.keys.presence(ch)[0], fmt.Sprintf("c%d", i)).Val(); after < before[i]+20 {
			t.Fatalf("%s: entry expiry %v after the renewal, was %v: not renewed", ch, after, before[i])
		}
	}
}
