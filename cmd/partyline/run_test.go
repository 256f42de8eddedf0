package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/partyline/partyline/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// server is one run() of `partyline serve` in this process.
type runningServer struct {
	base   string // http://127.0.0.1:port
	admin  string
	cancel context.CancelFunc
	done   chan error
	logs   *lockedBuffer

	once sync.Once
	err  error
}

// wait returns what run returned, waiting at most 30 s.
func (s *runningServer) wait(t *testing.T) error {
	t.Helper()
	s.once.Do(func() {
		select {
		case s.err = <-s.done:
		case <-time.After(30 * time.Second):
			s.err = errors.New("serve did not return within 30s")
		}
	})
	return s.err
}

// lockedBuffer collects the server's log and reports the startup line.
type lockedBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	started chan map[string]any
	once    sync.Once
	partial []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	b.partial = append(b.partial, p...)
	for {
		i := bytes.IndexByte(b.partial, '\n')
		if i < 0 {
			break
		}
		line := b.partial[:i]
		b.partial = b.partial[i+1:]
		var m map[string]any
		if json.Unmarshal(line, &m) == nil && m["msg"] == "partyline serving" {
			b.once.Do(func() { b.started <- m })
		}
	}
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// startServer runs serve on random loopback ports with a temp data dir and
// waits for its startup line.
func startServer(t *testing.T, env map[string]string, extra ...string) *runningServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{started: make(chan map[string]any, 1)}
	args := append([]string{"partyline", "serve", "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--data-dir", t.TempDir(), "--drain-window", "100ms"}, extra...)
	s := &runningServer{cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { s.done <- run(ctx, args, envFunc(env), io.Discard, logs) }()
	select {
	case m := <-logs.started:
		s.base = "http://" + m["addr"].(string)
		s.admin = "http://" + m["admin_addr"].(string)
	case err := <-s.done:
		cancel()
		t.Fatalf("serve returned before serving: %v\n%s", err, logs)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("server did not start in 30s:\n%s", logs)
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop cancels the server and checks that it returned cleanly.
func (s *runningServer) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	if err := s.wait(t); err != nil {
		t.Errorf("serve returned %v, want nil\n%s", err, s.logs)
	}
}

func do(t *testing.T, method, url, token string, body string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// doJSON sends a request as do does, fails unless it is answered with
// status, and decodes the body into out unless out is nil.
func doJSON(t *testing.T, status int, method, url, token, body string, out any) {
	t.Helper()
	resp, b := do(t, method, url, token, body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s = %d, want %d: %s", method, url, resp.StatusCode, status, b)
	}
	if out == nil {
		return
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s %s: decoding %s: %v", method, url, b, err)
	}
}

func devToken(t *testing.T, s *runningServer, user string) string {
	t.Helper()
	var out struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
	}
	doJSON(t, http.StatusOK, "POST", s.base+"/v1/dev/token", "", `{"user":"`+user+`"}`, &out)
	exp, err := time.Parse(time.RFC3339, out.ExpiresAt)
	if err != nil || exp.Before(time.Now()) {
		t.Fatalf("expires_at = %q, want a future RFC 3339 time", out.ExpiresAt)
	}
	return out.Token
}

func wantProblem(t *testing.T, resp *http.Response, body []byte, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json", ct)
	}
	var p struct {
		Status int    `json:"status"`
		Title  string `json:"title"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Status != status || p.Title == "" {
		t.Fatalf("problem body %s does not carry status %d and a title", body, status)
	}
}

// exercise runs the checks every store backend must pass.
func exercise(t *testing.T, s *runningServer) {
	t.Run("healthz", func(t *testing.T) {
		resp, body := do(t, "GET", s.base+"/healthz", "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("healthz = %d %s", resp.StatusCode, body)
		}
	})
	t.Run("readyz", func(t *testing.T) {
		resp, body := do(t, "GET", s.base+"/readyz", "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("readyz = %d %s", resp.StatusCode, body)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		do(t, "GET", s.base+"/healthz", "", "")
		resp, body := do(t, "GET", s.admin+"/metrics", "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("metrics = %d", resp.StatusCode)
		}
		for _, want := range []string{"go_goroutines", "process_resident_memory_bytes",
			`partyline_http_request_duration_seconds_count{code="200",method="GET",route="/healthz"}`} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if resp, _ := do(t, "GET", s.admin+"/debug/pprof/", "", ""); resp.StatusCode != 200 {
			t.Errorf("pprof = %d", resp.StatusCode)
		}
		if resp, _ := do(t, "GET", s.base+"/metrics", "", ""); resp.StatusCode != 404 {
			t.Errorf("/metrics on the main listener = %d, want 404", resp.StatusCode)
		}
	})
	t.Run("dev token then me", func(t *testing.T) {
		tok := devToken(t, s, "alice")
		resp, body := do(t, "GET", s.base+"/v1/me", tok, "")
		if resp.StatusCode != 200 {
			t.Fatalf("me = %d %s", resp.StatusCode, body)
		}
		var me struct {
			ID        string    `json:"id"`
			CreatedAt time.Time `json:"created_at"`
		}
		if err := json.Unmarshal(body, &me); err != nil || me.ID != "alice" || me.CreatedAt.IsZero() {
			t.Fatalf("me = %s, want alice with created_at", body)
		}
		// The second sight finds the same row.
		_, body2 := do(t, "GET", s.base+"/v1/me", tok, "")
		if !bytes.Equal(body, body2) {
			t.Fatalf("me changed between calls: %s then %s", body, body2)
		}
	})
	t.Run("chat over REST and the WebSocket", func(t *testing.T) {
		tok := devToken(t, s, "erin")
		roomID := createRoom(t, s.base, tok, "squad", "public")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cl := sdk(t, ctx, s.base, tok)
		ch := "room:" + roomID
		if _, err := cl.Subscribe(ctx, ch); err != nil {
			t.Fatal(err)
		}
		msgID, offset, err := cl.Publish(ctx, ch, map[string]string{"text": "gg"}, "idem-1")
		if err != nil || offset == 0 {
			t.Fatalf("publish = %q %d %v", msgID, offset, err)
		}
		for m := range cl.Messages() {
			if m.Type == "msg" && m.MsgID == msgID {
				break
			}
		}
		resp, body := do(t, "GET", s.base+"/v1/rooms/"+roomID+"/messages", tok, "")
		if resp.StatusCode != 200 || !strings.Contains(string(body), msgID) {
			t.Fatalf("messages = %d %s", resp.StatusCode, body)
		}
		resp, body = do(t, "GET", s.base+"/v1/me/rooms", tok, "")
		if resp.StatusCode != 200 || !strings.Contains(string(body), roomID) {
			t.Fatalf("me/rooms = %d %s", resp.StatusCode, body)
		}
	})
	t.Run("bad token is 401 problem", func(t *testing.T) {
		for _, tok := range []string{"", "garbage", "a.b.c", strings.Repeat("x", 9000)} {
			resp, body := do(t, "GET", s.base+"/v1/me", tok, "")
			wantProblem(t, resp, body, 401)
			if bytes.Contains([]byte(s.logs.String()), []byte("a.b.c")) {
				t.Fatal("the token appeared in the log")
			}
		}
	})
	t.Run("malformed requests are 4xx problems", func(t *testing.T) {
		for _, tc := range []struct {
			method, path, body string
			status             int
		}{
			{"POST", "/v1/dev/token", `{"user":`, 400},
			{"POST", "/v1/dev/token", `{"user":"a/b"}`, 400},
			{"POST", "/v1/dev/token", `{"user":""}`, 400},
			{"POST", "/v1/dev/token", `{"user":"bob","extra":1}`, 400},
			{"POST", "/v1/dev/token", `{"user":"bob","ttl":"forever"}`, 400},
			{"POST", "/v1/dev/token", `[1,2]`, 400},
			{"POST", "/v1/dev/token", `{"user":"` + strings.Repeat("a", 2<<20) + `"}`, 413},
			{"GET", "/v1/dev/token", "", 405},
			{"GET", "/v1/nope", "", 404},
		} {
			resp, body := do(t, tc.method, s.base+tc.path, "", tc.body)
			wantProblem(t, resp, body, tc.status)
		}
	})
}

func TestRunSQLite(t *testing.T) {
	s := startServer(t, nil)
	exercise(t, s)
	if !strings.Contains(s.logs.String(), `"store":"sqlite`) || !strings.Contains(s.logs.String(), `"broker":"memory`) {
		t.Errorf("the startup line does not name the backends:\n%s", s.logs)
	}
	if !strings.Contains(s.logs.String(), "dev mode is on") {
		t.Errorf("no dev mode warning in the log")
	}
}

func TestRunPostgres(t *testing.T) {
	url := testenv.PostgresURL(t)
	s := startServer(t, map[string]string{"PARTYLINE_DATABASE_URL": url})
	exercise(t, s)
	if !strings.Contains(s.logs.String(), `"store":"postgresql"`) {
		t.Errorf("the startup line does not name PostgreSQL:\n%s", s.logs)
	}
}

func TestShutdownOrder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String() + "/"

	drained := false
	drain := func(ctx context.Context) error {
		drained = true
		if _, ok := ctx.Deadline(); !ok {
			t.Error("the drain's context has no deadline")
		}
		resp, err := http.Get(url)
		if err != nil {
			t.Errorf("the HTTP server was already down during the drain: %v", err)
			return nil
		}
		resp.Body.Close()
		return nil
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if err := shutdown(logger, 100*time.Millisecond, drain, srv); err != nil {
		t.Fatal(err)
	}
	if !drained {
		t.Fatal("the drain hook did not run")
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed after shutdown", err)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestSIGTERMShutsDownCleanly(t *testing.T) {
	s := startServer(t, nil)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := s.wait(t); err != nil {
		t.Fatalf("serve returned %v after SIGTERM, want nil", err)
	}
}

func TestDevModeRules(t *testing.T) {
	t.Run("no key beyond loopback refuses to start", func(t *testing.T) {
		err := run(context.Background(), []string{"partyline", "--addr", "0.0.0.0:0", "--data-dir", t.TempDir()},
			envFunc(nil), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "refusing to start") {
			t.Fatalf("err = %v, want a refusal", err)
		}
	})
	t.Run("dev beyond loopback refuses to start", func(t *testing.T) {
		secret := map[string]string{"PARTYLINE_JWT_SECRET": "0123456789abcdef0123456789abcdef"}
		for _, tc := range []struct {
			env  map[string]string
			args []string
		}{
			{secret, []string{"--dev", "--addr", "0.0.0.0:0"}},
			{secret, []string{"--dev=true", "--addr", ":0"}},
			{secret, []string{"--dev", "--admin-addr", "[::]:0"}},
			{map[string]string{"PARTYLINE_JWT_SECRET": secret["PARTYLINE_JWT_SECRET"], "PARTYLINE_DEV": "1", "PARTYLINE_ADDR": "192.0.2.1:0"}, nil},
		} {
			// A cancelled context: should the config pass, serve fails
			// at once with another error instead of serving.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			args := append([]string{"partyline", "serve", "--data-dir", t.TempDir()}, tc.args...)
			err := run(ctx, args, envFunc(tc.env), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), "dev mode is on") || !strings.Contains(err.Error(), "refusing to start") {
				t.Errorf("%v with %v: err = %v, want a refusal naming dev mode", tc.args, tc.env, err)
			}
		}
	})
	t.Run("resolution", func(t *testing.T) {
		const loop, public = "127.0.0.1:8080", "0.0.0.0:8080"
		on, off := optBool{set: true, val: true}, optBool{set: true, val: false}
		for _, tc := range []struct {
			name    string
			c       config
			want    bool
			wantErr string
		}{
			{"no key on loopback: on by default", config{Addr: loop, AdminAddr: "localhost:9090"}, true, ""},
			{"key on loopback: off by default", config{Addr: loop, AdminAddr: loop, JWTSecret: "s"}, false, ""},
			{"key beyond loopback: off", config{Addr: public, AdminAddr: loop, JWTSecret: "s"}, false, ""},
			{"key beyond loopback, dev off", config{Addr: public, AdminAddr: loop, JWTSecret: "s", Dev: off}, false, ""},
			{"key on loopback, dev on", config{Addr: loop, AdminAddr: loop, JWTSecret: "s", Dev: on}, true, ""},
			{"key beyond loopback, dev on", config{Addr: public, AdminAddr: loop, JWTSecret: "s", Dev: on}, false, "dev mode is on"},
			{"public key, admin beyond loopback, dev on", config{Addr: loop, AdminAddr: public, JWTPublicKey: "k.pem", Dev: on}, false, "dev mode is on"},
			{"no key beyond loopback", config{Addr: public, AdminAddr: loop}, false, "no JWT key"},
			{"no key beyond loopback, dev on", config{Addr: loop, AdminAddr: public, Dev: on}, false, "refusing to start"},
			{"no key, dev off", config{Addr: loop, AdminAddr: loop, Dev: off}, false, "no JWT key"},
		} {
			got, err := tc.c.devMode()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("%s: err = %v", tc.name, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.wantErr)
			case got != tc.want:
				t.Errorf("%s: dev = %v, want %v", tc.name, got, tc.want)
			}
		}
	})
	t.Run("dev token route is 404 without dev mode", func(t *testing.T) {
		s := startServer(t, map[string]string{"PARTYLINE_JWT_SECRET": "0123456789abcdef0123456789abcdef"})
		resp, body := do(t, "POST", s.base+"/v1/dev/token", "", `{"user":"alice"}`)
		wantProblem(t, resp, body, 404)
	})
	t.Run("dev with a secret signs with that secret", func(t *testing.T) {
		env := map[string]string{"PARTYLINE_JWT_SECRET": "0123456789abcdef0123456789abcdef", "PARTYLINE_DEV": "1"}
		a := startServer(t, env)
		b := startServer(t, env)
		tok := devToken(t, a, "carol")
		if resp, body := do(t, "GET", b.base+"/v1/me", tok, ""); resp.StatusCode != 200 {
			t.Fatalf("a token from node a on node b = %d %s", resp.StatusCode, body)
		}
	})
	t.Run("booleans", func(t *testing.T) {
		for _, v := range []string{"true", "false", "1", "0"} {
			var c config
			if err := c.Dev.Set(v); err != nil {
				t.Errorf("Set(%q) = %v", v, err)
			}
		}
		err := run(context.Background(), []string{"partyline", "--data-dir", t.TempDir()},
			envFunc(map[string]string{"PARTYLINE_DEV": "yes"}), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "PARTYLINE_DEV") {
			t.Fatalf("PARTYLINE_DEV=yes: err = %v, want one naming the variable", err)
		}
	})
	t.Run("flag wins over env", func(t *testing.T) {
		var c config
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		if err := c.registerFlags(fs, envFunc(map[string]string{"PARTYLINE_MAX_SUBSCRIPTIONS": "7", "PARTYLINE_DRAIN_WINDOW": "3s"})); err != nil {
			t.Fatal(err)
		}
		if err := fs.Parse([]string{"--max-subscriptions", "9"}); err != nil {
			t.Fatal(err)
		}
		if c.MaxSubscriptions != 9 || c.DrainWindow != 3*time.Second || c.Addr != "127.0.0.1:8080" || c.PublishRate != 10 {
			t.Fatalf("config = %+v", c)
		}
	})
}

func TestTokenAndMigrateCommands(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"partyline", "migrate", "--data-dir", dir}, envFunc(nil), &out, io.Discard); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if err := run(context.Background(), []string{"partyline", "migrate", "--data-dir", dir}, envFunc(nil), &out, io.Discard); err != nil {
		t.Fatalf("migrate again: %v", err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"partyline", "token", "--user", "dave", "--ttl", "1h", "--data-dir", dir}, envFunc(nil), &out, io.Discard); err != nil {
		t.Fatalf("token: %v", err)
	}
	tok := strings.TrimSpace(out.String())
	s := startServer(t, nil, "--data-dir", dir)
	resp, body := do(t, "GET", s.base+"/v1/me", tok, "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"dave"`) {
		t.Fatalf("me with a `partyline token` token = %d %s", resp.StatusCode, body)
	}
	if err := run(context.Background(), []string{"partyline", "token"}, envFunc(nil), io.Discard, io.Discard); err == nil {
		t.Fatal("token without --user succeeded")
	}
	out.Reset()
	if err := run(context.Background(), []string{"partyline", "version"}, envFunc(nil), &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "partyline ") {
		t.Fatalf("version = %q, %v", out.String(), err)
	}
	if err := run(context.Background(), []string{"partyline", "frobnicate"}, envFunc(nil), io.Discard, io.Discard); err == nil {
		t.Fatal("an unknown command succeeded")
	}
}

func TestScanLogLinesAreJSON(t *testing.T) {
	s := startServer(t, nil)
	do(t, "GET", s.base+"/healthz", "", "")
	s.stop(t)
	sc := bufio.NewScanner(strings.NewReader(s.logs.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}
