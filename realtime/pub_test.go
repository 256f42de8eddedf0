package realtime

import (
	"context"
	"strings"
	"testing"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime/wire"
)

// TestPubThroughTheCore checks that the gateway owns pub: every
// namespace's publish rule is applied by the core, the owner's Authorize
// is asked with ActionPublish, and only then does the owner's Publish run.
func TestPubThroughTheCore(t *testing.T) {
	published := make(chan string, 16)
	room := &hookExt{ns: wire.NSRoom, publish: func(ctx context.Context, s *Session, req *wire.Request) (any, error) {
		published <- s.User() + " " + req.Channel
		return map[string]string{"took": req.Channel}, nil
	}}
	clip := &hookExt{ns: wire.NSClip} // declares no Publish
	n := startNode(t, Options{PublishRate: 1000}, room, clip)

	for _, tc := range []struct {
		user, channel, want string
		asked               *hookExt // whose Authorize must see the publish
	}{
		{"member_1", "room:r_1", "", room},
		{"u_a", "room:r_1", wire.CodeForbidden, room},
		{"member_1", "clip:c_1", wire.CodeForbidden, clip},
		{"u_a", "clip:c_1", wire.CodeForbidden, clip},
		{"u_a", "user:u_a", wire.CodeForbidden, nil},
		{"u_a", "status:u_a", wire.CodeForbidden, nil},
		{"u_a", "broadcast:b", wire.CodeForbidden, nil},
		{"u_a", "voice:v", wire.CodeBadRequest, nil}, // nobody registered voice here
		{"u_a", "bad channel", wire.CodeBadRequest, nil},
	} {
		t.Run(tc.user+" "+tc.channel, func(t *testing.T) {
			c := connect(t, n.url, tc.user)
			req := map[string]any{"type": "pub", "channel": tc.channel, "data": map[string]int{"n": 1}}
			if tc.want == "" {
				m := c.ok(req)
				if !strings.Contains(string(m.Raw), `"took":"`+tc.channel+`"`) {
					t.Fatalf("ok reply %s does not carry the owner's result", m.Raw)
				}
				if got := <-published; got != tc.user+" "+tc.channel {
					t.Fatalf("owner's Publish got %q", got)
				}
			} else {
				c.errCode(req, tc.want)
			}
			if tc.asked != nil {
				want := tc.user + " publish " + tc.channel
				tc.asked.mu.Lock()
				calls := strings.Join(tc.asked.calls, ",")
				tc.asked.mu.Unlock()
				if !strings.Contains(calls, want) {
					t.Fatalf("Authorize was not asked %q; calls: %s", want, calls)
				}
			}
		})
	}
	select {
	case got := <-published:
		t.Fatalf("a refused pub reached the owner's Publish: %s", got)
	default:
	}
}

// TestPubRateBeforeOwner checks that the connection's publish rate is
// applied by the core before the owner is asked anything.
func TestPubRateBeforeOwner(t *testing.T) {
	room := &hookExt{ns: wire.NSRoom, publish: func(ctx context.Context, s *Session, req *wire.Request) (any, error) {
		return nil, nil
	}}
	n := startNode(t, Options{PublishRate: 1}, room)
	c := connect(t, n.url, "member_r")
	req := func() map[string]any {
		return map[string]any{"type": "pub", "channel": "room:r", "data": map[string]int{}}
	}
	c.ok(req())
	c.ok(req()) // the burst is twice the rate
	room.mu.Lock()
	before := len(room.calls)
	room.mu.Unlock()
	c.errCode(req(), wire.CodeRateLimited)
	room.mu.Lock()
	after := len(room.calls)
	room.mu.Unlock()
	if after != before {
		t.Fatalf("a rate-limited pub asked the owner's Authorize (%d calls, then %d)", before, after)
	}
}

// TestRegister checks the namespace and request tables' rules.
func TestRegister(t *testing.T) {
	n, err := New(Options{Auth: testAuth{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Register(&hookExt{ns: wire.NSUser}); err == nil {
		t.Error("an extension took the core's user namespace")
	}
	if err := n.Register(&hookExt{ns: wire.NSRoom}); err != nil {
		t.Fatalf("Register(room): %v", err)
	}
	if err := n.Register(&hookExt{ns: wire.NSRoom}); err == nil {
		t.Error("room got two owners")
	}
	if err := n.Register(&hookExt{ns: "bad:ns"}); err == nil {
		t.Error("a namespace with a colon was registered")
	}
	if err := n.Register(reqExt{"sub"}); err == nil {
		t.Error("an extension took the built-in sub request")
	}
	if err := n.Register(reqExt{"pub"}); err == nil {
		t.Error("an extension took the built-in pub request")
	}
	if err := n.Register(reqExt{"x.one"}); err != nil {
		t.Fatalf("Register(x.one): %v", err)
	}
	if err := n.Register(reqExt{"x.one"}); err == nil {
		t.Error("x.one got two handlers")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	<-n.Started()
	if err := n.Register(&hookExt{ns: wire.NSClip}); err == nil {
		t.Error("Register after Run succeeded")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// reqExt serves one request type and owns no namespace.
type reqExt struct{ typ string }

func (e reqExt) Namespaces() []Namespace { return nil }
func (e reqExt) Authorize(context.Context, *Session, string, Action) error {
	return partyline.ErrForbidden
}
func (e reqExt) Requests() map[string]RequestHandler {
	return map[string]RequestHandler{e.typ: func(context.Context, *Session, *wire.Request) (any, error) { return nil, nil }}
}
