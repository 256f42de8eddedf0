package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/client"
	"github.com/partyline/partyline/realtime/wire"
)

// TestClusterKillDuringBroadcast: 3 nodes, 600 clients spread over them by
// the balancer, 100 channels, 500 publications/s through the server API.
// One node is killed. Its clients reconnect through the balancer to the
// survivors and resume; every client ends with the contiguous sequence of
// each of its channels, and all are live again within 10 s of the kill.
// Presence: the dead node's members leave within 30 s, and a user who
// reconnected at once never flaps offline. The killed node then restarts
// and serves resumes.
func TestClusterKillDuringBroadcast(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the multi-process cluster test in -short mode")
	}
	const (
		nodes, clients, channels, perClient = 3, 600, 100, 2
		rate                                = 500
	)
	env := clusterEnv(t)
	env["PARTYLINE_MAX_CONNS_PER_USER"] = "1000"
	bin := buildBinary(t)
	dir := env["PARTYLINE_DATA_DIR"]
	procs, bases := startNodes(t, bin, env, nodes, "k")
	victim, survivors := procs[0], bases[1:]
	lb := newBalancer(t, false, bases...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	chs := broadcastChannels("kill", channels)
	chansOf := func(i int) []string {
		out := make([]string, perClient)
		for j := range out {
			out[j] = chs[(i+j*channels/perClient)%channels]
		}
		return out
	}
	token := devTokenAt(t, survivors[0], "listener")
	subs := make([]*tracked, clients)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range subs {
		subs[i] = dialTracked(t, ctx, lb.url(), token, "listener")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ch := range chansOf(i) {
				if _, err := subs[i].c.Subscribe(ctx, ch); err != nil {
					errs <- fmt.Errorf("client %d: subscribe %s: %w", i, ch, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Presence: a room with a member who will vanish with the victim
	// (ghost) and one who reconnects to a survivor at once (flapper).
	owner := devTokenAt(t, survivors[0], "owner")
	roomCh := "room:" + createRoom(t, survivors[0], owner, "kill", "public")
	ghost := sdk(t, ctx, victim.base, devTokenAt(t, survivors[0], "ghost"))
	failover := newBalancer(t, true, bases...) // the victim first
	flapper := dialTracked(t, ctx, failover.url(), devTokenAt(t, survivors[0], "flapper"), "flapper")
	for _, c := range []*client.Client{ghost, flapper.c} {
		if _, err := c.Subscribe(ctx, roomCh); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		for range ghost.Messages() {
		}
	}()
	watcher := dialTracked(t, ctx, survivors[1], owner, "owner")
	for _, ch := range []string{roomCh, "status:ghost", "status:flapper"} {
		if _, err := watcher.c.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}

	pub := newPublisher("cluster-test-key", chs, bases...)
	pubCtx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); pub.run(pubCtx, rate, 8) }()
	time.Sleep(3 * time.Second)

	pub.setBases(survivors...)
	lb.set(survivors...)
	failover.set(survivors...)
	killedAt := time.Now()
	victim.kill(t)
	time.Sleep(6 * time.Second)
	stopPub()
	<-pubDone

	awaitDelivery(t, pub, subs, chansOf)
	moved, slowest := 0, time.Duration(0)
	for i, s := range subs {
		s.mu.Lock()
		if s.moved {
			moved++
			if s.liveAt.IsZero() {
				t.Errorf("client %d moved but got nothing after reconnecting", i)
			} else {
				slowest = max(slowest, s.liveAt.Sub(killedAt))
			}
		}
		s.mu.Unlock()
	}
	t.Logf("%d publications acknowledged, %d failed; %d of %d clients moved, the last live again %v after the kill",
		len(pub.okAt), pub.failed, moved, clients, slowest)
	if moved < clients/nodes/2 {
		t.Errorf("only %d clients moved: the balancer did not spread them", moved)
	}
	if slowest > 10*time.Second {
		t.Errorf("the last moved client was live again %v after the kill, over 10 s", slowest)
	}

	// The ghost's entry lived on the dead node: gone within 30 s, with a
	// leave event and, as it was its last connection, the offline status.
	testenv.EventuallyWithin(t, 30*time.Second-time.Since(killedAt)+2*time.Second, "the dead node's member to leave presence", func() bool {
		p, err := watcher.c.Presence(ctx, roomCh)
		if err != nil {
			return false
		}
		for _, m := range p.Members {
			if m.User == "ghost" {
				return false
			}
		}
		return true
	})
	seen := func(match func(wire.Message) bool) bool {
		watcher.mu.Lock()
		defer watcher.mu.Unlock()
		for _, m := range watcher.events {
			if match(m) {
				return true
			}
		}
		return false
	}
	offline := func(user string) func(wire.Message) bool {
		return func(m wire.Message) bool {
			return m.Channel == "status:"+user && bytes.Contains(m.Data, []byte(`"offline"`))
		}
	}
	testenv.EventuallyWithin(t, 40*time.Second, "the ghost's leave event and offline status", func() bool {
		return seen(func(m wire.Message) bool { return m.Event == wire.EventLeave && m.User == "ghost" }) && seen(offline("ghost"))
	})
	// The flapper's dead entry was reaped with the ghost's; being
	// connected to a survivor all along, it never went offline.
	if !flapper.moved {
		t.Error("the flapper was not on the victim")
	}
	p, err := watcher.c.Presence(ctx, roomCh)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(fmt.Sprint(p.Members), "flapper") {
		t.Errorf("the reconnected flapper is missing from presence: %+v", p.Members)
	}
	if seen(offline("flapper")) {
		t.Error("the flapper, who reconnected at once, was published offline")
	}

	// The killed node restarts and serves resumes.
	back := startProc(t, bin, env, "--data-dir", dir, "--node-id", "k0")
	late := sdk(t, ctx, back.base, token)
	ch := chansOf(0)[0]
	pos := subs[0].c.Positions()[ch]
	pos.Offset -= min(pos.Offset, 5)
	sub, err := late.Subscribe(ctx, ch, client.Since(pos))
	if err != nil || !sub.Recovered {
		t.Fatalf("resume on the restarted node = %+v, %v", sub, err)
	}
}

// TestClusterRollingRestart drains and restarts each of 3 nodes in turn
// while publishing continues; clients follow through the balancer, and
// every one ends with contiguous sequences: 0 lost, 0 duplicated.
func TestClusterRollingRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the multi-process cluster test in -short mode")
	}
	const nodes, clients, channels, rate = 3, 150, 30, 200
	env := clusterEnv(t)
	env["PARTYLINE_MAX_CONNS_PER_USER"] = "1000"
	env["PARTYLINE_DRAIN_WINDOW"] = "1s"
	bin := buildBinary(t)
	dir := env["PARTYLINE_DATA_DIR"]
	procs, bases := startNodes(t, bin, env, nodes, "r")
	lb := newBalancer(t, false, bases...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	chs := broadcastChannels("roll", channels)
	chansOf := func(i int) []string { return []string{chs[i%channels]} }
	token := devTokenAt(t, bases[0], "roller")
	subs := make([]*tracked, clients)
	for i := range subs {
		subs[i] = dialTracked(t, ctx, lb.url(), token, "roller")
		if _, err := subs[i].c.Subscribe(ctx, chansOf(i)[0]); err != nil {
			t.Fatal(err)
		}
	}

	pub := newPublisher("cluster-test-key", chs, bases...)
	pubCtx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); pub.run(pubCtx, rate, 4) }()
	time.Sleep(time.Second)

	for i := range procs {
		// A load balancer takes the node out when /readyz fails; the
		// publisher and the balancer stop using it first.
		others := append(append([]string(nil), bases[:i]...), bases[i+1:]...)
		lb.set(others...)
		pub.setBases(others...)
		procs[i].stop(t)
		procs[i] = startProc(t, bin, env, "--data-dir", dir, "--node-id", fmt.Sprintf("r%d", i))
		bases[i] = procs[i].base
		lb.set(bases...)
		pub.setBases(bases...)
		time.Sleep(time.Second)
	}
	time.Sleep(time.Second)
	stopPub()
	<-pubDone

	awaitDelivery(t, pub, subs, chansOf)
	moved := 0
	for _, s := range subs {
		s.mu.Lock()
		if s.moved {
			moved++
		}
		s.mu.Unlock()
	}
	t.Logf("%d publications acknowledged, %d failed; %d of %d clients moved at least once", len(pub.okAt), pub.failed, moved, clients)
	if moved < clients/2 {
		t.Errorf("only %d of %d clients moved during the rolling restart", moved, clients)
	}
}
