package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/client"
	"github.com/partyline/partyline/realtime/wire"
)

// clusterEnv returns the settings that make nodes one cluster: a Redis
// database of their own, a shared store and a shared data dir (for the dev
// secret), and an API key.
func clusterEnv(t *testing.T) map[string]string {
	t.Helper()
	redisURL := testenv.RedisURL(t)
	// A logical database of its own keeps these nodes' keys apart from
	// other test packages running at the same time.
	redisURL = strings.TrimRight(strings.TrimSuffix(redisURL, "/0"), "/") + fmt.Sprintf("/%d", 1+rand.IntN(15))
	env := map[string]string{
		"PARTYLINE_REDIS_URL": redisURL,
		"PARTYLINE_DATA_DIR":  t.TempDir(),
		"PARTYLINE_API_KEY":   "cluster-test-key",
		"PARTYLINE_DEV":       "1",
	}
	if os.Getenv(testenv.DatabaseURLEnv) != "" {
		env["PARTYLINE_DATABASE_URL"] = testenv.PostgresURL(t)
	}
	return env
}

func sdk(t *testing.T, ctx context.Context, base, tok string) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx, client.Options{URL: base, DisableReconnect: true, MessageBuffer: 4096,
		Token: func(context.Context) (string, error) { return tok, nil }})
	if err != nil {
		t.Fatalf("dial %s: %v", base, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitMsg reads c's messages until one matches, failing after 15 s.
func waitMsg(t *testing.T, c *client.Client, what string, match func(wire.Message) bool) wire.Message {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				t.Fatalf("%s: the client stopped: %v", what, c.Err())
			}
			if match(m) {
				return m
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestClusterInProcess runs two nodes in this process on one Redis: a
// message, presence, status and a server-API disconnect all cross nodes.
func TestClusterInProcess(t *testing.T) {
	env := clusterEnv(t)
	n1 := startServer(t, env, "--data-dir", env["PARTYLINE_DATA_DIR"], "--node-id", "n1")
	n2 := startServer(t, env, "--data-dir", env["PARTYLINE_DATA_DIR"], "--node-id", "n2")
	if !strings.Contains(n1.logs.String(), `"broker":"redis"`) {
		t.Fatalf("the startup line does not name Redis:\n%s", n1.logs)
	}
	suffix := fmt.Sprintf("%06d", rand.IntN(1e6))
	alice, bob := "alice"+suffix, "bob"+suffix
	atok, btok := devToken(t, n1, alice), devToken(t, n1, bob)

	resp, body := do(t, "POST", n1.base+"/v1/rooms", atok, `{"name":"x-node","visibility":"public"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("create room = %d %s", resp.StatusCode, body)
	}
	var room struct{ ID string }
	_ = json.Unmarshal(body, &room)
	ch := "room:" + room.ID

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := sdk(t, ctx, n1.base, atok)
	b := sdk(t, ctx, n2.base, btok)
	if a.Node() != "n1" || b.Node() != "n2" {
		t.Fatalf("nodes %s and %s, want n1 and n2", a.Node(), b.Node())
	}
	if _, err := a.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Subscribe(ctx, "status:"+bob); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	waitMsg(t, a, "bob's join, from the other node", func(m wire.Message) bool {
		return m.Type == wire.TypeEvent && m.Event == wire.EventJoin && m.User == bob
	})
	p, err := b.Presence(ctx, ch)
	if err != nil || p.Count != 2 {
		t.Fatalf("presence on n2 = %+v, %v; want both users", p, err)
	}

	msgID, offset, err := b.Publish(ctx, ch, map[string]string{"text": "across"}, "x1")
	if err != nil {
		t.Fatal(err)
	}
	m := waitMsg(t, a, "bob's message on n1", func(m wire.Message) bool { return m.Type == wire.TypeMsg && m.Channel == ch })
	if m.MsgID != msgID || m.Offset != offset || m.From != bob {
		t.Fatalf("msg on n1 = %s, want id %s offset %d", m.Raw, msgID, offset)
	}

	if err := b.SetStatus(ctx, "in_game", "valorant", ""); err != nil {
		t.Fatal(err)
	}
	waitMsg(t, a, "bob in game", func(m wire.Message) bool {
		return m.Channel == "status:"+bob && strings.Contains(string(m.Data), "in_game")
	})

	// Taken out of a private room on n1, bob stops receiving it on n2.
	resp, body = do(t, "POST", n1.base+"/v1/rooms", atok, `{"name":"inner","visibility":"private"}`)
	var priv struct{ ID string }
	if resp.StatusCode != 201 || json.Unmarshal(body, &priv) != nil {
		t.Fatalf("create private room = %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, "PUT", n1.base+"/v1/rooms/"+priv.ID+"/members/"+bob, atok, ""); resp.StatusCode != 200 {
		t.Fatalf("add bob = %d %s", resp.StatusCode, body)
	}
	if _, err := b.Subscribe(ctx, "room:"+priv.ID); err != nil {
		t.Fatal(err)
	}
	if resp, body := do(t, "DELETE", n1.base+"/v1/rooms/"+priv.ID+"/members/"+bob, atok, ""); resp.StatusCode != 204 {
		t.Fatalf("remove bob = %d %s", resp.StatusCode, body)
	}
	waitMsg(t, b, "bob's subscription ended on the other node", func(m wire.Message) bool {
		return m.Type == wire.TypeUnsubscribed && m.Channel == "room:"+priv.ID
	})

	// bob on both nodes; one server API call closes both sockets.
	b1 := sdk(t, ctx, n1.base, btok)
	req := fmt.Sprintf(`{"user":%q,"code":4003,"reason":"logout"}`, bob)
	resp, body = do(t, "POST", n1.base+"/v1/server/disconnect", "cluster-test-key", req)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"closed":2`) {
		t.Fatalf("disconnect = %d %s, want 2 closed", resp.StatusCode, body)
	}
	for _, c := range []*client.Client{b, b1} {
		select {
		case <-c.Done():
			if code := client.CloseCode(c.Err()); code != 4003 {
				t.Fatalf("close code %d, want 4003", code)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a socket of bob survived the disconnect")
		}
	}
	waitMsg(t, a, "bob offline, 5 s after his last socket on any node", func(m wire.Message) bool {
		return m.Channel == "status:"+bob && strings.Contains(string(m.Data), `"offline"`)
	})
}

// proc is a partyline server in a process of its own.
type proc struct {
	cmd  *exec.Cmd
	base string
	done chan error
}

// startProc starts the built binary with env and waits for its startup
// line, which names its address.
func startProc(t *testing.T, bin string, env map[string]string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		sent := false
		for sc.Scan() {
			var m map[string]any
			if !sent && json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "partyline serving" {
				addr <- m["addr"].(string)
				sent = true
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-p.done
			}
		}
	})
	select {
	case a := <-addr:
		p.base = "http://" + a
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the server process did not start")
	}
	return p
}

// kill ends the process at once, as a crash would.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// resumer is a subscriber that moves to the next node whenever its
// connection drops, resuming with since, and keeps every offset it gets.
type resumer struct {
	user, token string
	mu          sync.Mutex
	offsets     []uint64
	epoch       string
	lost        int
	moves       int
}

func (r *resumer) run(ctx context.Context, t *testing.T, bases func() []string, ch string, ready chan<- struct{}) {
	first := true
	for attempt := 0; ctx.Err() == nil; attempt++ {
		list := bases()
		base := list[attempt%len(list)]
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/v1/ws", nil)
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
				continue
			}
		}
		ws.SetReadLimit(1 << 24)
		sub := map[string]any{"type": "sub", "id": 2, "channel": ch}
		r.mu.Lock()
		if !first {
			last := uint64(0)
			if len(r.offsets) > 0 {
				last = r.offsets[len(r.offsets)-1]
			}
			sub["since"] = map[string]any{"epoch": r.epoch, "offset": last}
			r.moves++
		}
		r.mu.Unlock()
		hello, _ := json.Marshal(map[string]any{"type": "hello", "id": 1, "token": r.token})
		sb, _ := json.Marshal(sub)
		if err := ws.Write(ctx, websocket.MessageText, append(append(hello, '\n'), sb...)); err == nil {
			for {
				_, data, err := ws.Read(ctx)
				if err != nil {
					break
				}
				_ = wire.Split(data, func(b []byte) error {
					m, err := wire.DecodeMessage(b)
					if err != nil {
						return nil
					}
					r.mu.Lock()
					defer r.mu.Unlock()
					switch {
					case m.Type == wire.TypeOK && m.ID == 2:
						if strings.Contains(string(m.Raw), `"recovered":false`) {
							r.lost++
						}
						r.epoch = m.Epoch
						if first {
							first = false
							close(ready)
						}
					case m.Type == wire.TypeMsg && m.Channel == ch:
						r.offsets = append(r.offsets, m.Offset)
					}
					return nil
				})
			}
		}
		ws.CloseNow()
	}
}

// TestClusterNodeKilled runs real partyline processes on one Redis. A node
// is killed while a publisher on the other keeps posting; its subscribers
// move to the survivor and resume with since: every acknowledged message
// arrives once, in order, with recovered:true. The dead node's presence
// entries expire, and the node serves again after a restart.
func TestClusterNodeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the multi-process cluster test in -short mode")
	}
	env := clusterEnv(t)
	env["PARTYLINE_PUBLISH_RATE"] = "1000"
	bin := filepath.Join(t.TempDir(), "partyline")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := env["PARTYLINE_DATA_DIR"]
	victim := startProc(t, bin, env, "--data-dir", dir, "--node-id", "victim")
	survivor := startProc(t, bin, env, "--data-dir", dir, "--node-id", "survivor")
	var basesMu sync.Mutex
	bases := []string{victim.base, survivor.base}
	getBases := func() []string {
		basesMu.Lock()
		defer basesMu.Unlock()
		return bases
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	owner := devTokenAt(t, survivor.base, "owner")
	resp, body := do(t, "POST", survivor.base+"/v1/rooms", owner, `{"name":"crash","visibility":"public"}`)
	if resp.StatusCode != 201 {
		t.Fatalf("create room = %d %s", resp.StatusCode, body)
	}
	var room struct{ ID string }
	_ = json.Unmarshal(body, &room)
	ch := "room:" + room.ID

	// Subscribers start on the victim; a listener that never comes back
	// is there to be dropped from presence.
	const subscribers = 10
	subs := make([]*resumer, subscribers)
	var wg sync.WaitGroup
	for i := range subs {
		subs[i] = &resumer{user: fmt.Sprintf("sub%02d", i)}
		subs[i].token = devTokenAt(t, survivor.base, subs[i].user)
		ready := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			subs[i].run(ctx, t, getBases, ch, ready)
		}()
		select {
		case <-ready:
		case <-time.After(15 * time.Second):
			t.Fatalf("subscriber %d never subscribed", i)
		}
	}
	ghost := sdk(t, ctx, victim.base, devTokenAt(t, survivor.base, "ghost"))
	if _, err := ghost.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range ghost.Messages() {
		}
	}()

	pub := sdk(t, ctx, survivor.base, owner)
	for _, c := range []string{ch, "status:ghost"} {
		if _, err := pub.Subscribe(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	var (
		seenMu              sync.Mutex
		ghostLeft, ghostOff bool
	)
	go func() {
		for m := range pub.Messages() {
			seenMu.Lock()
			if m.Type == wire.TypeEvent && m.Event == wire.EventLeave && m.User == "ghost" {
				ghostLeft = true
			}
			if m.Channel == "status:ghost" && strings.Contains(string(m.Data), `"offline"`) {
				ghostOff = true
			}
			seenMu.Unlock()
		}
	}()
	var lastAck uint64
	publish := func(n int) {
		for i := 0; i < n; i++ {
			_, off, err := pub.Publish(ctx, ch, map[string]int{"i": i}, fmt.Sprintf("k%d-%d", lastAck, i))
			if err != nil {
				t.Fatalf("publish: %v", err)
			}
			lastAck = off
			time.Sleep(2 * time.Millisecond)
		}
	}
	publish(100)
	victim.kill(t)
	basesMu.Lock()
	bases = []string{survivor.base}
	basesMu.Unlock()
	publish(200)

	for _, s := range subs {
		eventually(t, s.user+" to catch up on the survivor", func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return len(s.offsets) > 0 && s.offsets[len(s.offsets)-1] >= lastAck
		})
	}
	for _, s := range subs {
		s.mu.Lock()
		if s.lost != 0 || s.moves == 0 {
			t.Errorf("%s: %d recovered:false over %d moves", s.user, s.lost, s.moves)
		}
		for i, off := range s.offsets {
			if off != uint64(i+1) {
				t.Errorf("%s: message %d has offset %d: a gap, a duplicate or a reorder", s.user, i, off)
				break
			}
		}
		s.mu.Unlock()
	}

	// The ghost's entry lived on the dead node: it expires within 30 s.
	start := time.Now()
	eventually(t, "the dead node's member to leave presence", func() bool {
		p, err := pub.Presence(ctx, ch)
		if err != nil {
			return false
		}
		for _, m := range p.Members {
			if m.User == "ghost" {
				return false
			}
		}
		return true
	}, 40*time.Second)
	if waited := time.Since(start); waited > 35*time.Second {
		t.Errorf("the dead node's member took %v to disappear", waited)
	}
	// Nobody said goodbye for the ghost, so the survivors do: a leave event
	// and, as that was its last connection anywhere, the offline status.
	eventually(t, "the ghost's leave event and offline status", func() bool {
		seenMu.Lock()
		defer seenMu.Unlock()
		return ghostLeft && ghostOff
	}, 70*time.Second)

	// A restarted node serves again and can resume too.
	back := startProc(t, bin, env, "--data-dir", dir, "--node-id", "victim")
	late := sdk(t, ctx, back.base, subs[0].token)
	sub, err := late.Subscribe(ctx, ch, client.Since(wire.Position{Epoch: subs[0].epoch, Offset: lastAck - 5}))
	if err != nil || !sub.Recovered {
		t.Fatalf("resume on the restarted node = %+v, %v", sub, err)
	}
	cancel()
	wg.Wait()
}

// devTokenAt mints a dev token from the server at base.
func devTokenAt(t *testing.T, base, user string) string {
	t.Helper()
	resp, body := do(t, "POST", base+"/v1/dev/token", "", `{"user":"`+user+`"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("dev token: %d %s", resp.StatusCode, body)
	}
	var out struct{ Token string }
	_ = json.Unmarshal(body, &out)
	return out.Token
}

// eventually polls cond every 20 ms until it holds or the wait (default
// 20 s) passes.
func eventually(t *testing.T, what string, cond func() bool, wait ...time.Duration) {
	t.Helper()
	d := 20 * time.Second
	if len(wait) > 0 {
		d = wait[0]
	}
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
