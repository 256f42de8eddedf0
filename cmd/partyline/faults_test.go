package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/partyline/partyline/realtime/client"
	"github.com/partyline/partyline/realtime/wire"
)

// The fault tests run real partyline processes behind a TCP load balancer
// of their own, with clients of the Go SDK that reconnect through it, as a
// deployment would. They check the cluster's delivery invariant: every
// client ends with a contiguous offset sequence per channel, with nothing
// lost, duplicated or reordered, unless it was told recovered:false.

// buildBinary builds partyline from this tree into a temp dir.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "partyline")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// balancer is a TCP load balancer for the tests. Each accepted connection
// goes to the next backend in turn (or, with failover, to the first one in
// the list) that accepts a dial; a backend that refuses is skipped.
type balancer struct {
	ln       net.Listener
	failover bool

	mu       sync.Mutex
	backends []string // host:port
	next     int
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

func newBalancer(t *testing.T, failover bool, bases ...string) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{ln: ln, failover: failover, conns: map[net.Conn]struct{}{}}
	b.set(bases...)
	b.wg.Add(1)
	go b.serve()
	t.Cleanup(b.close)
	return b
}

func (b *balancer) url() string { return "http://" + b.ln.Addr().String() }

// set replaces the backends, given as base URLs.
func (b *balancer) set(bases ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = b.backends[:0]
	for _, s := range bases {
		b.backends = append(b.backends, strings.TrimPrefix(s, "http://"))
	}
}

func (b *balancer) serve() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		if !b.track(c) {
			c.Close()
			return
		}
		b.wg.Add(1)
		go b.proxy(c)
	}
}

// track records c so that close can end it; false once closed.
func (b *balancer) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns == nil {
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *balancer) untrack(c net.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.conns, c)
}

func (b *balancer) proxy(front net.Conn) {
	defer b.wg.Done()
	defer b.untrack(front)
	defer front.Close()
	b.mu.Lock()
	list := append([]string(nil), b.backends...)
	start := 0
	if !b.failover && len(list) > 0 {
		start = b.next % len(list)
		b.next++
	}
	b.mu.Unlock()
	var back net.Conn
	for i := range list {
		c, err := net.DialTimeout("tcp", list[(start+i)%len(list)], time.Second)
		if err == nil {
			back = c
			break
		}
	}
	if back == nil || !b.track(back) {
		if back != nil {
			back.Close()
		}
		return
	}
	defer b.untrack(back)
	defer back.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(back, front); back.Close(); done <- struct{}{} }()
	go func() { _, _ = io.Copy(front, back); front.Close(); done <- struct{}{} }()
	<-done
	<-done
}

func (b *balancer) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.conns = nil
	b.mu.Unlock()
	b.wg.Wait()
}

// tracked is an SDK client that records what arrives on each channel.
type tracked struct {
	user string
	c    *client.Client
	done chan struct{}

	mu          sync.Mutex
	seqs        map[string][]wire.Position // per channel, in arrival order
	lostRecover map[string]int             // recovery_failed or gap notices per channel
	moved       bool                       // disconnected after the fault
	liveAt      time.Time                  // first publication after reconnecting
	events      []wire.Message             // every non-publication message
}

func dialTracked(t *testing.T, ctx context.Context, base, token, user string) *tracked {
	t.Helper()
	c, err := client.Dial(ctx, client.Options{URL: base, MessageBuffer: 256,
		BackoffBase: 50 * time.Millisecond, BackoffCap: 500 * time.Millisecond,
		Token: func(context.Context) (string, error) { return token, nil }})
	if err != nil {
		t.Fatalf("dial %s as %s: %v", base, user, err)
	}
	tr := &tracked{user: user, c: c, done: make(chan struct{}), seqs: map[string][]wire.Position{}, lostRecover: map[string]int{}}
	go tr.read()
	t.Cleanup(func() {
		c.Close()
		<-tr.done
	})
	return tr
}

func (tr *tracked) read() {
	defer close(tr.done)
	reconnected := false
	for m := range tr.c.Messages() {
		tr.mu.Lock()
		switch {
		case m.Type == wire.TypeMsg:
			tr.seqs[m.Channel] = append(tr.seqs[m.Channel], wire.Position{Epoch: m.Epoch, Offset: m.Offset})
			if reconnected && tr.liveAt.IsZero() {
				tr.liveAt = time.Now()
			}
			if !strings.HasPrefix(m.Channel, "broadcast:") {
				tr.events = append(tr.events, m)
			}
		case client.NeedsReload(m):
			tr.lostRecover[m.Channel]++
			tr.events = append(tr.events, m)
		case m.Type == client.TypeDisconnected:
			tr.moved = true
			tr.events = append(tr.events, m)
		case m.Type == client.TypeReconnected:
			reconnected = true
			tr.events = append(tr.events, m)
		default:
			tr.events = append(tr.events, m)
		}
		tr.mu.Unlock()
	}
}

// last is the last offset tr has on ch.
func (tr *tracked) last(ch string) uint64 {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s := tr.seqs[ch]
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1].Offset
}

// checkContiguous reports a gap, duplicate or reorder in tr's sequence on
// ch, which must be exactly 1..want in one epoch.
func (tr *tracked) checkContiguous(ch string, want uint64) error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s := tr.seqs[ch]
	if n := tr.lostRecover[ch]; n > 0 {
		return fmt.Errorf("%s on %s: %d recovered:false or gap notices", tr.user, ch, n)
	}
	for i, p := range s {
		if p.Offset != uint64(i+1) {
			return fmt.Errorf("%s on %s: publication %d has offset %d (a gap, a duplicate or a reorder)", tr.user, ch, i, p.Offset)
		}
		if p.Epoch != s[0].Epoch {
			return fmt.Errorf("%s on %s: epoch changed from %s to %s with no notice", tr.user, ch, s[0].Epoch, p.Epoch)
		}
	}
	if uint64(len(s)) != want {
		return fmt.Errorf("%s on %s: got offsets 1..%d, want 1..%d", tr.user, ch, len(s), want)
	}
	return nil
}

// publisher publishes through the server API of the live nodes at a total
// rate, and records the highest acknowledged offset per channel.
type publisher struct {
	key      string
	channels []string
	client   *http.Client

	mu     sync.Mutex
	bases  []string
	acked  map[string]uint64
	okAt   []time.Time // when each acknowledged publish returned
	failed int
}

func newPublisher(key string, channels []string, bases ...string) *publisher {
	return &publisher{key: key, channels: channels, bases: bases, acked: map[string]uint64{},
		client: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
}

func (p *publisher) setBases(bases ...string) {
	p.mu.Lock()
	p.bases = bases
	p.mu.Unlock()
}

// run publishes rate publications per second with workers goroutines
// until ctx ends.
func (p *publisher) run(ctx context.Context, rate, workers int) {
	var wg sync.WaitGroup
	every := time.Duration(workers) * time.Second / time.Duration(rate)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				p.publishOne(ctx, w, i)
			}
		}()
	}
	wg.Wait()
	p.client.CloseIdleConnections()
}

func (p *publisher) publishOne(ctx context.Context, w, i int) {
	p.mu.Lock()
	bases := p.bases
	p.mu.Unlock()
	ch := p.channels[rand.IntN(len(p.channels))]
	body, _ := json.Marshal(map[string]any{"channel": ch, "kind": "tick", "data": map[string]any{"w": w, "i": i}})
	req, _ := http.NewRequestWithContext(ctx, "POST", bases[rand.IntN(len(bases))]+"/v1/server/publish", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+p.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		p.mu.Lock()
		p.failed++
		p.mu.Unlock()
		return
	}
	defer resp.Body.Close()
	var out struct{ Offset uint64 }
	err = json.NewDecoder(resp.Body).Decode(&out)
	p.mu.Lock()
	defer p.mu.Unlock()
	if resp.StatusCode != 200 || err != nil {
		p.failed++
		return
	}
	p.acked[ch] = max(p.acked[ch], out.Offset)
	p.okAt = append(p.okAt, time.Now())
}

// expectLast returns, per channel, the offset every subscriber must reach:
// the highest acknowledged one, or a higher one some subscriber got (a
// publish whose reply was lost when its node died).
func expectLast(p *publisher, clients []*tracked) map[string]uint64 {
	p.mu.Lock()
	want := map[string]uint64{}
	for ch, off := range p.acked {
		want[ch] = off
	}
	p.mu.Unlock()
	for _, c := range clients {
		for _, ch := range p.channels {
			want[ch] = max(want[ch], c.last(ch))
		}
	}
	return want
}

// awaitDelivery waits until each client has the expected last offset on
// each of its channels, then checks every sequence.
func awaitDelivery(t *testing.T, p *publisher, clients []*tracked, chans func(i int) []string) {
	t.Helper()
	want := expectLast(p, clients)
	deadline := time.Now().Add(30 * time.Second)
	for i, c := range clients {
		for _, ch := range chans(i) {
			for c.last(ch) < want[ch] && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	want = expectLast(p, clients)
	bad := 0
	for i, c := range clients {
		for _, ch := range chans(i) {
			if err := c.checkContiguous(ch, want[ch]); err != nil {
				if bad++; bad <= 10 {
					t.Error(err)
				}
			}
		}
	}
	if bad > 10 {
		t.Errorf("... and %d more", bad-10)
	}
}

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

	tag := fmt.Sprintf("%x", rand.Uint32())
	chs := make([]string, channels)
	for i := range chs {
		chs[i] = fmt.Sprintf("broadcast:kill-%s-%d", tag, i)
	}
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
	resp, body := do(t, "POST", survivors[0]+"/v1/rooms", owner, `{"name":"kill","visibility":"public"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("create room = %d %s", resp.StatusCode, body)
	}
	var room struct{ ID string }
	_ = json.Unmarshal(body, &room)
	roomCh := "room:" + room.ID
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
	eventually(t, "the dead node's member to leave presence", func() bool {
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
	}, 30*time.Second-time.Since(killedAt)+2*time.Second)
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
	eventually(t, "the ghost's leave event and offline status", func() bool {
		return seen(func(m wire.Message) bool { return m.Event == wire.EventLeave && m.User == "ghost" }) && seen(offline("ghost"))
	}, 40*time.Second)
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

	tag := fmt.Sprintf("%x", rand.Uint32())
	chs := make([]string, channels)
	for i := range chs {
		chs[i] = fmt.Sprintf("broadcast:roll-%s-%d", tag, i)
	}
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

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("the node exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the node did not exit within 30 s of SIGTERM")
	}
}

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
	resp, body := do(t, "POST", a.base+"/v1/rooms", owner, `{"name":"redis-restart","visibility":"public"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("create room = %d %s", resp.StatusCode, body)
	}
	var room struct{ ID string }
	_ = json.Unmarshal(body, &room)
	roomCh := "room:" + room.ID

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
	stored := map[string]bool{}
	before := ""
	for {
		url := a.base + "/v1/rooms/" + room.ID + "/messages?limit=100"
		if before != "" {
			url += "&before=" + before
		}
		resp, body := do(t, "GET", url, owner, "")
		if resp.StatusCode != 200 {
			t.Fatalf("history = %d %s", resp.StatusCode, body)
		}
		var page struct {
			Messages []struct {
				ID string `json:"id"`
			} `json:"messages"`
			Next string `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			stored[m.ID] = true
		}
		if page.Next == "" || len(page.Messages) == 0 {
			break
		}
		before = page.Next
	}
	for _, id := range chatAcked {
		if !stored[id] {
			t.Errorf("acknowledged chat message %s is missing from the history", id)
		}
	}
}

// checkNoSilentGap checks tr's sequence on ch: contiguous within an epoch,
// and a new epoch or a skipped offset only after a recovered:false or gap
// notice. It returns how many notices there were.
func (tr *tracked) checkNoSilentGap(ch string) (int, error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	notices := tr.lostRecover[ch]
	s := tr.seqs[ch]
	for i := 1; i < len(s); i++ {
		prev, cur := s[i-1], s[i]
		if cur.Epoch == prev.Epoch && cur.Offset == prev.Offset+1 {
			continue
		}
		if cur.Epoch == prev.Epoch && cur.Offset <= prev.Offset {
			return notices, fmt.Errorf("%s on %s: offset %d after %d: a duplicate or a reorder", tr.user, ch, cur.Offset, prev.Offset)
		}
		if notices == 0 {
			return notices, fmt.Errorf("%s on %s: %s/%d after %s/%d with no recovered:false notice: a silent gap",
				tr.user, ch, cur.Epoch, cur.Offset, prev.Epoch, prev.Offset)
		}
	}
	return notices, nil
}

// startNodes starts n server processes from bin with env, sharing its
// data dir, with node ids prefix0, prefix1, ..., and returns them and
// their base URLs.
func startNodes(t *testing.T, bin string, env map[string]string, n int, prefix string) ([]*proc, []string) {
	t.Helper()
	procs := make([]*proc, n)
	bases := make([]string, n)
	for i := range procs {
		procs[i] = startProc(t, bin, env, "--data-dir", env["PARTYLINE_DATA_DIR"], "--node-id", fmt.Sprintf("%s%d", prefix, i))
		bases[i] = procs[i].base
	}
	return procs, bases
}
