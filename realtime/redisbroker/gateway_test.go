package redisbroker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/client"
	"github.com/partyline/partyline/realtime/wire"
)

// These tests run whole gateway nodes (realtime.Node) on the Redis
// engine, with WebSocket clients (the Go SDK) on httptest servers: what
// the unit tests of the Broker and Stream check piece by piece, end to
// end across two nodes.

// gwAuth accepts a token that is a valid user id, as that user.
type gwAuth struct{}

func (gwAuth) Authenticate(_ context.Context, token string) (string, time.Time, error) {
	if !wire.ValidID(token) {
		return "", time.Time{}, partyline.Errorf(partyline.ErrUnauthorized, "bad test token")
	}
	return token, time.Now().Add(time.Hour), nil
}

// gwNode is a running realtime.Node on a Redis Engine, behind an httptest
// server.
type gwNode struct {
	*realtime.Node
	engine *Engine
	url    string // http://..., the client adds /v1/ws
	// stop drains the node (every connection ends with 1012), closes its
	// server, ends its Run and then its Presence's Run, as a process that
	// exits after a drain. It is also the test's cleanup.
	stop func()
}

// startGatewayNode starts a Node with id on its own Engine over c, under
// prefix, with the engine's Presence running, and serves it. Everything
// stops when the test ends, if the test has not stopped it before.
func startGatewayNode(t *testing.T, c goredis.UniversalClient, prefix, id string) *gwNode {
	return startNodeWith(t, c, Options{Prefix: prefix, NodeID: id}, nil)
}

// startNodeWith starts a node like startGatewayNode, on an Engine with
// opts, with adjust (when not nil) changing the Node's options, and exts
// registered.
func startNodeWith(t *testing.T, c goredis.UniversalClient, opts Options, adjust func(*realtime.Options), exts ...realtime.Extension) *gwNode {
	t.Helper()
	id := opts.NodeID
	e := newEngine(t, c, opts)
	stopPresence := runPresence(t, e.Presence)
	nopts := realtime.Options{
		NodeID:            id,
		Broker:            e.Broker,
		Stream:            e.Stream,
		Presence:          e.Presence,
		Auth:              gwAuth{},
		Logger:            slog.New(slog.DiscardHandler),
		DisableWSFastPath: !testenv.FastPaths(),
	}
	if adjust != nil {
		adjust(&nopts)
	}
	n, err := realtime.New(nopts)
	if err != nil {
		t.Fatalf("realtime.New: %v", err)
	}
	for _, ext := range exts {
		if err := n.Register(ext); err != nil {
			t.Fatalf("Register: %v", err)
		}
	}
	returned := make(chan struct{})
	stopRun := testenv.Go(t, "node "+id+": Run", func(ctx context.Context) error {
		defer close(returned)
		return n.Run(ctx)
	})
	select {
	case <-n.Started():
	case <-returned:
		t.Fatalf("node %s: Run returned at once", id)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/ws", n)
	srv := httptest.NewServer(mux)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			dctx, dcancel := context.WithTimeout(context.Background(), waitFor)
			if err := n.Drain(dctx); err != nil {
				t.Errorf("node %s: Drain: %v", id, err)
			}
			dcancel()
			srv.Close()
			stopRun()
			stopPresence()
		})
	}
	t.Cleanup(stop)
	return &gwNode{Node: n, engine: e, url: srv.URL, stop: stop}
}

// sent is what a publication was published with, to compare with what a
// client receives.
type sent struct {
	pos   realtime.Position
	msgID string
	data  string
}

// publishVia publishes data on ch through n's server-side API, as the
// server API and the extensions do.
func publishVia(ctx context.Context, n *gwNode, ch, data string) (sent, error) {
	id := ulid.Make().String()
	pos, err := n.Publish(ctx, ch, id, "notice", "", json.RawMessage(data))
	return sent{pos: pos, msgID: id, data: data}, err
}

// publishLost appends a publication to ch's stream through s exactly as
// Stream.Publish does (the same script, so the same epoch, offset, append
// time, trimming and expiry bookkeeping, and the same payload as
// Node.Publish makes) but sends its pub/sub notification to a channel of
// the same hash tag that nobody subscribes. So every node misses it, as
// when Redis drops a pub/sub message, and can only learn of it from the
// stream.
func publishLost(t *testing.T, s *Stream, ch, data string) sent {
	t.Helper()
	id := ulid.Make().String()
	payload := wire.AppendPayload(nil, id, "notice", "", time.Now().UnixMilli(), json.RawMessage(data))
	nowhere := s.b.keys.tagged(ch) + ":nowhere"
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	sc := s.b.pub.scriptCall([]*publication{s.publication(ch, payload, nowhere)})
	v, err := sc.script.Run(ctx, s.b.client, sc.keys, sc.args...).Result()
	if err == nil {
		v, err = publishReply(v, 0)
	}
	if err != nil {
		t.Fatalf("append to %s without notification: %v", ch, err)
	}
	pos, err := parsePosition(v)
	if err != nil {
		t.Fatalf("append to %s without notification: %v", ch, err)
	}
	return sent{pos: pos, msgID: id, data: data}
}

// gwClient is an SDK client whose Messages are collected by a goroutine
// of its own, so the test can wait on them.
type gwClient struct {
	t    *testing.T
	name string
	c    *client.Client
	done chan struct{} // closed when the collector has ended

	mu      sync.Mutex
	msgs    []wire.Message
	changed chan struct{} // closed and replaced on every new message

	closeOnce sync.Once
}

// dialGateway connects to n as user, without automatic reconnection: the
// tests reconnect by hand, to the node they choose. It is closed when the
// test ends, if not before.
func dialGateway(t *testing.T, n *gwNode, user string) *gwClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{
		URL:              n.url,
		Token:            func(context.Context) (string, error) { return user, nil },
		DisableReconnect: true,
		RequestTimeout:   waitFor,
		MessageBuffer:    4096,
	})
	if err != nil {
		t.Fatalf("dial %s as %s: %v", n.ID(), user, err)
	}
	if got := c.Node(); got != n.ID() {
		_ = c.Close()
		t.Fatalf("dialled %s but hello says node %q", n.ID(), got)
	}
	g := &gwClient{t: t, name: user + "@" + n.ID(), c: c, done: make(chan struct{}), changed: make(chan struct{})}
	go g.collect()
	t.Cleanup(g.close)
	return g
}

func (g *gwClient) collect() {
	defer close(g.done)
	for m := range g.c.Messages() {
		g.mu.Lock()
		g.msgs = append(g.msgs, m)
		close(g.changed)
		g.changed = make(chan struct{})
		g.mu.Unlock()
	}
}

// close closes the client and waits for its collector.
func (g *gwClient) close() {
	g.closeOnce.Do(func() {
		_ = g.c.Close()
		<-g.done
	})
}

// subscribe subscribes to ch, from since when it is not nil.
func (g *gwClient) subscribe(ch string, since *wire.Position) client.Subscription {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var opts []client.SubOption
	if since != nil {
		opts = append(opts, client.Since(*since))
	}
	s, err := g.c.Subscribe(ctx, ch, opts...)
	if err != nil {
		g.t.Fatalf("%s: subscribe %s: %v", g.name, ch, err)
	}
	return s
}

// onLocked returns the messages of ch received so far (msg, gap, and
// whatever else names ch); g.mu is held.
func (g *gwClient) onLocked(ch string) []wire.Message {
	var out []wire.Message
	for _, m := range g.msgs {
		if m.Channel == ch {
			out = append(out, m)
		}
	}
	return out
}

// waitOffset waits until a msg of ch at offset off or later has arrived,
// or anything but a msg on ch (a gap, say, which the caller then reports),
// and returns every message of ch so far.
func (g *gwClient) waitOffset(ch string, off uint64) []wire.Message {
	g.t.Helper()
	return g.waitOn(ch, fmt.Sprintf("offset %d", off), func(m wire.Message) bool {
		return m.Type != wire.TypeMsg || m.Offset >= off
	})
}

// waitOn waits until a message of ch matches (what names it in a
// failure), and returns every message of ch so far.
func (g *gwClient) waitOn(ch, what string, match func(wire.Message) bool) []wire.Message {
	g.t.Helper()
	deadline := time.NewTimer(waitFor)
	defer deadline.Stop()
	for {
		g.mu.Lock()
		got := g.onLocked(ch)
		changed := g.changed
		g.mu.Unlock()
		if slices.ContainsFunc(got, match) {
			return got
		}
		select {
		case <-changed:
		case <-g.done:
			g.t.Fatalf("%s: client stopped (%v) while waiting for %s on %s; got %s", g.name, g.c.Err(), what, ch, describe(got))
		case <-deadline.C:
			g.t.Fatalf("%s: timed out after %v waiting for %s on %s; got %s", g.name, waitFor, what, ch, describe(got))
		}
	}
}

// expectExactly waits for the publication at want's last position on ch
// and checks that the messages of ch received so far are want, in order:
// each once, with its position, message id and data, and nothing else.
func (g *gwClient) expectExactly(ch string, want []sent) {
	g.t.Helper()
	if len(want) == 0 {
		g.t.Fatalf("expectExactly(%s): nothing to expect", ch)
	}
	got := g.waitOffset(ch, want[len(want)-1].pos.Offset)
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		m, w := got[i], want[i]
		ok = m.Type == wire.TypeMsg && m.Epoch == w.pos.Epoch && m.Offset == w.pos.Offset &&
			m.MsgID == w.msgID && m.Kind == "notice" && string(m.Data) == w.data
	}
	if !ok {
		g.t.Fatalf("%s on %s:\n got %s\nwant %s", g.name, ch, describe(got), describeSent(want))
	}
}

func describe(ms []wire.Message) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		if m.Type == wire.TypeMsg {
			parts[i] = fmt.Sprintf("msg %s/%d %s", m.Epoch, m.Offset, m.Data)
		} else {
			parts[i] = string(m.Raw)
			if m.Raw == nil {
				parts[i] = m.Type
			}
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func describeSent(ss []sent) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = fmt.Sprintf("msg %s/%d %s", s.pos.Epoch, s.pos.Offset, s.data)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// checkOffsets fails unless ss are at offsets from, from+1, ... of one
// epoch.
func checkOffsets(t *testing.T, ch string, ss []sent, from uint64) {
	t.Helper()
	for i, s := range ss {
		if s.pos.Offset != from+uint64(i) || s.pos.Epoch != ss[0].pos.Epoch {
			t.Fatalf("publications on %s are at %s, want offsets %d.. of one epoch", ch, describeSent(ss), from)
		}
	}
}

// TestGatewayDroppedPubSub: two nodes on one Redis; a publication whose
// pub/sub notification is lost still reaches the subscribers of the other
// node, in order, found by the gap the next publication reveals.
func TestGatewayDroppedPubSub(t *testing.T) {
	prefix := testenv.KeyPrefix()
	a := startGatewayNode(t, singleClient(t), prefix, "gw-a-"+newEpoch())
	b := startGatewayNode(t, singleClient(t), prefix, "gw-b-"+newEpoch())
	ch := "broadcast:dropped_" + newEpoch()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	// A raw subscriber of the channel's pub/sub channel shows what the
	// nodes were sent.
	raw := singleClient(t)
	ps := raw.Subscribe(ctx, b.engine.Broker.keys.channel(ch))
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		t.Fatalf("subscribe the raw observer: %v", err)
	}

	subB := dialGateway(t, b, "u_sub_b")
	if s := subB.subscribe(ch, nil); s.Position.Offset != 0 || s.Position.Epoch == "" {
		t.Fatalf("subscribe on B: position %+v, want offset 0 of a new epoch", s.Position)
	}
	subA := dialGateway(t, a, "u_sub_a")
	subA.subscribe(ch, nil)

	var all []sent
	pub := func(i int) {
		t.Helper()
		s, err := publishVia(ctx, a, ch, fmt.Sprintf(`{"i":%d}`, i))
		if err != nil {
			t.Fatalf("publish #%d through A: %v", i, err)
		}
		all = append(all, s)
	}
	lose := func(i int) sent {
		t.Helper()
		s := publishLost(t, a.engine.Stream, ch, fmt.Sprintf(`{"i":%d,"lost":true}`, i))
		all = append(all, s)
		return s
	}

	// 1-3 normally; B has them live, so it knows offset 3 is the last.
	for i := 1; i <= 3; i++ {
		pub(i)
	}
	subB.waitOffset(ch, 3)
	// 4 lost, 5-6 normal: 5 reveals the gap.
	lost := []sent{lose(4)}
	pub(5)
	pub(6)
	subB.waitOffset(ch, 6)
	// 7 and 8 lost in a row, 9-10 normal, then a lone publisher (no
	// waiting in between) loses 11 and publishes 12.
	lost = append(lost, lose(7), lose(8))
	pub(9)
	pub(10)
	lost = append(lost, lose(11))
	pub(12)
	const n = 12
	checkOffsets(t, ch, all, 1)

	subB.expectExactly(ch, all)
	subA.expectExactly(ch, all)

	// Pub/sub carried every publication but the lost ones, in order; the
	// observer's last message is offset n, so what it did not see before
	// was never sent.
	var seen []uint64
	for len(seen) == 0 || seen[len(seen)-1] < n {
		msg, err := ps.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("raw observer after offsets %v: %v", seen, err)
		}
		p, err := decodePublication(msg.Payload)
		if err != nil {
			t.Fatalf("raw observer: %q: %v", msg.Payload, err)
		}
		if p.Offset > 0 { // not a presence event
			seen = append(seen, p.Offset)
		}
	}
	var want []uint64
	for _, s := range all {
		if !slices.ContainsFunc(lost, func(l sent) bool { return l.pos == s.pos }) {
			want = append(want, s.pos.Offset)
		}
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("pub/sub carried offsets %v, want %v (all but the lost ones)", seen, want)
	}
}

// TestGatewayClusterCrossNode: two nodes on the Redis Cluster, channels on
// every master. Subscribers of both nodes receive every publication made
// through node A, in order; a client that left recovers on the other node
// from its last position, and a position of another epoch is refused.
func TestGatewayClusterCrossNode(t *testing.T) {
	prefix := testenv.KeyPrefix()
	a := startGatewayNode(t, clusterClient(t), prefix, "gw-a-"+newEpoch())
	b := startGatewayNode(t, clusterClient(t), prefix, "gw-b-"+newEpoch())
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	defer cancel()

	// 20 channels, spread over the three masters: 7, 7 and 6.
	cc := a.engine.Broker.cluster
	const nch = 20
	var channels []string
	perMaster := map[string][]int{} // master address -> indexes into channels
	base := "broadcast:x_" + newEpoch()
	for i := 0; len(channels) < nch; i++ {
		if i > 10000 {
			t.Fatalf("no spread of channels over 3 masters found: %v", perMaster)
		}
		ch := fmt.Sprintf("%s_%d", base, i)
		m, err := cc.MasterForKey(ctx, a.engine.Broker.keys.channel(ch))
		if err != nil {
			t.Fatalf("master of %s: %v", ch, err)
		}
		addr := m.Options().Addr
		if len(perMaster[addr]) >= 7 { // so 20 channels take 3 masters
			continue
		}
		perMaster[addr] = append(perMaster[addr], len(channels))
		channels = append(channels, ch)
	}
	if len(perMaster) != 3 {
		t.Fatalf("channels on %d masters, want 3: %v", len(perMaster), perMaster)
	}

	// Subscribers: two clients on B share the channels, one on A takes
	// every other channel, and the mover, on B, takes one channel of each
	// master; it will leave and come back on A.
	subsB := []*gwClient{dialGateway(t, b, "u_b1"), dialGateway(t, b, "u_b2")}
	subA := dialGateway(t, a, "u_a1")
	mover := dialGateway(t, b, "u_mover")
	var moverChans []int
	for _, idx := range perMaster {
		moverChans = append(moverChans, idx[0])
	}
	slices.Sort(moverChans)
	onB := func(i int) *gwClient { return subsB[i%2] }
	for i, ch := range channels {
		onB(i).subscribe(ch, nil)
		if i%2 == 0 {
			subA.subscribe(ch, nil)
		}
	}
	for _, i := range moverChans {
		mover.subscribe(channels[i], nil)
	}

	// publishRound publishes k messages on every channel through A, the
	// channels concurrently, each channel's in order.
	published := make([][]sent, nch)
	round := 0
	publishRound := func(k int) {
		t.Helper()
		round++
		var wg sync.WaitGroup
		errs := make(chan error, nch)
		for i, ch := range channels {
			wg.Go(func() {
				for j := range k {
					s, err := publishVia(ctx, a, ch, fmt.Sprintf(`{"ch":%d,"round":%d,"j":%d}`, i, round, j))
					if err != nil {
						errs <- fmt.Errorf("publish on %s: %w", ch, err)
						return
					}
					published[i] = append(published[i], s)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for i, ch := range channels {
			checkOffsets(t, ch, published[i], 1)
		}
	}

	// Round 1: everyone gets everything.
	const m, k, l = 10, 5, 5
	publishRound(m)
	for i, ch := range channels {
		onB(i).expectExactly(ch, published[i])
		if i%2 == 0 {
			subA.expectExactly(ch, published[i])
		}
	}
	for _, i := range moverChans {
		mover.expectExactly(channels[i], published[i])
	}

	// The mover leaves at offset m on its channels; k more are published.
	left := mover.c.Positions()
	for _, i := range moverChans {
		want := wire.Position{Epoch: published[i][0].pos.Epoch, Offset: m}
		if got := left[channels[i]]; got != want {
			t.Fatalf("mover's position on %s = %+v, want %+v", channels[i], got, want)
		}
	}
	mover.close()
	publishRound(k)

	// A client on B asks for one channel from a position of another epoch:
	// not recovered, and live from the current position on.
	bogusCh := moverChans[0]
	bogus := dialGateway(t, b, "u_bogus")
	s := bogus.subscribe(channels[bogusCh], &wire.Position{Epoch: "bogus" + newEpoch(), Offset: 3})
	cur := wire.Position{Epoch: published[bogusCh][0].pos.Epoch, Offset: m + k}
	if s.Recovered || s.Position != cur {
		t.Fatalf("sub %s since a bogus epoch: recovered %v at %+v, want false at %+v", channels[bogusCh], s.Recovered, s.Position, cur)
	}

	// The mover comes back on A, from where it left: it gets exactly the k
	// it missed, then the l published live.
	back := dialGateway(t, a, "u_mover")
	for _, i := range moverChans {
		ch := channels[i]
		since := left[ch]
		s := back.subscribe(ch, &since)
		want := wire.Position{Epoch: left[ch].Epoch, Offset: m + k}
		if !s.Recovered || s.Position != want {
			t.Fatalf("resubscribe %s on A since %+v: recovered %v at %+v, want true at %+v", ch, left[ch], s.Recovered, s.Position, want)
		}
	}
	for _, i := range moverChans {
		back.expectExactly(channels[i], published[i][m:m+k])
	}
	publishRound(l)
	for _, i := range moverChans {
		back.expectExactly(channels[i], published[i][m:])
	}
	bogus.expectExactly(channels[bogusCh], published[bogusCh][m+k:])

	// And the subscribers that stayed got all of it, once, in order.
	for i, ch := range channels {
		onB(i).expectExactly(ch, published[i])
		if i%2 == 0 {
			subA.expectExactly(ch, published[i])
		}
	}
}
