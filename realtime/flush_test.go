package realtime

import (
	"slices"
	"testing"
	"time"

	"github.com/partyline/partyline/internal/testenv"
)

// skipWithoutFastPath skips a test of the fast path's own machinery when
// the suite runs with it off.
func skipWithoutFastPath(t *testing.T) {
	t.Helper()
	if !testenv.FastPaths() {
		t.Skipf("skipping: a test of the WebSocket fast path, which %s=off turns off", testenv.FastPathsEnv)
	}
}

// userConn returns user's one connection on n.
func (n *testNode) userConn(t *testing.T, user string) *Conn {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if cs := n.byUser[user]; len(cs) == 1 {
		return cs[0]
	}
	t.Fatalf("no single connection for %s", user)
	return nil
}

// DisableWSFastPath leaves the connection whole to the library: no
// wsframe.Conn beneath it, so its writer goroutine writes every frame with
// websocket.Conn.Write. On the fast path the data frames go beneath it.
// Both deliver, packed the same way.
func TestWSFastPathSwitch(t *testing.T) {
	for _, tc := range []struct {
		name string
		off  bool
	}{{"fast path", false}, {"library path", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.off {
				skipWithoutFastPath(t)
			}
			n := startNode(t, Options{DisableWSFastPath: tc.off})
			cl := connect(t, n.url, "u_sw")
			cl.ok(map[string]any{"type": "sub", "channel": "user:u_sw"})
			c := n.userConn(t, "u_sw")
			if got := c.wc == nil; got != tc.off {
				t.Fatalf("no wsframe.Conn under the connection: %v, want %v", got, tc.off)
			}
			want := []string{"1", "2", "3"}
			for _, d := range want {
				c.send([]byte(`{"type":"msg","channel":"user:u_sw","data":` + d + `}`))
			}
			cl.waitUntil("three messages", 10*time.Second, func() bool { return len(cl.notes) >= len(want) })
			cl.mu.Lock()
			var got []string
			for _, m := range cl.notes {
				got = append(got, string(m.Data))
			}
			cl.mu.Unlock()
			if !slices.Equal(got, want) {
				t.Fatalf("messages %q, want %q", got, want)
			}
		})
	}
}

// A failed write on the flusher must not make it wait: here a connection's
// close handshake is under way (its close frame sent, the client not
// reading), so closing its socket waits for the handshake to end. Another
// connection on the same flusher gets its message while it has not.
func TestFlusherDoesNotWaitOnAClosingConnection(t *testing.T) {
	skipWithoutFastPath(t)
	n := startNode(t, Options{})
	stuck := connect(t, n.url, "u_stuck")
	other := connect(t, n.url, "u_other")
	stuck.ok(map[string]any{"type": "sub", "channel": "user:u_stuck"})
	other.ok(map[string]any{"type": "sub", "channel": "user:u_other"})
	cs, co := n.userConn(t, "u_stuck"), n.userConn(t, "u_other")
	co.flusher = cs.flusher // both on one flusher; nothing is queued for either now

	stuck.pause()
	handshake := make(chan struct{})
	go func() {
		defer close(handshake)
		_ = cs.ws.Close(4000, "test") // sends the close frame, then waits for the client's
	}()
	testenv.Eventually(t, "the close frame to go out", cs.wc.CloseSent)
	cs.send([]byte(`{"type":"msg","channel":"user:u_stuck","data":1}`)) // its write fails
	co.send([]byte(`{"type":"msg","channel":"user:u_other","data":2}`))
	other.waitUntil("the other connection's message", 10*time.Second, func() bool {
		for _, m := range other.notes {
			if m.Channel == "user:u_other" {
				return true
			}
		}
		return false
	})
	select {
	case <-handshake:
		t.Fatal("the other connection's message came only after the close handshake ended: the flusher waited on it")
	default:
	}
	stuck.resume()
	<-handshake
}
