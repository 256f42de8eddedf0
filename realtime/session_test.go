package realtime

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/wire"
)

func TestHello(t *testing.T) {
	n := startNode(t, Options{HelloTimeout: 300 * time.Millisecond, MaxConnsPerUser: 2})

	t.Run("ok reply carries session, user, node and limits", func(t *testing.T) {
		c := dial(t, n.url)
		m := c.ok(map[string]any{"type": "hello", "id": 1, "token": "u_42", "client": "overlay/2.3.1"})
		want := []string{`"session":"s_`, `"user":"u_42"`, `"node":"gw-test"`, `"heartbeat_ms":25000`,
			`"limits":{"max_frame_bytes":65536,"max_subscriptions":500,"publish_per_sec":10}`}
		for _, w := range want {
			if !bytes.Contains(m.Raw, []byte(w)) {
				t.Errorf("hello reply %s lacks %s", m.Raw, w)
			}
		}
		if m.ID != 1 {
			t.Errorf("reply id = %d, want 1", m.ID)
		}
	})
	t.Run("subprotocol is selected", func(t *testing.T) {
		ws, _, err := dialRaw(t, n.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		if ws.Subprotocol() != wire.Subprotocol {
			t.Fatalf("subprotocol = %q, want %q", ws.Subprotocol(), wire.Subprotocol)
		}
	})
	t.Run("a request before hello is unauthorized and the connection stays", func(t *testing.T) {
		c := dial(t, n.url)
		c.errCode(map[string]any{"type": "sub", "channel": "user:u_1"}, wire.CodeUnauthorized)
		c.ok(map[string]any{"type": "hello", "token": "u_1"})
		c.ok(map[string]any{"type": "sub", "channel": "user:u_1"})
	})
	t.Run("no hello closes with 4001", func(t *testing.T) {
		c := dial(t, n.url)
		if code := c.waitClose(5 * time.Second); code != wire.CloseHelloTimeout {
			t.Fatalf("close code = %d, want 4001", code)
		}
	})
	t.Run("a bad token is unauthorized, then 4003", func(t *testing.T) {
		for _, tok := range []string{"", "expired:u_1", "no/slash"} {
			c := dial(t, n.url)
			c.errCode(map[string]any{"type": "hello", "token": tok}, wire.CodeUnauthorized)
			if code := c.waitClose(5 * time.Second); code != wire.CloseUnauthorized {
				t.Fatalf("token %q: close code = %d, want 4003", tok, code)
			}
		}
	})
	t.Run("a token expiring during the session closes with 4003", func(t *testing.T) {
		c := connect(t, n.url, "ttl300:u_exp")
		if code := c.waitClose(5 * time.Second); code != wire.CloseUnauthorized {
			t.Fatalf("close code = %d, want 4003", code)
		}
	})
	t.Run("over the per-user cap closes with 1013", func(t *testing.T) {
		connect(t, n.url, "u_cap")
		connect(t, n.url, "u_cap")
		c := dial(t, n.url)
		c.errCode(map[string]any{"type": "hello", "token": "u_cap"}, wire.CodeLimitExceeded)
		if code := c.waitClose(5 * time.Second); code != wire.CloseTryAgainLater {
			t.Fatalf("close code = %d, want 1013", code)
		}
	})
	t.Run("hello twice is a bad request", func(t *testing.T) {
		c := connect(t, n.url, "u_twice")
		c.errCode(map[string]any{"type": "hello", "token": "u_twice"}, wire.CodeBadRequest)
	})
	t.Run("ping", func(t *testing.T) {
		c := connect(t, n.url, "u_ping")
		m := c.ok(map[string]any{"type": "ping"})
		if !bytes.Contains(m.Raw, []byte(`"ts":`)) {
			t.Fatalf("ping reply %s has no ts", m.Raw)
		}
	})
}

func TestProtocolViolations(t *testing.T) {
	n := startNode(t, Options{MaxFrameBytes: 1024})
	for _, tc := range []struct {
		name  string
		frame string
		code  int
	}{
		{"not JSON", `{"type":`, wire.CloseProtocol},
		{"not an object", `[1,2]`, wire.CloseProtocol},
		{"no type", `{"id":5}`, wire.CloseProtocol},
		{"request without id", `{"type":"sub","channel":"user:u_pv"}`, wire.CloseProtocol},
		{"id zero", `{"type":"ping","id":0}`, wire.CloseProtocol},
		{"negative id", `{"type":"ping","id":-1}`, wire.CloseProtocol},
		{"string id", `{"type":"ping","id":"7"}`, wire.CloseProtocol},
		{"unknown request type", `{"type":"frobnicate","id":3}`, wire.CloseProtocol},
		{"over the frame limit", `{"type":"ping","id":3,"pad":"` + strings.Repeat("x", 2000) + `"}`, wire.CloseTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := connect(t, n.url, "u_pv")
			c.sendRaw([]byte(tc.frame))
			if code := c.waitClose(5 * time.Second); code != tc.code {
				t.Fatalf("close code = %d, want %d", code, tc.code)
			}
		})
	}
	t.Run("binary frame", func(t *testing.T) {
		c := connect(t, n.url, "u_pv")
		if err := c.ws.Write(context.Background(), websocket.MessageBinary, []byte(`{"type":"ping","id":2}`)); err != nil {
			t.Fatal(err)
		}
		if code := c.waitClose(5 * time.Second); code != wire.CloseProtocol {
			t.Fatalf("close code = %d, want 4000", code)
		}
	})
	t.Run("malformed fields are a bad request and the connection stays", func(t *testing.T) {
		c := connect(t, n.url, "u_pv")
		c.errCode(map[string]any{"type": "sub", "channel": 5}, wire.CodeBadRequest)
		c.errCode(map[string]any{"type": "sub", "channel": "user:u_pv", "since": "yesterday"}, wire.CodeBadRequest)
		c.ok(map[string]any{"type": "ping"})
	})
	t.Run("several messages in one frame get their replies in order", func(t *testing.T) {
		c := connect(t, n.url, "u_pv")
		c.sendRaw([]byte("{\"type\":\"ping\",\"id\":71}\n\n{\"type\":\"ping\",\"id\":72}\n{\"type\":\"ping\",\"id\":73}"))
		for _, id := range []uint64{71, 72, 73} {
			if m := c.reply(id); m.Type != wire.TypeOK {
				t.Fatalf("reply %d = %s", id, m.Raw)
			}
		}
	})
}

func TestOrigin(t *testing.T) {
	n := startNode(t, Options{AllowedOrigins: []string{"*.example.com", "localhost:3000"}})
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"https://app.example.com", true},
		{"http://localhost:3000", true},
		{"https://evil.com", false},
		{"https://example.com.evil.com", false},
		{"null", false},
		{strings.Replace(n.srv.URL, "ws", "http", 1), true}, // same origin
	} {
		hdr := http.Header{}
		if tc.origin != "" {
			hdr.Set("Origin", tc.origin)
		}
		ws, resp, err := dialRaw(t, n.url, hdr)
		if tc.ok {
			if err != nil {
				t.Errorf("origin %q refused: %v", tc.origin, err)
				continue
			}
			ws.CloseNow()
			continue
		}
		if err == nil {
			ws.CloseNow()
			t.Errorf("origin %q accepted", tc.origin)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q: response %v, want 403", tc.origin, resp)
		}
	}
}

// TestHandshakeErrors checks that a request to /v1/ws that is not a
// WebSocket handshake gets a problem+json answer, never Accept's plain
// text.
func TestHandshakeErrors(t *testing.T) {
	n := startNode(t, Options{})
	upgrade := http.Header{
		"Connection":            {"keep-alive, Upgrade"},
		"Upgrade":               {"websocket"},
		"Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
	}
	with := func(key string, vals ...string) http.Header {
		h := upgrade.Clone()
		if len(vals) == 0 {
			h.Del(key)
		} else {
			h[http.CanonicalHeaderKey(key)] = vals
		}
		return h
	}
	for _, tc := range []struct {
		name   string
		method string
		header http.Header
		status int
		want   map[string]string // response headers
	}{
		{"plain GET", "GET", nil, http.StatusUpgradeRequired,
			map[string]string{"Upgrade": "websocket", "Connection": "Upgrade"}},
		{"no upgrade in Connection", "GET", with("Connection", "keep-alive"), http.StatusUpgradeRequired,
			map[string]string{"Upgrade": "websocket"}},
		{"another protocol", "GET", with("Upgrade", "h2c"), http.StatusUpgradeRequired,
			map[string]string{"Upgrade": "websocket"}},
		{"POST", "POST", upgrade, http.StatusMethodNotAllowed, map[string]string{"Allow": "GET"}},
		{"plain POST", "POST", nil, http.StatusMethodNotAllowed, map[string]string{"Allow": "GET"}},
		{"old version", "GET", with("Sec-WebSocket-Version", "8"), http.StatusUpgradeRequired,
			map[string]string{"Upgrade": "websocket", "Sec-Websocket-Version": "13"}},
		{"no version", "GET", with("Sec-WebSocket-Version"), http.StatusUpgradeRequired,
			map[string]string{"Sec-Websocket-Version": "13"}},
		{"no key", "GET", with("Sec-WebSocket-Key"), http.StatusBadRequest, nil},
		{"short key", "GET", with("Sec-WebSocket-Key", "c2hvcnQ="), http.StatusBadRequest, nil},
		{"key not base64", "GET", with("Sec-WebSocket-Key", "not base64 at all!!!!!!"), http.StatusBadRequest, nil},
		{"two keys", "GET", with("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ=="), http.StatusBadRequest, nil},
		// The Origin is checked first, as before.
		{"plain GET from a foreign origin", "GET", http.Header{"Origin": {"https://evil.com"}}, http.StatusForbidden, nil},
		// A valid handshake still upgrades, whatever else Connection lists.
		{"handshake", "GET", upgrade, http.StatusSwitchingProtocols,
			map[string]string{"Upgrade": "websocket"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, n.srv.URL+"/v1/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := n.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			for k, want := range tc.want {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if tc.status == http.StatusSwitchingProtocols {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type = %q, want application/problem+json", ct)
			}
			var p struct {
				Status int    `json:"status"`
				Title  string `json:"title"`
				Detail string `json:"detail"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || p.Status != tc.status || p.Title == "" || p.Detail == "" {
				t.Fatalf("problem = %+v, %v; want status %d with a title and detail", p, err, tc.status)
			}
		})
	}
}

func TestHeartbeat(t *testing.T) {
	n := startNode(t, Options{HeartbeatInterval: 100 * time.Millisecond})
	t.Run("a client that answers pings stays", func(t *testing.T) {
		c := connect(t, n.url, "u_hb")
		time.Sleep(500 * time.Millisecond) // five heartbeats: the time is the subject of the test
		c.ok(map[string]any{"type": "ping"})
	})
	t.Run("a client that stops answering is closed", func(t *testing.T) {
		c := connect(t, n.url, "u_hb2")
		before := n.connCount()
		c.pause() // no reads: pings go unanswered
		testenv.Eventually(t, "the silent connection to be closed", func() bool { return n.connCount() < before })
		c.resume()
	})
}
