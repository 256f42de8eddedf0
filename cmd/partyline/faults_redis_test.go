package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// redisServer is a test-owned redis-server without persistence.
type redisServer struct {
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func startRedis(t *testing.T, port int) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("the Redis restart test needs redis-server on PATH: %v", err)
	}
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--logfile", "")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &redisServer{port: port, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(r.done) }()
	t.Cleanup(r.kill)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d did not start", port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *redisServer) kill() {
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// TestClusterRedisRestart restarts the cluster's Redis (test-owned, no
// persistence) while publishing goes on. Every client either recovers
// without a gap or is told recovered:false; none sees a silent gap.
// Publishing works again within 5 s of Redis returning, and the room's
// chat history in the store is intact.
func TestClusterRedisRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the multi-process cluster test in -short mode")
	}
	const clients, channels, rate = 60, 10, 100
	rs := startRedis(t, 0)
	env := clusterEnv(t)
	env["PARTYLINE_REDIS_URL"] = fmt.Sprintf("redis://127.0.0.1:%d/0", rs.port)
	env["PARTYLINE_MAX_CONNS_PER_USER"] = "1000"
	env["PARTYLINE_PUBLISH_RATE"] = "1000"
	bin := buildBinary(t)
	dir := env["PARTYLINE_DATA_DIR"]
	a := startProc(t, bin, env, "--data-dir", dir, "--node-id", "ra")
	b := startProc(t, bin, env, "--data-dir", dir, "--node-id", "rb")
	lb := newBalancer(t, false, a.base, b.base)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	owner := devTokenAt(t, a.base, "owner")
	roomID := createRoom(t, a.base, owner, "redis-restart", "public")
	roomCh := "room:" + roomID

	chs := make([]string, channels)
	for i := range chs {
		chs[i] = fmt.Sprintf("broadcast:redis-%d", i)
	}
	chansOf := func(i int) []string { return []string{chs[i%channels], roomCh} }
	token := devTokenAt(t, a.base, "member")
	subs := make([]*tracked, clients)
	for i := range subs {
		subs[i] = dialTracked(t, ctx, lb.url(), token, "member")
		for _, ch := range chansOf(i) {
			if _, err := subs[i].c.Subscribe(ctx, ch); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Chat goes through the owner's connection on node b: stored, then
	// fanned out. Every acknowledged message must be in the history.
	chat := sdk(t, ctx, b.base, owner)
	go func() {
		for range chat.Messages() {
		}
	}()
	var (
		chatMu    sync.Mutex
		chatAcked []string
	)
	chatDone := make(chan struct{})
	pub := newPublisher("cluster-test-key", chs, a.base, b.base)
	pubCtx, stopPub := context.WithCancel(ctx)
	go func() {
		defer close(chatDone)
		for i := 0; pubCtx.Err() == nil; i++ {
			id, _, err := chat.Publish(pubCtx, roomCh, map[string]int{"i": i}, fmt.Sprintf("chat-%d", i))
			if err == nil {
				chatMu.Lock()
				chatAcked = append(chatAcked, id)
				chatMu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); pub.run(pubCtx, rate, 4) }()
	time.Sleep(2 * time.Second)

	rs.kill()
	time.Sleep(time.Second)
	startRedis(t, rs.port) // stopped when the test ends
	backAt := time.Now()
	time.Sleep(6 * time.Second)
	stopPub()
	<-pubDone
	<-chatDone

	// Publishing works again within 5 s of Redis returning.
	pub.mu.Lock()
	var firstOK time.Time
	for _, at := range pub.okAt {
		if at.After(backAt) && (firstOK.IsZero() || at.Before(firstOK)) {
			firstOK = at
		}
	}
	acked, failed := len(pub.okAt), pub.failed
	pub.mu.Unlock()
	t.Logf("%d publications acknowledged, %d failed; the first after Redis returned came %v later", acked, failed, firstOK.Sub(backAt))
	if firstOK.IsZero() || firstOK.Sub(backAt) > 5*time.Second {
		t.Errorf("publishing did not work again within 5 s of Redis returning (first success: %v)", firstOK)
	}

	// No silent gap: each client's sequence per channel is contiguous
	// within an epoch, an epoch change comes only after a recovered:false
	// notice for that channel, and everything acknowledged after Redis
	// returned arrives.
	deadline := time.Now().Add(30 * time.Second)
	for _, ch := range chs {
		pub.mu.Lock()
		want := pub.acked[ch]
		pub.mu.Unlock()
		for i, s := range subs {
			if chansOf(i)[0] != ch {
				continue
			}
			for s.last(ch) < want && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	recovered, told := 0, 0
	for i, s := range subs {
		for _, ch := range chansOf(i) {
			notices, err := s.checkNoSilentGap(ch)
			if err != nil {
				t.Error(err)
			}
			if notices > 0 {
				told++
			} else {
				recovered++
			}
		}
		ch := chansOf(i)[0]
		pub.mu.Lock()
		want := pub.acked[ch]
		pub.mu.Unlock()
		if s.last(ch) < want {
			t.Errorf("%s: last offset on %s is %d, but %d was acknowledged", s.user, ch, s.last(ch), want)
		}
	}
	t.Logf("subscriptions: %d resumed with no notice, %d told recovered:false", recovered, told)

	chatMu.Lock()
	defer chatMu.Unlock()
	if len(chatAcked) < 20 {
		t.Fatalf("only %d chat messages were acknowledged", len(chatAcked))
	}
	stored := historyIDs(t, a.base, owner, roomID)
	for _, id := range chatAcked {
		if !stored[id] {
			t.Errorf("acknowledged chat message %s is missing from the history", id)
		}
	}
}
