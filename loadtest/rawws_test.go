package loadtest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/partyline/partyline/realtime/wire"
)

// TestRawConn runs the lean client against a coder/websocket server that
// answers hello and sub, pings, sends a large message and closes with a
// code.
func TestRawConn(t *testing.T) {
	done := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wire.Subprotocol}})
		if err != nil {
			done <- err
			return
		}
		done <- func() error {
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			defer cancel()
			_, msg, err := c.Read(ctx)
			if err != nil {
				return err
			}
			if !strings.Contains(string(msg), `"type":"hello"`) || !strings.Contains(string(msg), `"channel":"user:u"`) {
				return errors.New("unexpected first frame: " + string(msg))
			}
			// A publication may come between the replies: its id is a
			// message id, a string.
			if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"ok","id":1}`+"\n"+
				`{"type":"msg","channel":"broadcast:b","offset":3,"id":"01JD8X","kind":"bench","data":{"sent":1}}`+"\n"+
				`{"type":"ok","id":2,"offset":0}`)); err != nil {
				return err
			}
			// Ping needs a reader for the pong.
			go func() { _, _, _ = c.Read(context.Background()) }()
			if err := c.Ping(ctx); err != nil {
				return err
			}
			big := `{"type":"msg","channel":"user:u","offset":1,"data":{"sent":5,"pad":"` + strings.Repeat("x", 70000) + `"}}`
			if err := c.Write(ctx, websocket.MessageText, []byte(big)); err != nil {
				return err
			}
			return c.Close(4009, "slow consumer")
		}()
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var d net.Dialer
	rc, err := dialRaw(ctx, d.DialContext, "ws"+strings.TrimPrefix(srv.URL, "http")+"/v1/ws", "tok", []string{"user:u"})
	if err != nil {
		t.Fatalf("dialRaw: %v", err)
	}
	msg, err := rc.next(nil)
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	if sc := scanMessage(msg); sc.kind != kindMsg || !sc.hasSent || sc.sent != 5 || len(msg) < 70000 {
		t.Errorf("message of %d bytes scanned as %+v", len(msg), sc)
	}
	_, err = rc.next(nil)
	if code := closeCode(err); code != 4009 {
		t.Errorf("close: %v (code %d), want 4009", err, code)
	}
	rc.closeNow()
	if err := <-done; err != nil {
		t.Errorf("server: %v", err)
	}

	if _, err := dialRaw(ctx, d.DialContext, "http://x", "tok", nil); err == nil {
		t.Error("dialRaw accepted an http URL")
	}
}
