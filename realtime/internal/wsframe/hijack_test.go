package wsframe

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
)

// The assumptions doc.go lists, checked against the library in go.mod:
// Accept hijacks through ResponseWriter, a data frame written beneath the
// library reaches its peer whole, and the library's close frame goes out
// through Conn.Write as one write, after which no data frame may follow.
func TestResponseWriterUnderTheLibrary(t *testing.T) {
	type accepted struct {
		ws *websocket.Conn
		fc *Conn
	}
	got := make(chan accepted, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &ResponseWriter{ResponseWriter: w}
		ws, err := websocket.Accept(rw, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			t.Errorf("Accept: %v", err)
			close(got)
			return
		}
		got <- accepted{ws, rw.Conn}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	a, ok := <-got
	if !ok {
		t.FailNow()
	}
	if a.fc == nil {
		t.Fatal("Accept did not hijack through ResponseWriter")
	}
	payload := strings.Repeat("x", 300) // a 16-bit length
	if err := a.fc.WriteText(append(make([]byte, HeaderMax), payload...)); err != nil {
		t.Fatal(err)
	}
	typ, p, err := client.Read(ctx)
	if err != nil || typ != websocket.MessageText || string(p) != payload {
		t.Fatalf("client read %v, %d bytes, %v; want the text frame written", typ, len(p), err)
	}
	closed := make(chan error, 1)
	go func() { closed <- a.ws.Close(websocket.StatusNormalClosure, "bye") }()
	if _, _, err := client.Read(ctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("client read after the close: %v, want close status 1000", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !a.fc.CloseSent() {
		t.Fatal("the library's close frame did not go through Conn.Write")
	}
	if err := a.fc.WriteText(append(make([]byte, HeaderMax), "late"...)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteText after the close: %v, want net.ErrClosed", err)
	}
}
