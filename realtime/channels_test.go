package realtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime/wire"
)

// hookExt owns a namespace for tests: it lets "member" users act and
// records each call, as clip and voice hooks will. With publish set, it
// takes client publications there.
type hookExt struct {
	ns      string
	publish RequestHandler
	mu      sync.Mutex
	calls   []string
}

func (e *hookExt) Namespaces() []Namespace {
	return []Namespace{{Name: e.ns, Publish: e.publish}}
}

func (e *hookExt) Authorize(ctx context.Context, s *Session, ch string, act Action) error {
	e.mu.Lock()
	e.calls = append(e.calls, s.User()+" "+act.String()+" "+ch)
	e.mu.Unlock()
	if strings.HasPrefix(s.User(), "member") {
		return nil
	}
	return partyline.Errorf(partyline.ErrForbidden, "not a member of %s", ch)
}

func (e *hookExt) Requests() map[string]RequestHandler { return nil }

func TestSubscribeAuthorization(t *testing.T) {
	clip := &hookExt{ns: wire.NSClip}
	voice := &hookExt{ns: wire.NSVoice}
	n := startNode(t, Options{}, clip, voice)
	for _, tc := range []struct {
		user, channel, want string
	}{
		{"u_a", "user:u_a", ""},
		{"u_a", "user:u_b", wire.CodeForbidden},
		{"u_a", "status:u_b", ""},
		{"u_a", "status:no/slash", wire.CodeBadRequest},
		{"u_a", "broadcast:finals-7", ""},
		{"member_1", "clip:c_77", ""},
		{"u_a", "clip:c_77", wire.CodeForbidden},
		{"member_1", "voice:r_9f2", ""},
		{"u_a", "voice:r_9f2", wire.CodeForbidden},
		{"u_a", "room:r_1", wire.CodeBadRequest}, // no extension registered room on this node
		{"u_a", "nope:x", wire.CodeBadRequest},
		{"u_a", "user:", wire.CodeBadRequest},
		{"u_a", "user", wire.CodeBadRequest},
		{"u_a", "user:a b", wire.CodeBadRequest},
		{"u_a", "broadcast:" + strings.Repeat("x", 130), wire.CodeBadRequest},
		{"u_a", "", wire.CodeBadRequest},
	} {
		t.Run(tc.user+" "+tc.channel, func(t *testing.T) {
			c := connect(t, n.url, tc.user)
			req := map[string]any{"type": "sub", "channel": tc.channel}
			if tc.want == "" {
				m := c.ok(req)
				if m.Epoch == "" {
					t.Fatalf("sub reply %s has no epoch", m.Raw)
				}
				return
			}
			c.errCode(req, tc.want)
		})
	}
	if len(clip.calls) == 0 || !strings.Contains(strings.Join(clip.calls, ","), "member_1 subscribe clip:c_77") {
		t.Fatalf("the clip hook was not asked: %v", clip.calls)
	}
	t.Run("an expired token cannot subscribe to anything", func(t *testing.T) {
		c := dial(t, n.url)
		c.errCode(map[string]any{"type": "hello", "token": "expired:u_a"}, wire.CodeUnauthorized)
		c.waitClose(5 * time.Second)
	})
}

func TestSubscribeLimitsAndUnsub(t *testing.T) {
	n := startNode(t, Options{MaxSubscriptions: 2})
	c := connect(t, n.url, "u_l")
	c.ok(map[string]any{"type": "sub", "channel": "broadcast:a"})
	c.ok(map[string]any{"type": "sub", "channel": "broadcast:b"})
	c.errCode(map[string]any{"type": "sub", "channel": "broadcast:c"}, wire.CodeLimitExceeded)
	c.ok(map[string]any{"type": "sub", "channel": "broadcast:b"}) // a second sub of one channel is not another subscription
	c.ok(map[string]any{"type": "unsub", "channel": "broadcast:a"})
	c.ok(map[string]any{"type": "unsub", "channel": "broadcast:never"})
	c.errCode(map[string]any{"type": "unsub", "channel": "bad channel"}, wire.CodeBadRequest)
	c.ok(map[string]any{"type": "sub", "channel": "broadcast:c"})

	// After unsub nothing more arrives.
	n.publish(t, "broadcast:a", `{"n":1}`)
	n.publish(t, "broadcast:c", `{"n":2}`)
	c.waitNote("the msg on broadcast:c", func(m wire.Message) bool { return m.Channel == "broadcast:c" })
	if got := c.msgs("broadcast:a"); len(got) != 0 {
		t.Fatalf("got %d msgs after unsub", len(got))
	}
	if hc := n.hub.lookup("broadcast:a"); hc != nil {
		t.Fatal("the hub still holds a channel nobody listens to")
	}
}

func TestPublicationFields(t *testing.T) {
	n := startNode(t, Options{})
	c := connect(t, n.url, "u_f")
	sub := c.ok(map[string]any{"type": "sub", "channel": "user:u_f"})
	code, body := n.apiCall(t, "POST", "/publish", `{"channel":"user:u_f","kind":"notice","data":{"text":"gg"}}`)
	if code != 200 {
		t.Fatalf("publish = %d %v", code, body)
	}
	m := c.waitNote("msg", func(m wire.Message) bool { return m.Type == wire.TypeMsg })
	if m.Channel != "user:u_f" || m.Offset != sub.Offset+1 || m.Epoch != sub.Epoch || m.Kind != "notice" ||
		m.MsgID == "" || m.TS == 0 || string(m.Data) != `{"text":"gg"}` {
		t.Fatalf("msg = %s", m.Raw)
	}
	if body["offset"] != float64(m.Offset) || body["epoch"] != m.Epoch {
		t.Fatalf("publish reply %v does not match the msg %s", body, m.Raw)
	}
}

func TestServerAPI(t *testing.T) {
	n := startNode(t, Options{})
	t.Run("the key is required", func(t *testing.T) {
		for _, key := range []string{"", "wrong"} {
			code, body := n.apiCallKey(t, "POST", "/publish", `{"channel":"user:u","kind":"k","data":{}}`, key)
			if code != 401 || body["status"] != float64(401) {
				t.Fatalf("key %q: %d %v", key, code, body)
			}
		}
	})
	t.Run("bad input is a 4xx problem", func(t *testing.T) {
		for _, tc := range []struct{ method, path, body string }{
			{"POST", "/publish", `{"channel":"nope:x","kind":"k","data":{}}`},
			{"POST", "/publish", `{"channel":"user:u","kind":"bad kind","data":{}}`},
			{"POST", "/publish", `{"channel":"user:u","kind":"k"}`},
			{"POST", "/publish", `{"channel":"user:u","kind":"k","data":{}`},
			{"POST", "/publish", `{"channel":"user:u","kind":"k","data":{},"x":1}`},
			{"POST", "/broadcast", `{"channels":[],"kind":"k","data":{}}`},
			{"POST", "/broadcast", `{"channels":["user:a","bad"],"kind":"k","data":{}}`},
			{"POST", "/disconnect", `{"user":"a/b"}`},
			{"POST", "/disconnect", `{"user":"u","code":1006}`},
			{"GET", "/presence?channel=bad", ""},
			{"GET", "/presence?channel=user:u_1", ""},
		} {
			code, body := n.apiCall(t, tc.method, tc.path, tc.body)
			if code != 400 || body["title"] == nil {
				t.Errorf("%s %s %s = %d %v, want a 400 problem", tc.method, tc.path, tc.body, code, body)
			}
		}
		var chans []string
		for i := 0; i < 1001; i++ {
			chans = append(chans, fmt.Sprintf("user:u%d", i))
		}
		b, _ := json.Marshal(map[string]any{"channels": chans, "kind": "k", "data": map[string]int{}})
		if code, _ := n.apiCall(t, "POST", "/broadcast", string(b)); code != 400 {
			t.Errorf("1001 channels = %d, want 400", code)
		}
		if code, _ := n.apiCall(t, "POST", "/publish", `{"channel":"room:r","kind":"k","data":{}}`); code != 400 {
			t.Errorf("publish to a room on a node where no extension registered room = %d, want 400", code)
		}
	})
	t.Run("broadcast", func(t *testing.T) {
		a := connect(t, n.url, "u_ba")
		b := connect(t, n.url, "u_bb")
		a.ok(map[string]any{"type": "sub", "channel": "user:u_ba"})
		b.ok(map[string]any{"type": "sub", "channel": "user:u_bb"})
		code, body := n.apiCall(t, "POST", "/broadcast", `{"channels":["user:u_ba","user:u_bb"],"kind":"clip.new","data":{"clip":"c_1"}}`)
		if code != 200 {
			t.Fatalf("broadcast = %d %v", code, body)
		}
		results := body["results"].([]any)
		if len(results) != 2 || results[1].(map[string]any)["channel"] != "user:u_bb" || results[1].(map[string]any)["offset"] != float64(1) {
			t.Fatalf("results = %v", results)
		}
		for _, c := range []*wsClient{a, b} {
			c.waitNote("clip.new", func(m wire.Message) bool { return m.Kind == "clip.new" })
		}
	})
	t.Run("disconnect closes every socket of the user", func(t *testing.T) {
		c1 := connect(t, n.url, "u_d")
		c2 := connect(t, n.url, "u_d")
		other := connect(t, n.url, "u_other")
		code, body := n.apiCall(t, "POST", "/disconnect", `{"user":"u_d","code":4003,"reason":"logout"}`)
		if code != 200 || body["closed"] != float64(2) {
			t.Fatalf("disconnect = %d %v", code, body)
		}
		for _, c := range []*wsClient{c1, c2} {
			if got := c.waitClose(5 * time.Second); got != 4003 {
				t.Fatalf("close code = %d, want 4003", got)
			}
		}
		other.ok(map[string]any{"type": "ping"})
	})
	t.Run("presence", func(t *testing.T) {
		c := connect(t, n.url, "u_p")
		c.ok(map[string]any{"type": "sub", "channel": "broadcast:pres"})
		code, body := n.apiCall(t, "GET", "/presence?channel=broadcast:pres", "")
		if code != 200 || body["count"] != float64(1) {
			t.Fatalf("presence = %d %v", code, body)
		}
	})
	t.Run("off without a key", func(t *testing.T) {
		off, err := New(Options{Auth: testAuth{}})
		if err != nil {
			t.Fatal(err)
		}
		rec := newRecorder()
		off.ServerAPI().ServeHTTP(rec, newRequest("POST", "/publish", `{}`))
		if rec.Code != 404 {
			t.Fatalf("status = %d, want 404", rec.Code)
		}
	})
}

func TestPresenceEvents(t *testing.T) {
	n := startNode(t, Options{}, &hookExt{ns: wire.NSRoom})
	ch := "room:lobby"
	a := connect(t, n.url, "member_pa")
	a.ok(map[string]any{"type": "sub", "channel": ch})
	b1 := connect(t, n.url, "member_pb")
	b1.ok(map[string]any{"type": "sub", "channel": ch})
	a.waitNote("join of member_pb", func(m wire.Message) bool { return m.Event == wire.EventJoin && m.User == "member_pb" })
	b2 := connect(t, n.url, "member_pb")
	b2.ok(map[string]any{"type": "sub", "channel": ch})

	m := a.ok(map[string]any{"type": "presence", "channel": ch})
	var got PresenceReply
	if err := json.Unmarshal(m.Raw, &got); err != nil {
		t.Fatal(err)
	}
	want := PresenceReply{Count: 2, Members: []presenceMember{{"member_pa", 1}, {"member_pb", 2}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("presence = %+v, want %+v", got, want)
	}
	b2.ok(map[string]any{"type": "unsub", "channel": ch}) // not the last connection: no leave
	b1.ok(map[string]any{"type": "unsub", "channel": ch}) // the last: leave
	a.waitNote("leave of member_pb", func(m wire.Message) bool { return m.Event == wire.EventLeave && m.User == "member_pb" })
	joins, leaves := 0, 0
	for _, m := range a.notifications() {
		if m.User == "member_pb" && m.Event == wire.EventJoin {
			joins++
		}
		if m.User == "member_pb" && m.Event == wire.EventLeave {
			leaves++
		}
	}
	if joins != 1 || leaves != 1 {
		t.Fatalf("member_pb: %d joins and %d leaves, want 1 and 1", joins, leaves)
	}

	// A broadcast audience is counted but not announced.
	bc := "broadcast:finals"
	a.ok(map[string]any{"type": "sub", "channel": bc})
	b1.ok(map[string]any{"type": "sub", "channel": bc})
	m = a.ok(map[string]any{"type": "presence", "channel": bc})
	if !strings.Contains(string(m.Raw), `"count":2`) {
		t.Fatalf("broadcast presence = %s", m.Raw)
	}
	for _, m := range a.notifications() {
		if m.Channel == bc && m.Type == wire.TypeEvent {
			t.Fatalf("join event on a broadcast channel: %s", m.Raw)
		}
	}
	a.errCode(map[string]any{"type": "presence", "channel": "user:member_pa"}, wire.CodeBadRequest)
	a.errCode(map[string]any{"type": "presence", "channel": "user:member_pb"}, wire.CodeForbidden)
}

func TestTyping(t *testing.T) {
	room := &hookExt{ns: wire.NSRoom}
	n := startNode(t, Options{TypingInterval: time.Hour}, room)
	ch := "room:r_t"
	a := connect(t, n.url, "member_a")
	b := connect(t, n.url, "member_b")
	a.ok(map[string]any{"type": "sub", "channel": ch})
	b.ok(map[string]any{"type": "sub", "channel": ch})
	for i := 0; i < 5; i++ {
		a.send(map[string]any{"type": "typing", "channel": ch})
	}
	a.send(map[string]any{"type": "typing", "channel": "room:not_subscribed"})
	b.waitNote("typing", func(m wire.Message) bool { return m.Event == wire.EventTyping && m.From == "member_a" })
	a.ok(map[string]any{"type": "ping"}) // every typing above has been handled
	b.ok(map[string]any{"type": "ping"})
	count := 0
	for _, m := range b.notifications() {
		if m.Event == wire.EventTyping {
			count++
		}
	}
	if count != 1 {
		t.Fatalf("%d typing events, want 1 (throttled)", count)
	}
}

func TestStatus(t *testing.T) {
	n := startNode(t, Options{OfflineDelay: 200 * time.Millisecond, PublishRate: 100})
	watcher := connect(t, n.url, "u_w")
	sub := watcher.ok(map[string]any{"type": "sub", "channel": "status:u_s"})
	if !bytes.Contains(sub.Raw, []byte(`"status":{"status":"offline"`)) {
		t.Fatalf("sub reply %s lacks the offline status", sub.Raw)
	}
	s := connect(t, n.url, "u_s")
	watcher.waitNote("online", func(m wire.Message) bool {
		return m.Kind == wire.KindStatus && bytes.Contains(m.Data, []byte(`"online"`))
	})
	s.ok(map[string]any{"type": "status", "status": "in_game", "game": "valorant", "text": "ranked"})
	m := watcher.waitNote("in_game", func(m wire.Message) bool { return bytes.Contains(m.Data, []byte(`"in_game"`)) })
	if m.From != "u_s" || !bytes.Contains(m.Data, []byte(`"game":"valorant"`)) {
		t.Fatalf("status msg = %s", m.Raw)
	}
	again := connect(t, n.url, "u_w")
	sub = again.ok(map[string]any{"type": "sub", "channel": "status:u_s"})
	if !bytes.Contains(sub.Raw, []byte(`"status":"in_game","game":"valorant","text":"ranked"`)) {
		t.Fatalf("sub reply %s lacks the current status", sub.Raw)
	}
	s.errCode(map[string]any{"type": "status", "status": "sleeping"}, wire.CodeBadRequest)
	s.errCode(map[string]any{"type": "status", "status": "online", "text": strings.Repeat("x", 200)}, wire.CodeTooLarge)

	// A reconnect within the delay does not flap the status.
	s.ws.CloseNow()
	s2 := connect(t, n.url, "u_s")
	time.Sleep(400 * time.Millisecond) // twice the offline delay: the time is the subject
	for _, m := range watcher.notifications() {
		if bytes.Contains(m.Data, []byte(`"offline"`)) {
			t.Fatalf("status flapped to offline on a quick reconnect: %s", m.Raw)
		}
	}
	s2.ws.CloseNow()
	watcher.waitNote("offline", func(m wire.Message) bool { return bytes.Contains(m.Data, []byte(`"offline"`)) })
}

func TestRateLimit(t *testing.T) {
	n := startNode(t, Options{PublishRate: 1})
	c := connect(t, n.url, "u_rl")
	limited := 0
	for i := 0; i < 40 && c.closeErr() == nil; i++ {
		id := uint64(5000 + i)
		err := c.ws.Write(context.Background(), 1, []byte(fmt.Sprintf(`{"type":"status","id":%d,"status":"online"}`, id)))
		if err != nil {
			break // the server closed meanwhile
		}
		var m wire.Message
		c.waitUntil("reply or close", 5*time.Second, func() bool {
			m = c.replies[id]
			return m.Type != "" || c.closed != nil
		})
		if m.Type == "" {
			break // closed
		}
		if m.Type == wire.TypeError {
			if m.Code != wire.CodeRateLimited {
				t.Fatalf("error %s, want rate_limited", m.Raw)
			}
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("never rate limited")
	}
	if code := c.waitClose(5 * time.Second); code != wire.CloseRateLimitAbused {
		t.Fatalf("close code = %d, want 4008", code)
	}
}
