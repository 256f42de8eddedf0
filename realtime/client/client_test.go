package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/wire"
)

func TestEndpoint(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080/v1/ws"},
		{in: "http://127.0.0.1:8080/", want: "http://127.0.0.1:8080/v1/ws"},
		{in: "https://chat.example/edge", want: "https://chat.example/edge/v1/ws"},
		{in: "ws://127.0.0.1:8080/v1/ws", want: "ws://127.0.0.1:8080/v1/ws"},
		{in: "wss://chat.example/v1/ws?region=eu", want: "wss://chat.example/v1/ws?region=eu"},
		{in: "ftp://chat.example", wantErr: true},
		{in: "127.0.0.1:8080", wantErr: true},
		{in: "http:///v1/ws", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := endpoint(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("endpoint(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("endpoint(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDialHello(t *testing.T) {
	type handshake struct {
		path, offered, selected string
		hello                   []byte
	}
	seen := make(chan handshake, 1)
	p := newPeer(t, func(pc *peerConn) {
		r, raw, ok := pc.expect(wire.TypeHello)
		if !ok {
			return
		}
		seen <- handshake{
			path:     pc.r.URL.Path,
			offered:  pc.r.Header.Get("Sec-WebSocket-Protocol"),
			selected: pc.c.Subprotocol(),
			hello:    raw,
		}
		pc.send(okMsg(r.ID, helloResult))
		pc.serve()
	})
	c := dial(t, p, func(o *Options) {
		o.Token = func(context.Context) (string, error) { return "tok-1", nil }
	})

	h := take(t, seen)
	if h.path != "/v1/ws" || h.offered != wire.Subprotocol || h.selected != wire.Subprotocol {
		t.Errorf("handshake: path %q, offered %q, selected %q; want /v1/ws and %s", h.path, h.offered, h.selected, wire.Subprotocol)
	}
	want := map[string]any{"type": "hello", "id": 1.0, "token": "tok-1", "client": "test/1"}
	if diff := cmp.Diff(want, jsonMap(t, h.hello)); diff != "" {
		t.Errorf("hello on the wire (-want +got):\n%s", diff)
	}
	got := []string{c.Session(), c.User(), c.Node()}
	if diff := cmp.Diff([]string{"s_1", "u_42", "gw-1"}, got); diff != "" {
		t.Errorf("session, user, node (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Limits{MaxFrameBytes: 65536, MaxSubscriptions: 500, PublishPerSec: 10}, c.Limits()); diff != "" {
		t.Errorf("Limits (-want +got):\n%s", diff)
	}
}

func TestDialRefused(t *testing.T) {
	t.Run("unauthorized hello", func(t *testing.T) {
		p := newPeer(t, func(pc *peerConn) {
			r, _, ok := pc.expect(wire.TypeHello)
			if !ok {
				return
			}
			pc.send(errMsg(r.ID, wire.CodeUnauthorized, "token expired"))
			pc.closeWith(wire.CloseUnauthorized, "unauthorized")
		})
		_, err := Dial(context.Background(), Options{
			URL:        p.srv.URL,
			Token:      func(context.Context) (string, error) { return "old", nil },
			HTTPClient: p.srv.Client(),
		})
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Dial error = %v, want an *Error", err)
		}
		if diff := cmp.Diff(&Error{Code: wire.CodeUnauthorized, Message: "token expired"}, e); diff != "" {
			t.Errorf("Dial error (-want +got):\n%s", diff)
		}
	})

	t.Run("closed during hello", func(t *testing.T) {
		p := newPeer(t, func(pc *peerConn) {
			if _, _, ok := pc.expect(wire.TypeHello); ok {
				pc.closeWith(wire.CloseTryAgainLater, "over the connection limit")
			}
		})
		_, err := Dial(context.Background(), Options{
			URL:        p.srv.URL,
			Token:      func(context.Context) (string, error) { return "tok", nil },
			HTTPClient: p.srv.Client(),
		})
		if got := CloseCode(err); got != wire.CloseTryAgainLater {
			t.Errorf("CloseCode(%v) = %d, want %d", err, got, wire.CloseTryAgainLater)
		}
	})

	t.Run("token error", func(t *testing.T) {
		p := newPeer(t, func(pc *peerConn) { t.Error("dialed without a token") })
		_, err := Dial(context.Background(), Options{
			URL:        p.srv.URL,
			Token:      func(context.Context) (string, error) { return "", errTest },
			HTTPClient: p.srv.Client(),
		})
		if !errors.Is(err, errTest) {
			t.Errorf("Dial error = %v, want the token error", err)
		}
	})

	t.Run("bad options", func(t *testing.T) {
		if _, err := Dial(context.Background(), Options{URL: "http://127.0.0.1:1"}); err == nil {
			t.Error("Dial without Token succeeded")
		}
	})
}

// TestRequests checks each request's exact JSON against PROTOCOL.md and how
// its reply is decoded.
func TestRequests(t *testing.T) {
	replies := map[string]func(id uint64) string{
		wire.TypePub:    func(id uint64) string { return okMsg(id, map[string]any{"msg_id": "01JD8X", "offset": 58}) },
		wire.TypeEdit:   func(id uint64) string { return okMsg(id, map[string]any{"offset": 59}) },
		wire.TypeDelete: func(id uint64) string { return okMsg(id, map[string]any{"offset": 60}) },
		wire.TypePing:   func(id uint64) string { return okMsg(id, map[string]any{"ts": 1732760000999}) },
		wire.TypePresence: func(id uint64) string {
			return okMsg(id, json.RawMessage(`{"count":2,"members":[{"user":"u_1","conns":2},{"user":"u_2","conns":1}]}`))
		},
		wire.TypeHistory: func(id uint64) string {
			return okMsg(id, json.RawMessage(`{"messages":[{"type":"msg","channel":"room:r_9f2","offset":58,"epoch":"k3j2","id":"01JD8X","kind":"message","from":"u_1","ts":5,"data":{"text":"gg"}}],"more":true}`))
		},
		wire.TypeSub: func(id uint64) string {
			return okMsg(id, json.RawMessage(`{"epoch":"k3j2","offset":57,"recovered":true,"status":{"status":"in_game","game":"valorant"}}`))
		},
		"voice.join": func(id uint64) string { return okMsg(id, map[string]any{"participants": []any{}}) },
	}
	seen := make(chan []byte, 1)
	p := newPeer(t, func(pc *peerConn) {
		if _, ok := pc.hello(); !ok {
			return
		}
		for {
			r, raw, err := pc.next()
			if err != nil {
				return
			}
			seen <- raw
			if r.ID == 0 {
				continue
			}
			if f := replies[r.Type]; f != nil {
				pc.send(f(r.ID))
			} else {
				pc.send(okMsg(r.ID, nil))
			}
		}
	})
	c := dial(t, p, nil)
	ctx := context.Background()

	tests := []struct {
		name string
		call func() (any, error)
		want map[string]any // the request minus its id
		got  any            // the decoded result
	}{
		{
			name: "publish",
			call: func() (any, error) {
				id, off, err := c.Publish(ctx, "room:r_9f2", map[string]string{"text": "gg"}, "7f1c")
				return []any{id, off}, err
			},
			want: map[string]any{"type": "pub", "channel": "room:r_9f2", "data": map[string]any{"text": "gg"}, "idem": "7f1c"},
			got:  []any{"01JD8X", uint64(58)},
		},
		{
			name: "publish raw without idem",
			call: func() (any, error) {
				id, off, err := c.Publish(ctx, "dm:u_1:u_2", json.RawMessage(`{"text":"hi"}`), "")
				return []any{id, off}, err
			},
			want: map[string]any{"type": "pub", "channel": "dm:u_1:u_2", "data": map[string]any{"text": "hi"}},
			got:  []any{"01JD8X", uint64(58)},
		},
		{
			name: "edit",
			call: func() (any, error) { return c.Edit(ctx, "room:r_9f2", "01JD8X", map[string]string{"text": "gg wp"}) },
			want: map[string]any{"type": "edit", "channel": "room:r_9f2", "msg_id": "01JD8X", "data": map[string]any{"text": "gg wp"}},
			got:  uint64(59),
		},
		{
			name: "delete",
			call: func() (any, error) { return c.Delete(ctx, "room:r_9f2", "01JD8X") },
			want: map[string]any{"type": "delete", "channel": "room:r_9f2", "msg_id": "01JD8X"},
			got:  uint64(60),
		},
		{
			name: "history",
			call: func() (any, error) {
				msgs, more, err := c.History(ctx, "room:r_9f2", "01JD8Y", 50)
				var ids []string
				for _, m := range msgs {
					ids = append(ids, fmt.Sprintf("%s@%d:%s", m.MsgID, m.Offset, m.Data))
				}
				return []any{ids, more}, err
			},
			want: map[string]any{"type": "history", "channel": "room:r_9f2", "before": "01JD8Y", "limit": 50.0},
			got:  []any{[]string{`01JD8X@58:{"text":"gg"}`}, true},
		},
		{
			name: "history with defaults",
			call: func() (any, error) {
				_, more, err := c.History(ctx, "room:r_9f2", "", 0)
				return more, err
			},
			want: map[string]any{"type": "history", "channel": "room:r_9f2"},
			got:  true,
		},
		{
			name: "read",
			call: func() (any, error) { return nil, c.Read(ctx, "room:r_9f2", "01JD8X") },
			want: map[string]any{"type": "read", "channel": "room:r_9f2", "msg_id": "01JD8X"},
		},
		{
			name: "presence",
			call: func() (any, error) { return c.Presence(ctx, "room:r_9f2") },
			want: map[string]any{"type": "presence", "channel": "room:r_9f2"},
			got:  Presence{Count: 2, Members: []Member{{User: "u_1", Conns: 2}, {User: "u_2", Conns: 1}}},
		},
		{
			name: "status",
			call: func() (any, error) { return nil, c.SetStatus(ctx, wire.StatusInGame, "valorant", "ranked") },
			want: map[string]any{"type": "status", "status": "in_game", "game": "valorant", "text": "ranked"},
		},
		{
			name: "ping",
			call: func() (any, error) { return c.Ping(ctx) },
			want: map[string]any{"type": "ping"},
			got:  int64(1732760000999),
		},
		{
			name: "subscribe since",
			call: func() (any, error) {
				return c.Subscribe(ctx, "status:u_2", Since(wire.Position{Epoch: "k3j2", Offset: 41}))
			},
			want: map[string]any{"type": "sub", "channel": "status:u_2", "since": map[string]any{"epoch": "k3j2", "offset": 41.0}},
			got: Subscription{
				Channel:   "status:u_2",
				Position:  wire.Position{Epoch: "k3j2", Offset: 57},
				Recovered: true,
				Status:    json.RawMessage(`{"status":"in_game","game":"valorant"}`),
			},
		},
		{
			name: "unsubscribe",
			call: func() (any, error) { return nil, c.Unsubscribe(ctx, "status:u_2") },
			want: map[string]any{"type": "unsub", "channel": "status:u_2"},
		},
		{
			name: "generic request",
			call: func() (any, error) {
				m, err := c.Request(ctx, map[string]any{"type": "voice.join", "room": "r_9f2"})
				return string(m.Raw), err
			},
			want: map[string]any{"type": "voice.join", "room": "r_9f2"},
			got:  `{"type":"ok","id":ID,"participants":[]}`,
		},
		{
			name: "typing",
			call: func() (any, error) { return nil, c.Typing(ctx, "room:r_9f2") },
			want: map[string]any{"type": "typing", "channel": "room:r_9f2"},
		},
		{
			name: "send",
			call: func() (any, error) {
				return nil, c.Send(ctx, map[string]any{"type": "voice.answer", "room": "r_9f2", "sdp": "v=0"})
			},
			want: map[string]any{"type": "voice.answer", "room": "r_9f2", "sdp": "v=0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.call()
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			req := jsonMap(t, take(t, seen))
			id, hasID := req["id"].(float64)
			delete(req, "id")
			if notification := tt.want["type"] == "typing" || tt.want["type"] == "voice.answer"; notification == hasID {
				t.Errorf("request has id %v; want an id: %v", req["id"], !notification)
			}
			if diff := cmp.Diff(tt.want, req); diff != "" {
				t.Errorf("request on the wire (-want +got):\n%s", diff)
			}
			if s, ok := got.(string); ok {
				got = strings.Replace(s, fmt.Sprintf(`"id":%v`, id), `"id":ID`, 1)
			}
			if diff := cmp.Diff(tt.got, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("bad messages are refused before sending", func(t *testing.T) {
		bad := []any{
			map[string]any{"room": "r_9f2"},
			map[string]any{"type": "voice.join", "id": 3},
			[]string{"voice.join"},
		}
		for _, m := range bad {
			if _, err := c.Request(ctx, m); err == nil {
				t.Errorf("Request(%v) succeeded", m)
			}
			if err := c.Send(ctx, m); err == nil {
				t.Errorf("Send(%v) succeeded", m)
			}
		}
		if _, err := c.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if got := jsonMap(t, take(t, seen))["type"]; got != "ping" {
			t.Errorf("the server saw %v before the ping", got)
		}
	})
}

func TestConcurrentRequests(t *testing.T) {
	const n = 64
	ids := make(chan []uint64, 1)
	p := newPeer(t, func(pc *peerConn) {
		if _, ok := pc.hello(); !ok {
			return
		}
		// Collect every request before answering any, then answer in
		// reverse order, several replies to a frame.
		var reqs []wire.Request
		for len(reqs) < n {
			r, _, err := pc.next()
			if err != nil {
				return
			}
			reqs = append(reqs, r)
		}
		var got []uint64
		var batch []string
		for i := len(reqs) - 1; i >= 0; i-- {
			r := reqs[i]
			got = append(got, r.ID)
			var data struct{ N int }
			_ = json.Unmarshal(r.Data, &data)
			batch = append(batch, okMsg(r.ID, map[string]any{"msg_id": fmt.Sprint("m", data.N), "offset": data.N}))
			if len(batch) == 5 {
				pc.send(batch...)
				batch = nil
			}
		}
		pc.send(batch...)
		ids <- got
		pc.serve()
	})
	c := dial(t, p, nil)

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msgID, offset, err := c.Publish(context.Background(), "room:r", map[string]int{"n": i}, "")
			if err != nil {
				errs <- err
				return
			}
			if want := fmt.Sprint("m", i); msgID != want || offset != uint64(i) {
				errs <- fmt.Errorf("publish %d got reply %s/%d", i, msgID, offset)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := take(t, ids)
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	for i, id := range got {
		if id == 0 || (i > 0 && id == got[i-1]) {
			t.Fatalf("request ids are not unique positive integers: %v", got)
		}
	}
}

func TestFramesAreSplit(t *testing.T) {
	p := newPeer(t, func(pc *peerConn) {
		r, ok := pc.helloThen(wire.TypeSub)
		if !ok {
			return
		}
		// The reply, two publications and an event in one frame, with an
		// empty line and a trailing separator.
		pc.send(
			okMsg(r.ID, map[string]any{"epoch": "k3j2", "offset": 10}),
			pubMsg("room:a", "k3j2", 11, "01A"),
			"",
			`{"type":"event","channel":"room:a","event":"typing","from":"u_1","future":true}`,
			pubMsg("room:a", "k3j2", 12, "01B")+"\n",
		)
		pc.serve()
	})
	c := dial(t, p, nil)
	sub, err := c.Subscribe(context.Background(), "room:a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wire.Position{Epoch: "k3j2", Offset: 10}, sub.Position); diff != "" {
		t.Errorf("Subscribe position (-want +got):\n%s", diff)
	}
	var got []string
	for range 3 {
		m := recv(t, c)
		got = append(got, fmt.Sprintf("%s %s %d %s %s%s", m.Type, m.Channel, m.Offset, m.MsgID, m.Event, m.Data))
	}
	want := []string{
		`msg room:a 11 01A {"text":"gg"}`,
		`event room:a 0  typing`,
		`msg room:a 12 01B {"text":"gg"}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	testenv.Eventually(t, "position 12", func() bool {
		return c.Positions()["room:a"] == wire.Position{Epoch: "k3j2", Offset: 12}
	})
}

func TestErrorReply(t *testing.T) {
	p := newPeer(t, func(pc *peerConn) {
		r, ok := pc.helloThen(wire.TypePub)
		if !ok {
			return
		}
		pc.send(errMsg(r.ID, wire.CodeForbidden, "not a member of room:abc"))
		pc.serve()
	})
	c := dial(t, p, nil)
	_, _, err := c.Publish(context.Background(), "room:abc", map[string]string{"text": "hi"}, "")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Publish error = %v, want an *Error", err)
	}
	if diff := cmp.Diff(&Error{Code: wire.CodeForbidden, Message: "not a member of room:abc"}, e); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	if ErrorCode(err) != wire.CodeForbidden {
		t.Errorf("ErrorCode = %q", ErrorCode(err))
	}
	if _, err := c.Ping(context.Background()); err != nil {
		t.Errorf("the connection did not survive an error reply: %v", err)
	}
}

func TestRequestTimeout(t *testing.T) {
	late := make(chan uint64, 1)
	release := make(chan struct{})
	p := newPeer(t, func(pc *peerConn) {
		r, ok := pc.helloThen(wire.TypePing)
		if !ok {
			return
		}
		late <- r.ID
		select {
		case <-release:
		case <-pc.ctx.Done():
			return
		}
		pc.send(okMsg(r.ID, map[string]any{"ts": 1}))
		pc.serve()
	})
	c := dial(t, p, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Ping(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping error = %v, want a deadline", err)
	}
	take(t, late)
	close(release)
	// The late reply is dropped; the next request gets its own.
	ts, err := c.Ping(context.Background())
	if err != nil || ts != 1732760000999 {
		t.Fatalf("Ping = %d, %v; want the second reply", ts, err)
	}
	if n := len(c.Messages()); n != 0 {
		t.Errorf("the late reply reached Messages (%d messages)", n)
	}
}

func TestTooLarge(t *testing.T) {
	p := newPeer(t, func(pc *peerConn) {
		r, _, ok := pc.expect(wire.TypeHello)
		if !ok {
			return
		}
		pc.send(okMsg(r.ID, map[string]any{"session": "s", "user": "u", "node": "n", "limits": map[string]any{"max_frame_bytes": 256}}))
		r, raw, ok := pc.expect(wire.TypePing)
		if !ok {
			t.Errorf("the oversized request reached the server: %.80s", raw)
			return
		}
		pc.send(okMsg(r.ID, map[string]any{"ts": 1}))
		pc.serve()
	})
	c := dial(t, p, nil)
	_, _, err := c.Publish(context.Background(), "room:a", map[string]string{"text": strings.Repeat("x", 300)}, "")
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Publish error = %v, want ErrTooLarge", err)
	}
	if err := c.Typing(context.Background(), "room:"+strings.Repeat("a", 300)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Typing error = %v, want ErrTooLarge", err)
	}
	if _, err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestClose(t *testing.T) {
	closed := make(chan websocket.StatusCode, 1)
	pinged := make(chan struct{})
	p := newPeer(t, func(pc *peerConn) {
		if _, ok := pc.hello(); !ok {
			return
		}
		// Read the ping and never answer it.
		if _, _, ok := pc.expect(wire.TypePing); ok {
			close(pinged)
		}
		_, _, err := pc.next()
		closed <- websocket.CloseStatus(err)
	})
	c := dial(t, p, nil)
	pingErr := make(chan error, 1)
	go func() {
		_, err := c.Ping(context.Background())
		pingErr <- err
	}()
	take(t, pinged)

	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := take(t, closed); got != websocket.StatusNormalClosure {
		t.Errorf("the server saw close status %d, want 1000", got)
	}
	if err := take(t, pingErr); !errors.Is(err, ErrClosed) {
		t.Errorf("pending Ping error = %v, want ErrClosed", err)
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done is open after Close")
	}
	if _, ok := <-c.Messages(); ok {
		t.Error("Messages is open after Close")
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err = %v, want ErrClosed", c.Err())
	}
	if _, err := c.Ping(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Ping after Close = %v, want ErrClosed", err)
	}
	if err := c.Typing(context.Background(), "room:a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Typing after Close = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCloseWhileBlocked closes a client whose application stopped reading
// Messages, so the run goroutine is stuck delivering.
func TestCloseWhileBlocked(t *testing.T) {
	p := newPeer(t, func(pc *peerConn) {
		if _, ok := pc.hello(); !ok {
			return
		}
		for i := range 5 {
			pc.send(pubMsg("room:a", "e", uint64(i+1), "m"))
		}
		pc.serve()
	})
	c := dial(t, p, func(o *Options) { o.MessageBuffer = 1 })
	testenv.Eventually(t, "a full buffer", func() bool { return len(c.Messages()) == 1 })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, c)
}
