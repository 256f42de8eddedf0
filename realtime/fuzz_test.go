package realtime

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/wire"
)

// FuzzDispatch sends arbitrary frames over a real, authenticated
// connection. The gateway must never panic, must keep answering on the
// connection, or must close it with a protocol close code.
func FuzzDispatch(f *testing.F) {
	for _, s := range []string{
		`{"type":"ping","id":2}`,
		`{"type":"sub","id":3,"channel":"user:u_fz"}`,
		`{"type":"sub","id":3,"channel":"broadcast:x","since":{"epoch":"e","offset":5}}`,
		"{\"type\":\"sub\",\"id\":4,\"channel\":\"status:u_x\"}\n{\"type\":\"unsub\",\"id\":5,\"channel\":\"status:u_x\"}",
		`{"type":"presence","id":6,"channel":"broadcast:x"}`,
		`{"type":"status","id":7,"status":"in_game","game":"valorant"}`,
		`{"type":"typing","channel":"room:r"}`,
		`{"type":"hello","id":8,"token":"u_fz"}`,
		`{"type":"pub","id":9,"channel":"user:u_fz","data":{}}`,
		`{"type":"voice.join","id":10,"room":"r"}`,
		`{"type":"sub","id":11,"channel":"` + strings.Repeat("a", 200) + `"}`,
		`{"type":"sub","id":0}`, `{"type":`, `[]`, `{}`, "\n", `{"type":"ping","id":1e3}`,
	} {
		f.Add([]byte(s))
	}
	room := &hookExt{ns: wire.NSRoom}
	n, err := New(Options{Auth: testAuth{}, NodeID: "gw-fuzz", PublishRate: 1000, DisableWSFastPath: !testenv.FastPaths()})
	if err != nil {
		f.Fatal(err)
	}
	if err := n.Register(room); err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var panicked atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				panicked.Store(fmt.Sprint(v))
			}
		}()
		n.ServeHTTP(w, r)
	}))
	f.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
	})
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	for !n.running.Load() {
		time.Sleep(time.Millisecond)
	}

	var ws *websocket.Conn
	connect := func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		c.SetReadLimit(1 << 24)
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"hello","id":1,"token":"u_fz"}`)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil {
			t.Fatalf("hello: %v", err)
		}
		ws = c
	}
	f.Cleanup(func() {
		if ws != nil {
			ws.CloseNow()
		}
	})

	f.Fuzz(func(t *testing.T, frame []byte) {
		if ws == nil {
			connect(t)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		probe := []byte(`{"type":"ping","id":4294967295}`)
		if err := ws.Write(ctx, websocket.MessageText, frame); err == nil {
			_ = ws.Write(ctx, websocket.MessageText, probe)
		}
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				code := websocket.CloseStatus(err)
				switch code {
				case wire.CloseProtocol, wire.CloseTooBig, wire.CloseRateLimitAbused:
				default:
					t.Fatalf("connection ended with %v after frame %q", err, frame)
				}
				ws.CloseNow()
				ws = nil
				break
			}
			if strings.Contains(string(data), `"id":4294967295`) {
				break
			}
		}
		if v := panicked.Load(); v != nil {
			t.Fatalf("the gateway panicked: %v", v)
		}
	})
}
