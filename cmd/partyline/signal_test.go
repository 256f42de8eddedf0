package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/partyline/partyline/realtime/client"
)

// subprocessEnv marks the copy of the test binary that
// TestSecondSignalExitsAtOnce starts: that copy runs a server and exits.
const subprocessEnv = "PARTYLINE_TEST_SUBPROCESS"

// TestSecondSignalExitsAtOnce runs the server in a process of its own (this
// test binary again) with a WebSocket client connected, a drain window of
// an hour and a request whose body never ends, so the graceful shutdown
// that the first signal starts is still going when the second arrives: the
// drain tells the client to reconnect and closes it at once, but
// http.Server.Shutdown waits for the request, for up to the window. The
// second signal must end the process at once with 128 plus its number,
// also when SIGINT was ignored at start, as nohup and background jobs of
// scripts leave it.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	if os.Getenv(subprocessEnv) == "1" {
		serveSubprocess()
		return
	}
	for _, tc := range []struct {
		name    string
		script  string // run by sh -c before the binary
		sig     syscall.Signal
		wantRet int
	}{
		{"SIGTERM twice", `exec "$0" "$@"`, syscall.SIGTERM, 143},
		{"SIGINT twice, ignored at start", `trap '' INT; exec "$0" "$@"`, syscall.SIGINT, 130},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startSubprocess(t, tc.script)
			tok := devToken(t, &runningServer{base: p.base}, "sig")
			http.DefaultClient.CloseIdleConnections()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c, err := client.Dial(ctx, client.Options{URL: p.base, DisableReconnect: true,
				Token: func(context.Context) (string, error) { return tok, nil }})
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			stalled, err := net.Dial("tcp", strings.TrimPrefix(p.base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer stalled.Close()
			if _, err := io.WriteString(stalled, "POST /v1/dev/token HTTP/1.1\r\nHost: partyline\r\n"+
				"Content-Type: application/json\r\nContent-Length: 64\r\n\r\n{\"user\":"); err != nil {
				t.Fatal(err)
			}

			if err := p.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.shuttingDown:
			case <-p.done:
				t.Fatalf("the first %v ended the process (%v) instead of shutting down gracefully:\n%s", tc.sig, p.cmd.ProcessState, p.logs())
			case <-time.After(10 * time.Second):
				t.Fatalf("no shutdown began within 10 s of the first %v:\n%s", tc.sig, p.logs())
			}
			if err := p.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Fatalf("the process still ran 10 s after the second %v:\n%s", tc.sig, p.logs())
			}
			if got := p.cmd.ProcessState.ExitCode(); got != tc.wantRet {
				t.Fatalf("exit code = %d (%v), want %d:\n%s", got, p.cmd.ProcessState, tc.wantRet, p.logs())
			}
			if !strings.Contains(p.logs(), `"msg":"second signal`) {
				t.Errorf("no log line for the second signal:\n%s", p.logs())
			}
		})
	}
}

// serveSubprocess is the server side of TestSecondSignalExitsAtOnce. Its
// settings come from the environment the test gives it.
func serveSubprocess() {
	args := []string{"partyline", "serve", "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}
	if err := run(context.Background(), args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "partyline: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// subprocess is a server started by startSubprocess.
type subprocess struct {
	cmd          *exec.Cmd
	base         string
	shuttingDown chan struct{} // closed at the "shutting down" log line
	done         chan struct{} // closed when the process has ended and its log is read

	mu  sync.Mutex
	log strings.Builder
}

func (p *subprocess) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// startSubprocess runs this test binary as a server through sh -c script,
// with a drain window of an hour, and waits for its startup line.
func startSubprocess(t *testing.T, script string) *subprocess {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script, os.Args[0], "-test.run=^TestSecondSignalExitsAtOnce$")
	cmd.Env = append(os.Environ(), subprocessEnv+"=1",
		"PARTYLINE_DATA_DIR="+t.TempDir(), "PARTYLINE_DRAIN_WINDOW=1h",
		"PARTYLINE_DATABASE_URL=", "PARTYLINE_REDIS_URL=", "PARTYLINE_JWT_SECRET=",
		"PARTYLINE_JWT_PUBLIC_KEY=", "PARTYLINE_DEV=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &subprocess{cmd: cmd, shuttingDown: make(chan struct{}), done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			switch m["msg"] {
			case "partyline serving":
				addr <- m["addr"].(string)
			case "shutting down":
				close(p.shuttingDown)
			}
		}
		_ = cmd.Wait() // the exit code is in cmd.ProcessState
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // a no-op once it has ended
		<-p.done
	})
	select {
	case a := <-addr:
		p.base = "http://" + a
	case <-p.done:
		t.Fatalf("the server process ended before serving (%v):\n%s", cmd.ProcessState, p.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("the server process did not start in 30 s:\n%s", p.logs())
	}
	return p
}
