package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/wire"
)

// describe renders a message for order assertions.
func describe(m wire.Message) string {
	switch m.Type {
	case wire.TypeMsg, wire.TypeGap, TypeRecoveryFailed:
		return fmt.Sprintf("%s %s %s/%d", m.Type, m.Channel, m.Epoch, m.Offset)
	case TypeResubscribeFailed:
		return fmt.Sprintf("%s %s %s", m.Type, m.Channel, m.Code)
	case wire.TypeReconnect:
		return fmt.Sprintf("%s %d", m.Type, m.AfterMS)
	}
	return m.Type
}

func recvN(t *testing.T, c *Client, n int) []string {
	t.Helper()
	var got []string
	for range n {
		got = append(got, describe(recv(t, c)))
	}
	return got
}

// resubs reads the resubscriptions of a new connection: n sub requests,
// keyed by channel.
func resubs(pc *peerConn, n int) (map[string]wire.Request, bool) {
	out := make(map[string]wire.Request)
	for range n {
		r, _, ok := pc.expect(wire.TypeSub)
		if !ok {
			return out, false
		}
		out[r.Channel] = r
	}
	return out, true
}

func TestResubscribeAfterDrop(t *testing.T) {
	type resub struct {
		since  map[string]*wire.Position
		frames int
	}
	got := make(chan resub, 1)
	drop := make(chan struct{})
	p := newPeer(t, func(pc *peerConn) {
		if _, ok := pc.hello(); !ok {
			return
		}
		switch pc.n {
		case 1:
			start := map[string]string{
				"room:a":     `{"epoch":"ea","offset":4}`,
				"room:b":     `{"epoch":"eb","offset":0}`,
				"status:u_2": `{"epoch":"es","offset":7,"status":{"status":"online"}}`,
			}
			for range start {
				r, _, ok := pc.expect(wire.TypeSub)
				if !ok {
					return
				}
				pc.send(okMsg(r.ID, rawJSON(start[r.Channel])))
			}
			pc.send(
				pubMsg("room:a", "ea", 5, "m5"),
				pubMsg("room:b", "eb", 1, "m1"),
				pubMsg("room:a", "ea", 6, "m6"),
				pubMsg("room:a", "ea", 7, "m7"),
			)
			select {
			case <-drop:
			case <-pc.ctx.Done():
			}
			pc.drop()
		case 2:
			frames := pc.frames
			subs, ok := resubs(pc, 3)
			if !ok {
				return
			}
			r := resub{since: make(map[string]*wire.Position), frames: pc.frames - frames}
			for ch, s := range subs {
				r.since[ch] = s.Since
			}
			got <- r
			pc.send(
				okMsg(subs["room:a"].ID, rawJSON(`{"epoch":"ea","offset":9,"recovered":true}`)),
				pubMsg("room:a", "ea", 8, "m8"),
				pubMsg("room:a", "ea", 9, "m9"),
			)
			pc.send(okMsg(subs["room:b"].ID, rawJSON(`{"epoch":"eb","offset":1,"recovered":true}`)))
			pc.send(okMsg(subs["status:u_2"].ID, rawJSON(`{"epoch":"es","offset":7,"recovered":true}`)))
			pc.serve()
		}
	})
	c := dial(t, p, nil)
	ctx := context.Background()
	for _, ch := range []string{"room:a", "room:b", "status:u_2"} {
		if _, err := c.Subscribe(ctx, ch); err != nil {
			t.Fatalf("Subscribe %s: %v", ch, err)
		}
	}
	want := []string{"msg room:a ea/5", "msg room:b eb/1", "msg room:a ea/6", "msg room:a ea/7"}
	if diff := cmp.Diff(want, recvN(t, c, 4)); diff != "" {
		t.Fatalf("before the drop (-want +got):\n%s", diff)
	}
	close(drop)

	want = []string{TypeDisconnected, TypeReconnected, "msg room:a ea/8", "msg room:a ea/9"}
	if diff := cmp.Diff(want, recvN(t, c, 4)); diff != "" {
		t.Errorf("after the drop (-want +got):\n%s", diff)
	}
	r := take(t, got)
	wantSince := map[string]*wire.Position{
		"room:a":     {Epoch: "ea", Offset: 7},
		"room:b":     {Epoch: "eb", Offset: 1},
		"status:u_2": {Epoch: "es", Offset: 7},
	}
	if diff := cmp.Diff(wantSince, r.since); diff != "" {
		t.Errorf("since of the resubscriptions (-want +got):\n%s", diff)
	}
	if r.frames != 1 {
		t.Errorf("resubscriptions came in %d frames, want them packed in 1", r.frames)
	}
	wantPos := map[string]wire.Position{
		"room:a":     {Epoch: "ea", Offset: 9},
		"room:b":     {Epoch: "eb", Offset: 1},
		"status:u_2": {Epoch: "es", Offset: 7},
	}
	testenv.Eventually(t, "positions after the replay", func() bool { return cmp.Equal(wantPos, c.Positions()) })
	if _, err := c.Ping(ctx); err != nil {
		t.Errorf("Ping after the reconnect: %v", err)
	}
}

// TestResubscribeMidReplay loses connections right after a recovered reply
// and in the middle of its replay: each resubscription must start after the
// last message delivered, never at the offset the reply announced.
func TestResubscribeMidReplay(t *testing.T) {
	since := make(chan *wire.Position, 4)
	p := newPeer(t, func(pc *peerConn) {
		r, ok := pc.helloThen(wire.TypeSub)
		if !ok {
			return
		}
		if pc.n > 1 {
			since <- r.Since
		}
		switch pc.n {
		case 1:
			pc.send(okMsg(r.ID, rawJSON(`{"epoch":"ea","offset":40}`)))
			pc.drop()
		case 2:
			// Recovered, but gone before the replay.
			pc.send(okMsg(r.ID, rawJSON(`{"epoch":"ea","offset":57,"recovered":true}`)))
			pc.drop()
		case 3:
			pc.send(okMsg(r.ID, rawJSON(`{"epoch":"ea","offset":57,"recovered":true}`)))
			for off := uint64(41); off <= 45; off++ {
				pc.send(pubMsg("room:a", "ea", off, "m"))
			}
			pc.drop()
		default:
			pc.send(okMsg(r.ID, rawJSON(`{"epoch":"ea","offset":57,"recovered":true}`)))
			pc.serve()
		}
	})
	c := dial(t, p, nil)
	if _, err := c.Subscribe(context.Background(), "room:a"); err != nil {
		t.Fatal(err)
	}
	want := []string{TypeDisconnected, TypeReconnected, TypeDisconnected, TypeReconnected}
	for off := 41; off <= 45; off++ {
		want = append(want, fmt.Sprintf("msg room:a ea/%d", off))
	}
	want = append(want, TypeDisconnected, TypeReconnected)
	if diff := cmp.Diff(want, recvN(t, c, len(want))); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	got := []*wire.Position{take(t, since), take(t, since), take(t, since)}
	wantSince := []*wire.Position{{Epoch: "ea", Offset: 40}, {Epoch: "ea", Offset: 40}, {Epoch: "ea", Offset: 45}}
	if diff := cmp.Diff(wantSince, got); diff != "" {
		t.Errorf("since of the resubscriptions (-want +got):\n%s", diff)
	}
}

func TestRecoveryFailedIsSurfaced(t *testing.T) {
	p := newPeer(t, func(pc *peerConn) {
		if _, ok := pc.hello(); !ok {
			return
		}
		switch pc.n {
		case 1:
			for range 2 {
				r, _, ok := pc.expect(wire.TypeSub)
				if !ok {
					return
				}
				pc.send(okMsg(r.ID, rawJSON(`{"epoch":"ea","offset":3}`)))
			}
			pc.send(pubMsg("room:a", "ea", 4, "m4"))
			pc.drop()
		case 2:
			subs, ok := resubs(pc, 2)
			if !ok {
				return
			}
			// The stream lost its history, and the user left room:x.
			pc.send(
				okMsg(subs["room:a"].ID, rawJSON(`{"epoch":"eb","offset":0,"recovered":false}`)),
				errMsg(subs["room:x"].ID, wire.CodeForbidden, "not a member of room:x"),
				pubMsg("room:a", "eb", 1, "n1"),
				gapMsg("room:a", "eb", 5),
				pubMsg("room:a", "eb", 5, "n5"),
			)
			pc.serve()
		}
	})
	c := dial(t, p, nil)
	for _, ch := range []string{"room:a", "room:x"} {
		if _, err := c.Subscribe(context.Background(), ch); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var reload []string
	for range 8 {
		m := recv(t, c)
		got = append(got, describe(m))
		if NeedsReload(m) {
			reload = append(reload, m.Channel)
		}
	}
	want := []string{
		"msg room:a ea/4",
		TypeDisconnected,
		TypeReconnected,
		TypeRecoveryFailed + " room:a eb/0",
		TypeResubscribeFailed + " room:x forbidden",
		"msg room:a eb/1",
		"gap room:a eb/5",
		"msg room:a eb/5",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"room:a", "room:a"}, reload); diff != "" {
		t.Errorf("NeedsReload channels (-want +got):\n%s", diff)
	}
	wantPos := map[string]wire.Position{"room:a": {Epoch: "eb", Offset: 5}}
	testenv.Eventually(t, "positions", func() bool { return cmp.Equal(wantPos, c.Positions()) })
}

func TestReconnectNotice(t *testing.T) {
	const afterMS = 150
	var (
		mu       sync.Mutex
		noticeAt time.Time
		second   time.Time
	)
	p := newPeer(t, func(pc *peerConn) {
		if pc.n == 2 {
			mu.Lock()
			second = pc.accepted
			mu.Unlock()
		}
		if _, ok := pc.hello(); !ok {
			return
		}
		if pc.n == 1 {
			mu.Lock()
			noticeAt = time.Now()
			mu.Unlock()
			pc.send(string(wire.AppendReconnect(nil, afterMS, "shutdown")))
			pc.closeWith(wire.CloseServiceRestart, "drain")
			return
		}
		pc.serve()
	})
	// A backoff this short would reconnect long before after_ms.
	c := dial(t, p, func(o *Options) { o.BackoffBase, o.BackoffCap = time.Millisecond, time.Millisecond })

	m := recv(t, c)
	if m.Type != wire.TypeReconnect || m.AfterMS != afterMS || m.Reason != "shutdown" {
		t.Fatalf("first message = %+v, want the reconnect notice", m)
	}
	d := recv(t, c)
	if d.Type != TypeDisconnected || !strings.Contains(d.Reason, "1012") || d.Code != "1012" {
		t.Errorf("second message = %+v, want %s with the 1012 close", d, TypeDisconnected)
	}
	if m := recv(t, c); m.Type != TypeReconnected {
		t.Errorf("third message = %+v, want %s", m, TypeReconnected)
	}
	mu.Lock()
	waited := second.Sub(noticeAt)
	mu.Unlock()
	if waited < afterMS*time.Millisecond {
		t.Errorf("reconnected %v after the notice, before after_ms", waited)
	}
}

// TestReconnectNoticeWithoutClose: a server that sends the notice but never
// closes gets closed by the client at the deadline.
func TestReconnectNoticeWithoutClose(t *testing.T) {
	closed := make(chan websocket.StatusCode, 1)
	p := newPeer(t, func(pc *peerConn) {
		if _, ok := pc.hello(); !ok {
			return
		}
		if pc.n == 1 {
			pc.send(string(wire.AppendReconnect(nil, 20, "shutdown")))
			_, _, err := pc.next()
			closed <- websocket.CloseStatus(err)
			return
		}
		pc.serve()
	})
	c := dial(t, p, nil)
	want := []string{"reconnect 20", TypeDisconnected, TypeReconnected}
	if diff := cmp.Diff(want, recvN(t, c, 3)); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	if got := take(t, closed); got != websocket.StatusNormalClosure {
		t.Errorf("the client closed the draining connection with %d, want 1000", got)
	}
}

func TestPendingRequestsFailOnDisconnect(t *testing.T) {
	pinged := make(chan struct{})
	release := make(chan struct{})
	p := newPeer(t, func(pc *peerConn) {
		if pc.n == 2 {
			// Hold the new connection back until the test has a request
			// waiting for it.
			select {
			case <-release:
			case <-pc.ctx.Done():
				return
			}
		}
		if _, ok := pc.hello(); !ok {
			return
		}
		if pc.n == 1 {
			if _, _, ok := pc.expect(wire.TypePing); ok {
				close(pinged)
			}
			pc.drop()
			return
		}
		pc.serve()
	})
	c := dial(t, p, nil)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Ping(context.Background())
		errc <- err
	}()
	take(t, pinged)
	if err := take(t, errc); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("pending Ping error = %v, want ErrDisconnected", err)
	}
	if m := recv(t, c); m.Type != TypeDisconnected {
		t.Fatalf("got %+v, want %s", m, TypeDisconnected)
	}
	if err := c.Typing(context.Background(), "room:a"); !errors.Is(err, ErrDisconnected) {
		t.Errorf("Typing while disconnected = %v, want ErrDisconnected", err)
	}
	// A request made while reconnecting waits for the new connection.
	go func() {
		_, err := c.Ping(context.Background())
		errc <- err
	}()
	close(release)
	if err := take(t, errc); err != nil {
		t.Errorf("Ping made while reconnecting: %v", err)
	}
}

func TestCloseCodes(t *testing.T) {
	tests := []struct {
		name      string
		code      int // close code of the first connection; 0 drops it
		disable   bool
		refuse    bool // refuse the second hello: unauthorized, then 4003
		reconnect bool
		check     func(t *testing.T, err error)
	}{
		{name: "protocol violation", code: wire.CloseProtocol, check: func(t *testing.T, err error) {
			if CloseCode(err) != wire.CloseProtocol {
				t.Errorf("Err = %v, want a 4000 close", err)
			}
		}},
		{name: "unauthorized, refresh refused", code: wire.CloseUnauthorized, refuse: true, check: func(t *testing.T, err error) {
			if ErrorCode(err) != wire.CodeUnauthorized {
				t.Errorf("Err = %v, want the unauthorized hello reply", err)
			}
		}},
		{name: "unauthorized, refresh accepted", code: wire.CloseUnauthorized, reconnect: true},
		{name: "reconnect disabled", disable: true, check: func(t *testing.T, err error) {
			if err == nil || errors.Is(err, ErrClosed) || CloseCode(err) != -1 {
				t.Errorf("Err = %v, want the dropped connection", err)
			}
		}},
		{name: "drain without notice", code: wire.CloseServiceRestart, reconnect: true},
		{name: "try again later", code: wire.CloseTryAgainLater, reconnect: true},
		{name: "rate limit abused", code: wire.CloseRateLimitAbused, reconnect: true},
		{name: "slow consumer", code: wire.CloseSlowConsumer, reconnect: true},
		{name: "going away", code: wire.CloseGoingAway, reconnect: true},
		{name: "internal error", code: wire.CloseInternal, reconnect: true},
		{name: "dropped", reconnect: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokens := make(chan string, 4)
			var issued sync.Mutex
			n := 0
			p := newPeer(t, func(pc *peerConn) {
				r, _, ok := pc.expect(wire.TypeHello)
				if !ok {
					return
				}
				tokens <- r.Token
				if pc.n == 2 && tt.refuse {
					pc.send(errMsg(r.ID, wire.CodeUnauthorized, "token revoked"))
					pc.closeWith(wire.CloseUnauthorized, "unauthorized")
					return
				}
				pc.send(okMsg(r.ID, helloResult))
				if pc.n > 1 {
					pc.serve()
					return
				}
				if tt.code == 0 {
					pc.drop()
				} else {
					pc.closeWith(tt.code, "test")
				}
			})
			c := dial(t, p, func(o *Options) {
				o.DisableReconnect = tt.disable
				o.Token = func(context.Context) (string, error) {
					issued.Lock()
					defer issued.Unlock()
					n++
					return fmt.Sprint("tok-", n), nil
				}
			})
			if tt.reconnect {
				want := []string{TypeDisconnected, TypeReconnected}
				if diff := cmp.Diff(want, recvN(t, c, 2)); diff != "" {
					t.Fatalf("messages (-want +got):\n%s", diff)
				}
				if _, err := c.Ping(context.Background()); err != nil {
					t.Errorf("Ping after the reconnect: %v", err)
				}
				if diff := cmp.Diff([]string{"tok-1", "tok-2"}, []string{take(t, tokens), take(t, tokens)}); diff != "" {
					t.Errorf("tokens (-want +got):\n%s", diff)
				}
				return
			}
			waitDone(t, c)
			tt.check(t, c.Err())
			wantConns := 1
			if tt.refuse {
				wantConns = 2
			}
			// The run goroutine has ended: no dial is in flight anymore.
			if got := p.conns(); got != wantConns {
				t.Errorf("the client made %d connections, want %d", got, wantConns)
			}
			if len(tokens) != wantConns {
				t.Errorf("the client fetched %d tokens, want %d", len(tokens), wantConns)
			}
			if _, err := c.Ping(context.Background()); !errors.Is(err, ErrClosed) {
				t.Errorf("Ping after giving up = %v, want ErrClosed", err)
			}
		})
	}
}

// TestCloseWhileReconnecting closes a client whose server keeps refusing it.
func TestCloseWhileReconnecting(t *testing.T) {
	p := newPeer(t, func(pc *peerConn) {
		if pc.n == 1 {
			if _, ok := pc.hello(); ok {
				pc.drop()
			}
			return
		}
		pc.closeWith(wire.CloseTryAgainLater, "full")
	})
	c := dial(t, p, nil)
	if m := recv(t, c); m.Type != TypeDisconnected {
		t.Fatalf("got %+v, want %s", m, TypeDisconnected)
	}
	testenv.Eventually(t, "a few refused attempts", func() bool { return p.conns() >= 3 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err = %v, want ErrClosed", c.Err())
	}
}

func rawJSON(s string) json.RawMessage { return json.RawMessage(s) }
