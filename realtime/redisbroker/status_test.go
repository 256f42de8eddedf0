package redisbroker

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/client"
	"github.com/partyline/partyline/realtime/wire"
)

// These tests check the offline status and the departures of dead nodes
// end to end: gateway nodes on one Redis, a watcher on one node, and the
// user's last connection on another node that drains or dies.

// The short timings of the status tests.
const (
	statusOfflineDelay = time.Second
	statusReapInterval = 100 * time.Millisecond
	// statusSlack is what a bound on the arrival of a status or event
	// allows for scripts, publication and WebSocket delivery on a busy
	// test machine.
	statusSlack = time.Second
)

// openRooms lets anyone subscribe to room: channels, so that the tests
// see join and leave events.
type openRooms struct{}

func (openRooms) Namespaces() []realtime.Namespace {
	return []realtime.Namespace{{Name: wire.NSRoom}}
}

func (openRooms) Authorize(context.Context, *realtime.Session, string, realtime.Action) error {
	return nil
}

func (openRooms) Requests() map[string]realtime.RequestHandler { return nil }

// startStatusNode starts a node like startGatewayNode does, with the
// status timings, entries living ttl (zero means the default), and rooms
// open to all.
func startStatusNode(t *testing.T, c goredis.UniversalClient, prefix, id string, ttl time.Duration) *gwNode {
	t.Helper()
	return startNodeWith(t, c, Options{Prefix: prefix, NodeID: id, PresenceTTL: ttl}, func(o *realtime.Options) {
		o.OfflineDelay = statusOfflineDelay
		o.ReapInterval = statusReapInterval
		o.DrainWindow = 10 * time.Millisecond
	}, openRooms{})
}

// statusOf returns the status a status msg carries, or "".
func statusOf(m wire.Message) string {
	if m.Type != wire.TypeMsg || m.Kind != wire.KindStatus {
		return ""
	}
	var st realtime.Status
	if err := json.Unmarshal(m.Data, &st); err != nil {
		return ""
	}
	return st.Status
}

// waitMatch waits until a message of ch matches, and returns when it
// noticed.
func (g *gwClient) waitMatch(ch, what string, match func(wire.Message) bool) time.Time {
	g.t.Helper()
	g.waitOn(ch, what, match)
	return time.Now()
}

// waitStatus waits for a status msg of st on ch.
func (g *gwClient) waitStatus(ch, st string) time.Time {
	g.t.Helper()
	return g.waitMatch(ch, "status "+st, func(m wire.Message) bool { return statusOf(m) == st })
}

// settle publishes a marker on ch through n and returns every message of
// ch that g received before it. A stream delivers in offset order, so
// whatever was published on ch before the marker is in the result.
func (g *gwClient) settle(n *gwNode, ch string) []wire.Message {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s, err := publishVia(ctx, n, ch, `{"marker":true}`)
	if err != nil {
		g.t.Fatalf("publish a marker on %s: %v", ch, err)
	}
	isMarker := func(m wire.Message) bool { return m.Type == wire.TypeMsg && m.Offset == s.pos.Offset }
	g.waitMatch(ch, "the marker", isMarker)
	g.mu.Lock()
	got := g.onLocked(ch)
	g.mu.Unlock()
	return got[:slices.IndexFunc(got, isMarker)]
}

// expectStatuses checks that the status msgs g received on ch, up to a
// marker published now, are want, in order.
func (g *gwClient) expectStatuses(n *gwNode, ch string, want []string) {
	g.t.Helper()
	var got []string
	for _, m := range g.settle(n, ch) {
		if st := statusOf(m); st != "" {
			got = append(got, st)
		}
	}
	if !slices.Equal(got, want) {
		g.t.Fatalf("%s: statuses on %s = %q, want %q", g.name, ch, got, want)
	}
}

// hasOfflineRecord reports whether user has a pending offline record.
func hasOfflineRecord(t *testing.T, c goredis.UniversalClient, n *gwNode, user string) bool {
	t.Helper()
	err := c.ZScore(t.Context(), n.engine.Presence.keys.offlineDue(), user).Err()
	if errors.Is(err, goredis.Nil) {
		return false
	}
	if err != nil {
		t.Fatalf("ZSCORE of %s's offline record: %v", user, err)
	}
	return true
}

// onlineOnA starts nodes A and B on c and connects a fresh user (named
// from prefix) to A; a watcher on B has seen the user's online status.
func onlineOnA(t *testing.T, c goredis.UniversalClient, prefix string) (a, b *gwNode, user string, watcher *gwClient) {
	t.Helper()
	keys := testenv.KeyPrefix()
	a = startStatusNode(t, c, keys, "st-a-"+newEpoch(), 0)
	b = startStatusNode(t, c, keys, "st-b-"+newEpoch(), 0)
	user = prefix + newEpoch()
	ch := "status:" + user
	watcher = dialGateway(t, b, "u_watch")
	watcher.subscribe(ch, nil)
	dialGateway(t, a, user)
	watcher.waitStatus(ch, wire.StatusOnline)
	return a, b, user, watcher
}

// TestGatewayOfflineAfterDrain: a user's only connection is on node A,
// which drains and exits. Stopping A ends its local offline timer, but
// the record it left in Redis is claimed by B, whose watcher gets offline
// once, OfflineDelay after the connection ended and at most a reap
// interval later.
func TestGatewayOfflineAfterDrain(t *testing.T) {
	c := singleClient(t)
	a, b, user, watcher := onlineOnA(t, c, "u_drained_")
	ch := "status:" + user

	drained := time.Now()
	a.stop()
	stopped := time.Now()
	if !hasOfflineRecord(t, c, b, user) {
		t.Fatalf("the offline record was claimed before A stopped (%v after the drain began; OfflineDelay %v): this test needs A gone first",
			stopped.Sub(drained), statusOfflineDelay)
	}
	at := watcher.waitStatus(ch, wire.StatusOffline)
	t.Logf("A stopped %v after the drain began; offline came %v after the drain began (OfflineDelay %v, reap interval %v)",
		stopped.Sub(drained).Round(time.Millisecond), at.Sub(drained).Round(time.Millisecond), statusOfflineDelay, statusReapInterval)
	if early := at.Sub(drained); early < statusOfflineDelay {
		t.Errorf("offline came %v after the drain began, before OfflineDelay %v", early, statusOfflineDelay)
	}
	if late, bound := at.Sub(stopped), statusOfflineDelay+statusReapInterval+statusSlack; late > bound {
		t.Errorf("offline came %v after A stopped, later than %v", late, bound)
	}
	watcher.expectStatuses(b, ch, []string{wire.StatusOnline, wire.StatusOffline})
	if st, ok, err := b.engine.Presence.GetStatus(t.Context(), user); err != nil || !ok || st.Status != wire.StatusOffline {
		t.Fatalf("stored status = %+v, %v, %v; want offline", st, ok, err)
	}
}

// TestGatewayReconnectAfterDrain: the user of a drained node reconnects to
// another node within OfflineDelay, so the record the drained node left
// is claimed without an offline status. When the user later leaves for
// good, offline goes out once.
func TestGatewayReconnectAfterDrain(t *testing.T) {
	c := singleClient(t)
	a, b, user, watcher := onlineOnA(t, c, "u_moved_")
	ch := "status:" + user

	drained := time.Now()
	a.stop()
	back := dialGateway(t, b, user)
	if took := time.Since(drained); took >= statusOfflineDelay {
		t.Fatalf("the drain and the reconnect took %v, not within OfflineDelay %v", took, statusOfflineDelay)
	}
	testenv.Eventually(t, "the drained node's offline record to be claimed", func() bool {
		return !hasOfflineRecord(t, c, b, user)
	})
	watcher.expectStatuses(b, ch, []string{wire.StatusOnline})

	left := time.Now()
	back.close()
	at := watcher.waitStatus(ch, wire.StatusOffline)
	if early := at.Sub(left); early < statusOfflineDelay {
		t.Errorf("offline came %v after the user left, before OfflineDelay %v", early, statusOfflineDelay)
	}
	watcher.expectStatuses(b, ch, []string{wire.StatusOnline, wire.StatusOffline})
}

// TestGatewayDeadNodeDepartures: node A dies (its Presence stops renewing,
// nothing is left explicitly) holding a user's only connection, which was
// in a room. Just before A's entry expires, another node joins the room,
// which used to postpone the reaping by about one TTL. The watcher on B
// gets the leave event and the offline status within a reap interval of
// the entry's expiry, so within PresenceTTL plus a reap interval of the
// death, each once, and the member is gone from B's view.
func TestGatewayDeadNodeDepartures(t *testing.T) {
	const ttl = 3 * time.Second
	c := singleClient(t)
	prefix := testenv.KeyPrefix()
	b := startStatusNode(t, c, prefix, "st-b-"+newEpoch(), ttl)
	deadID := "st-dead-" + newEpoch()
	dead := newEngine(t, c, Options{Prefix: prefix, NodeID: deadID, PresenceTTL: ttl}).Presence
	other := newEngine(t, c, Options{Prefix: prefix, NodeID: "st-other-" + newEpoch(), PresenceTTL: ttl}).Presence
	stopDead := runPresence(t, dead)
	runPresence(t, other)

	user := "u_dead_" + newEpoch()
	room := "room:r_" + newEpoch()
	status := "status:" + user
	watcher := dialGateway(t, b, "u_watch")
	watcher.subscribe(room, nil)
	watcher.subscribe(status, nil)
	// What a Node does for a connection: its user's online presence (the
	// key realtime.onlineKey names), the room, and the status.
	m := realtime.Member{ConnID: "dead-1", User: user, Node: deadID}
	join(t, dead, "online/"+user, m, true)
	join(t, dead, room, m, true)
	if err := dead.SetStatus(t.Context(), user, realtime.Status{Status: wire.StatusOnline, TS: time.Now().UnixMilli()}); err != nil {
		t.Fatalf("SetStatus: %v", err)
	}

	stopDead()
	died := time.Now()
	ms, err := c.ZScore(t.Context(), dead.keys.presence(room)[0], m.ConnID).Result()
	if err != nil {
		t.Fatalf("the dead entry's expiry: %v", err)
	}
	expiry := time.UnixMilli(int64(ms))
	// The time is the subject: a join half a second before the expiry.
	time.Sleep(time.Until(expiry.Add(-500 * time.Millisecond)))
	join(t, other, room, realtime.Member{ConnID: "other-1", User: "u_other", Node: "other"}, true)

	isLeave := func(m wire.Message) bool {
		return m.Type == wire.TypeEvent && m.Event == wire.EventLeave && m.User == user
	}
	leaveAt := watcher.waitMatch(room, "the leave event", isLeave)
	offAt := watcher.waitStatus(status, wire.StatusOffline)
	t.Logf("entry expired %v after the death (TTL %v); leave came %v and offline %v after the expiry (reap interval %v)",
		expiry.Sub(died).Round(time.Millisecond), ttl, leaveAt.Sub(expiry).Round(time.Millisecond),
		offAt.Sub(expiry).Round(time.Millisecond), statusReapInterval)
	for what, at := range map[string]time.Time{"leave": leaveAt, "offline": offAt} {
		if late, bound := at.Sub(expiry), statusReapInterval+statusSlack; late > bound {
			t.Errorf("%s came %v after the entry expired, later than %v", what, late, bound)
		}
		if late, bound := at.Sub(died), ttl+statusReapInterval+statusSlack; late > bound {
			t.Errorf("%s came %v after the node died, later than %v", what, late, bound)
		}
	}

	watcher.expectStatuses(b, status, []string{wire.StatusOffline})
	leaves := 0
	for _, m := range watcher.settle(b, room) {
		if isLeave(m) {
			leaves++
		}
	}
	if leaves != 1 {
		t.Errorf("%d leave events for %s, want 1", leaves, user)
	}
	for _, ch := range []string{room, "online/" + user} {
		got, err := b.engine.Presence.Members(t.Context(), ch)
		if err != nil {
			t.Fatalf("Members(%s): %v", ch, err)
		}
		if slices.ContainsFunc(got, func(x realtime.Member) bool { return x.ConnID == m.ConnID }) {
			t.Errorf("Members(%s) = %+v, still with the dead node's entry", ch, got)
		}
	}
}

// TestGatewayConnsPerUserAcrossNodes: the per-user connection cap counts
// a user's connections on every node of the Redis, not only the node a
// new one reaches. Over it, hello is refused with limit_exceeded (the
// socket closes with 1013); once one closes, there is room again.
func TestGatewayConnsPerUserAcrossNodes(t *testing.T) {
	c := singleClient(t)
	prefix := testenv.KeyPrefix()
	capped := func(o *realtime.Options) { o.MaxConnsPerUser = 2 }
	a := startNodeWith(t, c, Options{Prefix: prefix, NodeID: "na"}, capped)
	b := startNodeWith(t, c, Options{Prefix: prefix, NodeID: "nb"}, capped)
	first := dialGateway(t, a, "u_cap")
	dialGateway(t, b, "u_cap")
	dialGateway(t, b, "u_other") // another user is not counted

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	over, err := client.Dial(ctx, client.Options{
		URL:              a.url,
		Token:            func(context.Context) (string, error) { return "u_cap", nil },
		DisableReconnect: true,
		RequestTimeout:   waitFor,
	})
	if err == nil {
		_ = over.Close()
		t.Fatal("a third connection of a user capped at 2 (one on each node) was accepted")
	}
	if code := client.ErrorCode(err); code != wire.CodeLimitExceeded {
		t.Errorf("third connection: %v (code %q), want %s", err, code, wire.CodeLimitExceeded)
	}

	first.close()
	testenv.Eventually(t, "room for a connection once one closed", func() bool {
		cl, err := client.Dial(ctx, client.Options{
			URL:              a.url,
			Token:            func(context.Context) (string, error) { return "u_cap", nil },
			DisableReconnect: true,
			RequestTimeout:   waitFor,
		})
		if err != nil {
			return false
		}
		t.Cleanup(func() { _ = cl.Close() })
		return true
	})
}
