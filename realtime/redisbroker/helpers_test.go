package redisbroker

import (
	"bytes"
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
)

// sink is a Deliverer that keeps what it is given.
type sink struct {
	mu      sync.Mutex
	pubs    map[string][]realtime.Publication
	node    [][]byte
	resyncs map[string]int
}

func newSink() *sink {
	return &sink{pubs: make(map[string][]realtime.Publication), resyncs: make(map[string]int)}
}

func (s *sink) Deliver(ch string, p realtime.Publication) {
	s.mu.Lock()
	s.pubs[ch] = append(s.pubs[ch], p)
	s.mu.Unlock()
}

func (s *sink) DeliverNode(msg []byte) {
	s.mu.Lock()
	s.node = append(s.node, msg)
	s.mu.Unlock()
}

func (s *sink) Resync(channels []string) {
	s.mu.Lock()
	for _, ch := range channels {
		s.resyncs[ch]++
	}
	s.mu.Unlock()
}

func (s *sink) got(ch string) []realtime.Publication {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pubs[ch])
}

func (s *sink) count(ch string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pubs[ch])
}

func (s *sink) nodeMsgs() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.node)
}

func (s *sink) resynced(ch string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resyncs[ch]
}

// hasPayload reports whether ch received a publication with payload p.
func (s *sink) hasPayload(ch, p string) bool {
	for _, got := range s.got(ch) {
		if string(got.Payload) == p {
			return true
		}
	}
	return false
}

// runBroker runs b.Run with d until the test ends, and returns a function
// that stops it early (and is also called by the cleanup). It fails the
// test if Run returns an error or does not return in time.
func runBroker(t testing.TB, b *Broker, d realtime.Deliverer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- b.Run(ctx, d) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(waitFor):
				t.Errorf("Run did not return within %v of its context ending", waitFor)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// runPresence runs p.Run until the test ends, and returns a function that
// stops it early.
func runPresence(t testing.TB, p *Presence) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Run(ctx); err != nil {
			t.Errorf("Presence.Run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitDelivering subscribes ch and publishes events on it until d gets
// one, which shows that b's Run is up.
func waitDelivering(t testing.TB, b *Broker, d *sink, ch string) {
	t.Helper()
	ctx := context.Background()
	if err := b.Subscribe(ctx, ch); err != nil {
		t.Fatalf("Subscribe(%q): %v", ch, err)
	}
	testenv.Eventually(t, "the broker to deliver", func() bool {
		if err := b.PublishEvent(ctx, ch, realtime.Publication{Payload: []byte("up")}); err != nil {
			t.Fatalf("PublishEvent: %v", err)
		}
		return d.count(ch) > 0
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
