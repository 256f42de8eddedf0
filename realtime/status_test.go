package realtime

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/wire"
)

// The offline status with nodes that share one MemoryPresence, as a
// cluster shares its Redis: each node has its own memory broker, so a
// watcher sees only what its own node publishes.

// The short timings of the status tests.
const (
	memOfflineDelay = 300 * time.Millisecond
	memReapInterval = 50 * time.Millisecond
)

// stoppableNode is a running Node on a given Presence that a test can stop
// before it ends.
type stoppableNode struct {
	*Node
	url string // ws://.../v1/ws
	// stop drains the node and ends its Run, as a process that exits after
	// a drain. It is also the test's cleanup.
	stop func()
}

func startSharedNode(t *testing.T, p Presence, id string) *stoppableNode {
	t.Helper()
	n, err := New(Options{
		NodeID:            id,
		Presence:          p,
		Auth:              testAuth{},
		OfflineDelay:      memOfflineDelay,
		ReapInterval:      memReapInterval,
		DrainWindow:       10 * time.Millisecond,
		PublishRate:       100,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		DisableWSFastPath: !testenv.FastPaths(),
	})
	if err != nil {
		t.Fatal(err)
	}
	stopRun := testenv.Go(t, "node "+id+": Run", n.Run)
	testenv.Eventually(t, "node running", func() bool { return n.running.Load() })
	mux := http.NewServeMux()
	mux.Handle("/v1/ws", n)
	srv := httptest.NewServer(mux)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := n.Drain(dctx); err != nil {
				t.Errorf("node %s: Drain: %v", id, err)
			}
			dcancel()
			srv.Close()
			stopRun()
		})
	}
	t.Cleanup(stop)
	return &stoppableNode{Node: n, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/ws", stop: stop}
}

// hasOfflineRecord reports whether user has an offline record in p.
func hasOfflineRecord(p *MemoryPresence, user string) bool {
	sh := p.shard(user)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	_, ok := sh.offline[user]
	return ok
}

// statusesUntilMarker publishes a marker on ch through n, waits for it,
// and returns the statuses c received on ch before it, in order.
func statusesUntilMarker(t *testing.T, n *Node, c *wsClient, ch string) []string {
	t.Helper()
	pos, err := n.Publish(t.Context(), ch, newMsgID(), "notice", "", json.RawMessage(`{"marker":true}`))
	if err != nil {
		t.Fatalf("publish a marker on %s: %v", ch, err)
	}
	c.waitNote("the marker", func(m wire.Message) bool { return m.Channel == ch && m.Offset == pos.Offset })
	var got []string
	for _, m := range c.msgs(ch) {
		if m.Offset == pos.Offset {
			break
		}
		if m.Kind == wire.KindStatus {
			var st Status
			if err := json.Unmarshal(m.Data, &st); err != nil {
				t.Fatalf("status msg %s: %v", m.Raw, err)
			}
			got = append(got, st.Status)
		}
	}
	return got
}

func isOffline(ch string) func(wire.Message) bool {
	return func(m wire.Message) bool {
		return m.Channel == ch && m.Kind == wire.KindStatus && bytes.Contains(m.Data, []byte(`"offline"`))
	}
}

// onlineOnA starts nodes mem-a and mem-b on one MemoryPresence, subscribes
// a watcher on B to user's status channel ch, and connects user to A; it
// returns once user is online.
func onlineOnA(t *testing.T, user string) (p *MemoryPresence, a, b *stoppableNode, ch string, watcher *wsClient) {
	t.Helper()
	p = NewMemoryPresence()
	a = startSharedNode(t, p, "mem-a")
	b = startSharedNode(t, p, "mem-b")
	ch = wire.NSStatus + ":" + user
	watcher = connect(t, b.url, "u_w")
	watcher.ok(map[string]any{"type": "sub", "channel": ch})
	connect(t, a.url, user)
	testenv.Eventually(t, "the user online", func() bool {
		st, ok, _ := p.GetStatus(t.Context(), user)
		return ok && st.Status == wire.StatusOnline
	})
	return p, a, b, ch, watcher
}

// TestOfflineAfterNodeStops: the user's only connection is on node A,
// which drains and stops. Its local timer goes with it, but the record
// stays in the shared Presence, and node B's presence loop claims it and
// publishes offline, once.
func TestOfflineAfterNodeStops(t *testing.T) {
	user := "u_mem_gone"
	p, a, b, ch, watcher := onlineOnA(t, user)

	drained := time.Now()
	a.stop()
	if !hasOfflineRecord(p, user) {
		t.Fatalf("no offline record once A stopped (%v after the drain began; OfflineDelay %v)", time.Since(drained), memOfflineDelay)
	}
	watcher.waitNote("offline", isOffline(ch))
	if early := time.Since(drained); early < memOfflineDelay {
		t.Errorf("offline came %v after the drain began, before OfflineDelay %v", early, memOfflineDelay)
	}
	if got, want := statusesUntilMarker(t, b.Node, watcher, ch), []string{wire.StatusOffline}; !slices.Equal(got, want) {
		t.Fatalf("statuses on %s = %q, want %q", ch, got, want)
	}
}

// TestOfflineReconnectToOtherNode: the user of a stopped node comes back
// on another node within OfflineDelay, so its record is claimed without
// an offline; leaving for good then gives one offline.
func TestOfflineReconnectToOtherNode(t *testing.T) {
	user := "u_mem_moved"
	p, a, b, ch, watcher := onlineOnA(t, user)

	drained := time.Now()
	a.stop()
	back := connect(t, b.url, user)
	if took := time.Since(drained); took >= memOfflineDelay {
		t.Fatalf("the drain and the reconnect took %v, not within OfflineDelay %v", took, memOfflineDelay)
	}
	testenv.Eventually(t, "the stopped node's record to be claimed", func() bool { return !hasOfflineRecord(p, user) })
	if got := statusesUntilMarker(t, b.Node, watcher, ch); len(got) != 0 {
		t.Fatalf("statuses on %s = %q after a reconnect within OfflineDelay, want none", ch, got)
	}

	back.ws.CloseNow()
	watcher.waitNote("offline", isOffline(ch))
	if got, want := statusesUntilMarker(t, b.Node, watcher, ch), []string{wire.StatusOffline}; !slices.Equal(got, want) {
		t.Fatalf("statuses on %s = %q, want %q", ch, got, want)
	}
}

// TestOfflineRecordOutlivesNode: a single node stops while a user's
// offline is pending. Run returns at once, the stopped node publishes
// nothing, and the record stays for whoever shares the Presence.
func TestOfflineRecordOutlivesNode(t *testing.T) {
	p := NewMemoryPresence()
	n := startSharedNode(t, p, "mem-solo")
	user := "u_mem_solo"
	c := connect(t, n.url, user)
	c.ws.CloseNow()
	testenv.Eventually(t, "the offline record", func() bool { return hasOfflineRecord(p, user) })
	n.stop()
	if st, _, _ := p.GetStatus(t.Context(), user); st.Status != wire.StatusOnline {
		t.Fatalf("status after the node stopped = %+v, want online until someone claims the record", st)
	}
	var got []string
	testenv.Eventually(t, "the record to be due", func() bool {
		users, err := p.ClaimDueOffline(t.Context())
		if err != nil {
			t.Fatalf("ClaimDueOffline: %v", err)
		}
		got = append(got, users...)
		return len(got) > 0
	})
	if want := []string{user}; !slices.Equal(got, want) {
		t.Fatalf("ClaimDueOffline = %q, want %q", got, want)
	}
}

// slowPresence is a MemoryPresence whose Members call for one user stalls
// past the caller's deadline, and whose ScheduleOffline honours ctx, as a
// Redis call does.
type slowPresence struct {
	*MemoryPresence
	slowUser string
}

func (p *slowPresence) Members(ctx context.Context, ch string) ([]Member, error) {
	if ch == onlineKey(p.slowUser) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
			return nil, context.DeadlineExceeded
		}
	}
	return p.MemoryPresence.Members(ctx, ch)
}

func (p *slowPresence) ScheduleOffline(ctx context.Context, user string, after time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return p.MemoryPresence.ScheduleOffline(ctx, user, after)
}

// TestOfflineClaimOutlivesTheRoundsDeadline: a claimed offline whose
// announcement fails is recorded again even when the round's deadline has
// passed meanwhile, so the record is not lost with the claim.
func TestOfflineClaimOutlivesTheRoundsDeadline(t *testing.T) {
	p := &slowPresence{MemoryPresence: NewMemoryPresence(), slowUser: "u_slow"}
	n := startSharedNode(t, p, "n1")
	round, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	n.offlineClaimed(round, "u_slow")
	if round.Err() == nil {
		t.Fatal("the round's deadline should have passed during the announcement")
	}
	if !hasOfflineRecord(p.MemoryPresence, "u_slow") {
		t.Error("the failed announcement lost the offline record")
	}
}

// renewingPresence is a MemoryPresence that reports entries as put back
// by a renewal, as the Redis one does.
type renewingPresence struct {
	*MemoryPresence
	mu   sync.Mutex
	back []Departure
}

func (p *renewingPresence) Rejoined() []Departure {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.back
	p.back = nil
	return out
}

// TestRejoinedUserIsOnlineAgain: a user whose online entry a renewal had
// to put back, after they were announced offline meanwhile, is turned
// online again.
func TestRejoinedUserIsOnlineAgain(t *testing.T) {
	p := &renewingPresence{MemoryPresence: NewMemoryPresence()}
	ctx := t.Context()
	if err := p.SetStatus(ctx, "u_back", Status{Status: wire.StatusOffline, TS: 1}); err != nil {
		t.Fatal(err)
	}
	startSharedNode(t, p, "n1")
	p.mu.Lock()
	p.back = append(p.back, Departure{Channel: onlineKey("u_back"), User: "u_back"})
	p.mu.Unlock()
	testenv.Eventually(t, "the rejoined user to be online", func() bool {
		st, ok, err := p.GetStatus(ctx, "u_back")
		return err == nil && ok && st.Status == wire.StatusOnline
	})
}
