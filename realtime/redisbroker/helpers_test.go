package redisbroker

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/realtimetest"
)

// runBroker runs b.Run with d until the test ends, and returns a function
// that stops it early (and is also called by the cleanup). It fails the
// test if Run returns an error or does not return in time.
func runBroker(t testing.TB, b *Broker, d realtime.Deliverer) (stop func()) {
	t.Helper()
	return testenv.Go(t, "Run", func(ctx context.Context) error { return b.Run(ctx, d) })
}

// runPresence runs p.Run until the test ends, and returns a function that
// stops it early.
func runPresence(t testing.TB, p *Presence) (stop func()) {
	t.Helper()
	return testenv.Go(t, "Presence.Run", p.Run)
}

// waitDelivering subscribes ch and publishes events on it until d gets
// one, which shows that b's Run is up.
func waitDelivering(t testing.TB, b *Broker, d *realtimetest.Recorder, ch string) {
	t.Helper()
	ctx := context.Background()
	if err := b.Subscribe(ctx, ch); err != nil {
		t.Fatalf("Subscribe(%q): %v", ch, err)
	}
	testenv.Eventually(t, "the broker to deliver", func() bool {
		if err := b.PublishEvent(ctx, ch, realtime.Publication{Payload: []byte("up")}); err != nil {
			t.Fatalf("PublishEvent: %v", err)
		}
		return d.Count(ch) > 0
	})
}

// shardCount returns how many pub/sub connections b's Run has.
func shardCount(b *Broker) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.run == nil {
		return 0
	}
	return len(b.run.shards)
}

// proxy is a TCP proxy to a Redis server that can make its pub/sub
// connections stuck: still open, but silent towards the client, as a
// half-dead TCP connection is.
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []*proxyConn
}

type proxyConn struct {
	client, server net.Conn

	mu     sync.Mutex
	pubsub bool // the client sent a subscribe command
	frozen bool // drop what the server sends
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		pc := &proxyConn{client: c, server: s}
		p.mu.Lock()
		p.conns = append(p.conns, pc)
		p.mu.Unlock()
		p.wg.Go(pc.up)
		p.wg.Go(pc.down)
	}
}

// up copies client to server, noting subscribe commands.
func (pc *proxyConn) up() {
	defer pc.server.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := pc.client.Read(buf)
		if n > 0 {
			if bytes.Contains(bytes.ToLower(buf[:n]), []byte("subscribe\r\n")) {
				pc.mu.Lock()
				pc.pubsub = true
				pc.mu.Unlock()
			}
			if _, werr := pc.server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// down copies server to client, unless frozen.
func (pc *proxyConn) down() {
	defer pc.client.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := pc.server.Read(buf)
		pc.mu.Lock()
		frozen := pc.frozen
		pc.mu.Unlock()
		if n > 0 && !frozen {
			if _, werr := pc.client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// freezePubSub silences every pub/sub connection open now and reports
// how many it froze.
func (p *proxy) freezePubSub() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, pc := range p.conns {
		pc.mu.Lock()
		if pc.pubsub && !pc.frozen {
			pc.frozen = true
			n++
		}
		pc.mu.Unlock()
	}
	return n
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, pc := range p.conns {
		_ = pc.client.Close()
		_ = pc.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
