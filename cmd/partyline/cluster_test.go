package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/client"
	"github.com/partyline/partyline/realtime/wire"
)

// clusterEnv returns the settings that make nodes one cluster: a Redis
// database of their own, a shared store and a shared data dir (for the dev
// secret), and an API key.
func clusterEnv(t *testing.T) map[string]string {
	t.Helper()
	redisURL := testenv.RedisURL(t)
	// A logical database of its own keeps these nodes' keys apart from
	// other test packages running at the same time.
	redisURL = strings.TrimRight(strings.TrimSuffix(redisURL, "/0"), "/") + fmt.Sprintf("/%d", 1+rand.IntN(15))
	env := map[string]string{
		"PARTYLINE_REDIS_URL": redisURL,
		"PARTYLINE_DATA_DIR":  t.TempDir(),
		"PARTYLINE_API_KEY":   "cluster-test-key",
		"PARTYLINE_DEV":       "1",
	}
	if os.Getenv(testenv.DatabaseURLEnv) != "" {
		env["PARTYLINE_DATABASE_URL"] = testenv.PostgresURL(t)
	}
	return env
}

func sdk(t *testing.T, ctx context.Context, base, tok string) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx, client.Options{URL: base, DisableReconnect: true, MessageBuffer: 4096,
		Token: func(context.Context) (string, error) { return tok, nil }})
	if err != nil {
		t.Fatalf("dial %s: %v", base, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitMsg reads c's messages until one matches, failing after 15 s.
func waitMsg(t *testing.T, c *client.Client, what string, match func(wire.Message) bool) wire.Message {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				t.Fatalf("%s: the client stopped: %v", what, c.Err())
			}
			if match(m) {
				return m
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestClusterInProcess runs two nodes in this process on one Redis: a
// message, presence, status and a server-API disconnect all cross nodes.
func TestClusterInProcess(t *testing.T) {
	env := clusterEnv(t)
	n1 := startServer(t, env, "--data-dir", env["PARTYLINE_DATA_DIR"], "--node-id", "n1")
	n2 := startServer(t, env, "--data-dir", env["PARTYLINE_DATA_DIR"], "--node-id", "n2")
	if !strings.Contains(n1.logs.String(), `"broker":"redis"`) {
		t.Fatalf("the startup line does not name Redis:\n%s", n1.logs)
	}
	suffix := fmt.Sprintf("%06d", rand.IntN(1e6))
	alice, bob := "alice"+suffix, "bob"+suffix
	atok, btok := devToken(t, n1, alice), devToken(t, n1, bob)

	ch := "room:" + createRoom(t, n1.base, atok, "x-node", "public")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := sdk(t, ctx, n1.base, atok)
	b := sdk(t, ctx, n2.base, btok)
	if a.Node() != "n1" || b.Node() != "n2" {
		t.Fatalf("nodes %s and %s, want n1 and n2", a.Node(), b.Node())
	}
	if _, err := a.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Subscribe(ctx, "status:"+bob); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Subscribe(ctx, ch); err != nil {
		t.Fatal(err)
	}
	waitMsg(t, a, "bob's join, from the other node", func(m wire.Message) bool {
		return m.Type == wire.TypeEvent && m.Event == wire.EventJoin && m.User == bob
	})
	p, err := b.Presence(ctx, ch)
	if err != nil || p.Count != 2 {
		t.Fatalf("presence on n2 = %+v, %v; want both users", p, err)
	}

	msgID, offset, err := b.Publish(ctx, ch, map[string]string{"text": "across"}, "x1")
	if err != nil {
		t.Fatal(err)
	}
	m := waitMsg(t, a, "bob's message on n1", func(m wire.Message) bool { return m.Type == wire.TypeMsg && m.Channel == ch })
	if m.MsgID != msgID || m.Offset != offset || m.From != bob {
		t.Fatalf("msg on n1 = %s, want id %s offset %d", m.Raw, msgID, offset)
	}

	if err := b.SetStatus(ctx, "in_game", "valorant", ""); err != nil {
		t.Fatal(err)
	}
	waitMsg(t, a, "bob in game", func(m wire.Message) bool {
		return m.Channel == "status:"+bob && strings.Contains(string(m.Data), "in_game")
	})

	// Taken out of a private room on n1, bob stops receiving it on n2.
	priv := createRoom(t, n1.base, atok, "inner", "private")
	doJSON(t, http.StatusOK, "PUT", n1.base+"/v1/rooms/"+priv+"/members/"+bob, atok, "", nil)
	if _, err := b.Subscribe(ctx, "room:"+priv); err != nil {
		t.Fatal(err)
	}
	doJSON(t, http.StatusNoContent, "DELETE", n1.base+"/v1/rooms/"+priv+"/members/"+bob, atok, "", nil)
	waitMsg(t, b, "bob's subscription ended on the other node", func(m wire.Message) bool {
		return m.Type == wire.TypeUnsubscribed && m.Channel == "room:"+priv
	})

	// bob on both nodes; one server API call closes both sockets.
	b1 := sdk(t, ctx, n1.base, btok)
	req := fmt.Sprintf(`{"user":%q,"code":4003,"reason":"logout"}`, bob)
	resp, body := do(t, "POST", n1.base+"/v1/server/disconnect", "cluster-test-key", req)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"closed":2`) {
		t.Fatalf("disconnect = %d %s, want 2 closed", resp.StatusCode, body)
	}
	for _, c := range []*client.Client{b, b1} {
		select {
		case <-c.Done():
			if code := client.CloseCode(c.Err()); code != 4003 {
				t.Fatalf("close code %d, want 4003", code)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a socket of bob survived the disconnect")
		}
	}
	waitMsg(t, a, "bob offline, 5 s after his last socket on any node", func(m wire.Message) bool {
		return m.Channel == "status:"+bob && strings.Contains(string(m.Data), `"offline"`)
	})
}

// proc is a partyline server in a process of its own.
type proc struct {
	cmd  *exec.Cmd
	base string
	done chan error
}

// startProc starts the built binary with env and waits for its startup
// line, which names its address.
func startProc(t *testing.T, bin string, env map[string]string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		sent := false
		for sc.Scan() {
			var m map[string]any
			if !sent && json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "partyline serving" {
				addr <- m["addr"].(string)
				sent = true
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-p.done
			}
		}
	})
	select {
	case a := <-addr:
		p.base = "http://" + a
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the server process did not start")
	}
	return p
}

// kill ends the process at once, as a crash would.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// devTokenAt mints a dev token from the server at base.
func devTokenAt(t *testing.T, base, user string) string {
	t.Helper()
	var out struct {
		Token string `json:"token"`
	}
	doJSON(t, http.StatusOK, "POST", base+"/v1/dev/token", "", `{"user":"`+user+`"}`, &out)
	return out.Token
}

// createRoom creates a room as token's user on the server at base and
// returns its id.
func createRoom(t *testing.T, base, token, name, visibility string) string {
	t.Helper()
	var room struct {
		ID string `json:"id"`
	}
	doJSON(t, http.StatusCreated, "POST", base+"/v1/rooms", token, fmt.Sprintf(`{"name":%q,"visibility":%q}`, name, visibility), &room)
	return room.ID
}

// historyIDs reads the whole history of room over REST, page by page,
// and returns the ids of its messages.
func historyIDs(t *testing.T, base, token, room string) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	url := base + "/v1/rooms/" + room + "/messages?limit=200"
	for cursor := ""; ; {
		var page struct {
			Messages []struct {
				ID string `json:"id"`
			} `json:"messages"`
			Next string `json:"next_cursor"`
		}
		if cursor != "" {
			doJSON(t, http.StatusOK, "GET", url+"&before="+cursor, token, "", &page)
		} else {
			doJSON(t, http.StatusOK, "GET", url, token, "", &page)
		}
		for _, m := range page.Messages {
			ids[m.ID] = true
		}
		if page.Next == "" || len(page.Messages) == 0 {
			return ids
		}
		cursor = page.Next
	}
}
