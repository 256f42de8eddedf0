package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/internal/server"
	"github.com/partyline/partyline/internal/server/servertest"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/store/sqlite"
)

// insideEnv marks the re-run of the test inside its network namespace.
const insideEnv = "PARTYLINE_E2E_NAMESPACE"

// TestBrowserVoice has two headless Chromium pages join one voice room
// through the gateway with their fake microphones, and checks from their
// WebRTC stats that each received the other's audio over 127.0.0.1.
//
// Outside the namespace it checks the tools and runs this same test binary
// again under `unshare --net`, with only lo up; inside, it runs the
// gateway and the browser.
func TestBrowserVoice(t *testing.T) {
	if os.Getenv(insideEnv) == "" {
		runInNamespace(t)
		return
	}
	browserCall(t)
}

func runInNamespace(t *testing.T) {
	for _, tool := range []string{"chromium", "node", "unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("browser voice test skipped: %s is not installed (.ci/run installs chromium; node and util-linux are needed too)", tool)
		}
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core")); err != nil {
		t.Skip("browser voice test skipped: run `npm ci` in signaling/e2e for playwright-core (.ci/run does)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--net"}
	if os.Geteuid() != 0 {
		args = []string{"--user", "--map-root-user", "--net"}
	}
	args = append(args, "sh", "-c", `ip link set lo up && exec "$0" -test.run '^TestBrowserVoice$' -test.v -test.timeout 150s`, self)
	ctx, cancel := context.WithTimeout(context.Background(), 170*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Env = append(os.Environ(), insideEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in the namespace:\n%s", out)
	if err != nil {
		t.Fatalf("the browser test failed in its namespace: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestBrowserVoice")) {
		t.Fatal("the browser test did not pass in its namespace")
	}
}

// pageStats is what voice.html's voiceStats reports.
type pageStats struct {
	PacketsReceived  float64  `json:"packetsReceived"`
	TotalAudioEnergy float64  `json:"totalAudioEnergy"`
	PacketsSent      float64  `json:"packetsSent"`
	Errors           []string `json:"errors"`
	Pair             *struct {
		Local  string `json:"local"`
		Remote string `json:"remote"`
	} `json:"pair"`
}

func browserCall(t *testing.T) {
	base, reg := startGateway(t)
	users := []string{"e2e_ana", "e2e_ben"}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "driver.mjs", base, "r_e2e", "9", users[0], users[1])
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("browser console:\n%s", stderr.String())
	if err != nil {
		t.Fatalf("driver: %v", err)
	}
	var stats map[string]pageStats
	if err := json.Unmarshal(stdout.Bytes(), &stats); err != nil {
		t.Fatalf("driver output %q: %v", stdout.String(), err)
	}
	for _, u := range users {
		st, ok := stats[u]
		switch {
		case !ok:
			t.Errorf("no stats from %s", u)
			continue
		case len(st.Errors) > 0:
			t.Errorf("%s: page errors: %v", u, st.Errors)
		}
		t.Logf("%s: %+v pair %+v", u, st, st.Pair)
		if st.PacketsReceived <= 200 {
			t.Errorf("%s received %v packets, want over 200", u, st.PacketsReceived)
		}
		if st.PacketsSent <= 200 {
			t.Errorf("%s sent %v packets, want over 200", u, st.PacketsSent)
		}
		if st.TotalAudioEnergy <= 0 {
			t.Errorf("%s: total audio energy %v, want some sound", u, st.TotalAudioEnergy)
		}
		if st.Pair == nil || st.Pair.Local != "127.0.0.1" || st.Pair.Remote != "127.0.0.1" {
			t.Errorf("%s: selected candidate pair %+v, want 127.0.0.1 on both sides", u, st.Pair)
		}
	}
	// The browser's SRTP went both ways through the node's direct path:
	// the node unprotected the pages' packets and protected theirs itself.
	// With the direct path off, Pion's path carried all of it.
	in, out := directPackets(t, reg, "in"), directPackets(t, reg, "out")
	t.Logf("direct path: %v packets in, %v out", in, out)
	if !testenv.FastPaths() {
		if in != 0 || out != 0 {
			t.Errorf("with the direct path off, it carried %v packets in and %v out, want none", in, out)
		}
	} else if in < 200 || out < 200 {
		t.Errorf("direct path carried %v packets in and %v out, want over 200 each", in, out)
	}
}

// directPackets reads partyline_voice_direct_packets_total{dir}.
func directPackets(t *testing.T, reg *prometheus.Registry, dir string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "partyline_voice_direct_packets_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "dir" && l.GetValue() == dir {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// startGateway runs a whole server (the one assembly), voice on loopback,
// and serves the page on the same origin. It returns the base URL and the
// registry of the server's metrics.
func startGateway(t *testing.T) (string, *prometheus.Registry) {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("PARTYLINE_TEST_VERBOSE") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	db, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "e2e.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"e2e_ana", "e2e_ben"} {
		if _, err := db.EnsureUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateRoom(ctx, chat.Room{ID: "r_e2e", Name: "squad", Visibility: chat.Private, Owner: "e2e_ana", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutMember(ctx, "r_e2e", "e2e_ben", chat.RoleMember); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile("voice.html")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	srv := servertest.Start(t, server.Options{NodeID: "e2e", Store: db, Registry: reg, Logger: logger},
		servertest.Route{Pattern: "/e2e/voice.html", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(page)
		})})
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("the server is at %s, want loopback", srv.URL)
	}
	return srv.URL, reg
}
