package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/wire"
)

func TestRecovery(t *testing.T) {
	b := NewMemoryBroker(MemoryBrokerOptions{NodeID: "gw-test"})
	s := NewMemoryStream(b, MemoryStreamOptions{HistorySize: 20})
	n := startNode(t, Options{Broker: b, Stream: s})
	ch := "broadcast:rec"
	c := connect(t, n.url, "u_r")
	first := c.ok(map[string]any{"type": "sub", "channel": ch})
	if first.Offset != 0 || first.Epoch == "" || strings.Contains(string(first.Raw), "recovered") {
		t.Fatalf("first sub reply = %s, want offset 0, an epoch and no recovered", first.Raw)
	}
	for i := 1; i <= 5; i++ {
		n.publish(t, ch, fmt.Sprintf(`{"n":%d}`, i))
	}
	c.waitUntil("5 msgs", 5*time.Second, func() bool { return len(c.notes) >= 5 })
	c.ok(map[string]any{"type": "unsub", "channel": ch})
	for i := 6; i <= 10; i++ {
		n.publish(t, ch, fmt.Sprintf(`{"n":%d}`, i))
	}

	t.Run("since replays what was missed, in order, before live", func(t *testing.T) {
		r := connect(t, n.url, "u_r")
		m := r.ok(map[string]any{"type": "sub", "channel": ch, "since": map[string]any{"epoch": first.Epoch, "offset": 5}})
		if !strings.Contains(string(m.Raw), `"recovered":true`) || m.Offset != 10 || m.Epoch != first.Epoch {
			t.Fatalf("sub reply = %s", m.Raw)
		}
		n.publish(t, ch, `{"n":11}`)
		r.waitUntil("6 msgs", 5*time.Second, func() bool { return len(r.notes) >= 6 })
		for i, msg := range r.msgs(ch) {
			if msg.Offset != uint64(6+i) || string(msg.Data) != fmt.Sprintf(`{"n":%d}`, 6+i) {
				t.Fatalf("msg %d = %s", i, msg.Raw)
			}
		}
	})
	t.Run("since at the current offset recovers nothing to replay", func(t *testing.T) {
		r := connect(t, n.url, "u_r")
		m := r.ok(map[string]any{"type": "sub", "channel": ch, "since": map[string]any{"epoch": first.Epoch, "offset": 11}})
		if !strings.Contains(string(m.Raw), `"recovered":true`) {
			t.Fatalf("sub reply = %s", m.Raw)
		}
	})
	for _, tc := range []struct {
		name  string
		since map[string]any
	}{
		{"another epoch", map[string]any{"epoch": "other", "offset": 5}},
		{"a future offset", map[string]any{"epoch": first.Epoch, "offset": 99}},
	} {
		t.Run(tc.name+" is recovered:false with no replay", func(t *testing.T) {
			r := connect(t, n.url, "u_r")
			m := r.ok(map[string]any{"type": "sub", "channel": ch, "since": tc.since})
			if !strings.Contains(string(m.Raw), `"recovered":false`) || m.Offset != 11 {
				t.Fatalf("sub reply = %s", m.Raw)
			}
			r.ok(map[string]any{"type": "ping"})
			if got := r.msgs(ch); len(got) != 0 {
				t.Fatalf("replayed %d msgs after recovered:false", len(got))
			}
		})
	}
	t.Run("trimmed history is recovered:false", func(t *testing.T) {
		for i := 0; i < 30; i++ {
			n.publish(t, ch, `{"pad":1}`)
		}
		r := connect(t, n.url, "u_r")
		m := r.ok(map[string]any{"type": "sub", "channel": ch, "since": map[string]any{"epoch": first.Epoch, "offset": 5}})
		if !strings.Contains(string(m.Raw), `"recovered":false`) {
			t.Fatalf("sub reply = %s", m.Raw)
		}
	})
}

// stormClient is a subscriber that keeps every offset it receives and
// resumes with since whenever its connection drops.
type stormClient struct {
	user    string
	mu      sync.Mutex
	offsets []uint64
	epoch   string
	resumes int
	lost    int // recovered:false replies
	// subbed counts the sub replies, one per connection; kicked the
	// kicks that hit this client.
	subbed, kicked int
}

// kickable reports whether the client's connection has subscribed since
// its last kick: a kick now closes a live connection, not one that is
// still closing from the kick before (which DisconnectUser counts too).
func (s *stormClient) kickable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subbed > s.kicked
}

func (s *stormClient) last() (Position, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.offsets) == 0 {
		return Position{Epoch: s.epoch}, 0
	}
	return Position{Epoch: s.epoch, Offset: s.offsets[len(s.offsets)-1]}, len(s.offsets)
}

// run connects, subscribes (resuming after the first time) and reads until
// ctx ends, reconnecting after every close.
func (s *stormClient) run(ctx context.Context, t *testing.T, url, ch string, ready chan<- struct{}) {
	first := true
	for ctx.Err() == nil {
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("%s: dial: %v", s.user, err)
			}
			return
		}
		ws.SetReadLimit(1 << 24)
		sub := map[string]any{"type": "sub", "id": 2, "channel": ch}
		if !first {
			pos, _ := s.last()
			sub["since"] = pos
			s.mu.Lock()
			s.resumes++
			s.mu.Unlock()
		}
		hello, _ := json.Marshal(map[string]any{"type": "hello", "id": 1, "token": s.user})
		subb, _ := json.Marshal(sub)
		if err := ws.Write(ctx, websocket.MessageText, append(append(hello, '\n'), subb...)); err != nil {
			ws.CloseNow()
			continue
		}
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				break
			}
			_ = wire.Split(data, func(b []byte) error {
				var m struct {
					Type      string          `json:"type"`
					ID        json.RawMessage `json:"id"`
					Offset    uint64          `json:"offset"`
					Epoch     string          `json:"epoch"`
					Recovered *bool           `json:"recovered"`
				}
				if err := json.Unmarshal(b, &m); err != nil {
					t.Errorf("bad JSON %s", b)
					return nil
				}
				s.mu.Lock()
				defer s.mu.Unlock()
				switch {
				case m.Type == wire.TypeOK && string(m.ID) == "2":
					s.subbed++
					if m.Recovered != nil && !*m.Recovered {
						s.lost++
					}
					s.epoch = m.Epoch
					if first {
						first = false
						close(ready)
					}
				case m.Type == wire.TypeMsg:
					s.offsets = append(s.offsets, m.Offset)
				}
				return nil
			})
		}
		ws.CloseNow()
	}
}

// TestRecoveryStorm: 50 subscribers on one channel, a publisher at one
// message per millisecond for 5 s, and 8 forced reconnects of random
// subscribers. Every subscriber ends with offsets 1..N: no gap, no
// duplicate, in order.
func TestRecoveryStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the 5 s storm in -short mode")
	}
	const subscribers, duration, reconnects = 50, 5 * time.Second, 8
	// History holds the whole run, so a resume that a loaded machine slows
	// down still finds what it missed: this tests recovery, not trimming.
	b := NewMemoryBroker(MemoryBrokerOptions{NodeID: "gw-test"})
	n := startNode(t, Options{Broker: b, Stream: NewMemoryStream(b, MemoryStreamOptions{HistorySize: 10000})})
	ch := "broadcast:storm"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clients := make([]*stormClient, subscribers)
	var wg sync.WaitGroup
	for i := range clients {
		clients[i] = &stormClient{user: fmt.Sprintf("u_storm%02d", i)}
		ready := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			clients[i].run(ctx, t, n.url, ch, ready)
		}()
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatalf("subscriber %d never subscribed", i)
		}
	}

	// Kick random subscribers at random moments while publishing. The
	// publisher keeps to one message per elapsed millisecond, catching up
	// in bursts when the machine falls behind.
	kicks := make([]time.Duration, reconnects)
	for i := range kicks {
		kicks[i] = time.Duration(rand.Int64N(int64(duration)))
	}
	slices.Sort(kicks)
	var published uint64
	kicked := 0
	tick := time.NewTicker(time.Millisecond)
	start := time.Now()
	for elapsed := time.Duration(0); elapsed < duration || len(kicks) > 0; elapsed = time.Since(start) {
		<-tick.C
		for published < uint64(elapsed/time.Millisecond) {
			pos, err := n.Publish(ctx, ch, "", "tick", "", json.RawMessage(fmt.Sprintf(`{"i":%d}`, published)))
			if err != nil {
				t.Fatal(err)
			}
			published = pos.Offset
		}
		for len(kicks) > 0 && (kicks[0] <= elapsed || elapsed+2*time.Millisecond >= duration) {
			kicks = kicks[1:]
			// Pick a victim that is connected right now, on a connection
			// not kicked yet.
			for try := 0; try < subscribers; try++ {
				victim := clients[rand.IntN(subscribers)]
				if !victim.kickable() {
					continue
				}
				if n.DisconnectUser(victim.user, wire.CloseServiceRestart, "storm") > 0 {
					victim.mu.Lock()
					victim.kicked++
					victim.mu.Unlock()
					kicked++
					break
				}
			}
		}
	}
	tick.Stop()
	// A kicked subscriber may drain its queue before its close lands, so
	// wait for every kick's resume before waiting for the catch-up.
	// A loaded machine flushes a kicked subscriber's queue slowly.
	testenv.EventuallyWithin(t, time.Minute, "every kicked subscriber to resume", func() bool {
		resumes := 0
		for _, c := range clients {
			c.mu.Lock()
			resumes += c.resumes
			c.mu.Unlock()
		}
		return resumes >= kicked
	})
	for _, c := range clients {
		testenv.EventuallyWithin(t, time.Minute, c.user+" to catch up", func() bool {
			pos, got := c.last()
			return got > 0 && pos.Offset >= published
		})
	}
	cancel()
	wg.Wait()
	totalResumes := 0
	for _, c := range clients {
		c.mu.Lock()
		totalResumes += c.resumes
		if c.lost != 0 {
			t.Errorf("%s: %d recovered:false", c.user, c.lost)
		}
		if uint64(len(c.offsets)) != published {
			t.Errorf("%s: %d msgs, want %d", c.user, len(c.offsets), published)
		}
		for i, off := range c.offsets {
			if off != uint64(i+1) {
				t.Errorf("%s: msg %d has offset %d (gap, duplicate or reorder)", c.user, i, off)
				break
			}
		}
		c.mu.Unlock()
	}
	if kicked != reconnects || totalResumes < kicked {
		t.Errorf("%d kicks and %d resumes, want %d of each", kicked, totalResumes, reconnects)
	}
	t.Logf("%d publications to %d subscribers, %d resumes", published, subscribers, totalResumes)
}

// TestSlowConsumer: a subscriber that stops reading during a burst is
// closed with 4009, and the other subscriber gets every message.
func TestSlowConsumer(t *testing.T) {
	n := startNode(t, Options{SendQueueMessages: 200})
	ch := "broadcast:burst"
	slow := connect(t, n.url, "u_slow")
	fast := connect(t, n.url, "u_fast")
	slow.ok(map[string]any{"type": "sub", "channel": ch})
	fast.ok(map[string]any{"type": "sub", "channel": ch})
	slow.pause()

	// Publish in batches the reading subscriber keeps up with, so only the
	// one that stopped reading falls behind.
	const burst, batch = 3000, 100
	pad := strings.Repeat("x", 4000)
	for i := 1; i <= burst; i++ {
		n.publish(t, ch, fmt.Sprintf(`{"i":%d,"pad":%q}`, i, pad))
		if i%batch == 0 {
			fast.waitUntil("a batch", 20*time.Second, func() bool { return len(fast.notes) >= i })
		}
	}
	fast.waitUntil("the whole burst", 20*time.Second, func() bool { return len(fast.notes) >= burst })
	got := fast.msgs(ch)
	if len(got) != burst {
		t.Fatalf("the reading subscriber got %d msgs, want %d", len(got), burst)
	}
	for i, m := range got {
		if m.Offset != uint64(i+1) {
			t.Fatalf("msg %d has offset %d", i, m.Offset)
		}
	}
	slow.resume()
	if code := slow.waitClose(10 * time.Second); code != wire.CloseSlowConsumer {
		t.Fatalf("slow consumer close code = %d, want 4009", code)
	}
	if n := len(slow.msgs(ch)); n >= burst {
		t.Fatalf("the slow consumer got all %d msgs; the test did not back it up", n)
	}
}
