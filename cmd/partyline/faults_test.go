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

// broadcastChannels returns n broadcast channel names, prefix-tag-i, with
// a random tag so that runs on one Redis do not share channels.
func broadcastChannels(prefix string, n int) []string {
	tag := fmt.Sprintf("%x", rand.Uint32())
	chs := make([]string, n)
	for i := range chs {
		chs[i] = fmt.Sprintf("broadcast:%s-%s-%d", prefix, tag, i)
	}
	return chs
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
