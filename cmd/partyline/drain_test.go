package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime/client"
	"github.com/partyline/partyline/realtime/wire"
)

// TestDrain: 200 clients on node A get reconnect notices whose after_ms
// spans the drain window, are closed with 1012, and move to node B, which
// shares the store. Every message that was acknowledged, before, during or
// after the drain, is in the room's history on B.
func TestDrain(t *testing.T) {
	const clients, window = 200, 2 * time.Second
	start := time.Now()
	dir := t.TempDir()
	env := map[string]string{"PARTYLINE_DATA_DIR": dir}
	if os.Getenv(testenv.DatabaseURLEnv) != "" {
		// The nodes of a cluster share PostgreSQL; without it they share
		// the SQLite file in the data dir.
		env["PARTYLINE_DATABASE_URL"] = testenv.PostgresURL(t)
	}
	a := startServer(t, env, "--data-dir", dir, "--drain-window", window.String(), "--max-conns-per-user", "1000")
	b := startServer(t, env, "--data-dir", dir, "--max-conns-per-user", "1000")

	owner := devToken(t, a, "owner")
	roomID := createRoom(t, a.base, owner, "drain", "public")
	ch := "room:" + roomID

	var (
		mu     sync.Mutex
		acked  []string
		afters []int64
		codes  = map[int]int{}
	)
	ack := func(id string) {
		mu.Lock()
		acked = append(acked, id)
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tokens := map[string]string{}
	for i := 0; i < clients; i++ {
		u := fmt.Sprintf("d%03d", i)
		tokens[u] = devToken(t, a, u) // both nodes share the data dir, so its dev secret
	}
	t.Logf("%v: tokens minted", time.Since(start))
	dialAs := func(base, user string) (*client.Client, error) {
		tok := tokens[user]
		return client.Dial(ctx, client.Options{URL: base, DisableReconnect: true, MessageBuffer: 64,
			Token: func(context.Context) (string, error) { return tok, nil }})
	}

	// Connect everyone to A and subscribe.
	conns := make([]*client.Client, clients)
	var g errgroup.Group
	g.SetLimit(16)
	for i := range conns {
		g.Go(func() error {
			c, err := dialAs(a.base, fmt.Sprintf("d%03d", i))
			if err != nil {
				return err
			}
			conns[i] = c
			_, err = c.Subscribe(ctx, ch)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("connecting to A: %v", err)
	}
	t.Logf("%v: %d clients connected", time.Since(start), clients)

	// Each client publishes before the drain, keeps publishing during it on
	// A until its connection ends, and again on B after it moves.
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprintf("d%03d", i)
			notice := make(chan int64, 1)
			go func() {
				var after int64 = -1
				for m := range c.Messages() {
					if m.Type == wire.TypeReconnect {
						after = m.AfterMS
					}
				}
				notice <- after
			}()
			for k := 0; ; k++ {
				id, _, err := c.Publish(ctx, ch, map[string]any{"from": user, "k": k}, fmt.Sprintf("%s-a-%d", user, k))
				if err != nil {
					break // the connection is draining; an unacknowledged message may be lost
				}
				ack(id)
				if i%10 != 0 {
					break // most clients publish once; every tenth keeps talking through the drain
				}
				time.Sleep(100 * time.Millisecond)
			}
			after := <-notice
			<-c.Done()
			mu.Lock()
			afters = append(afters, after)
			codes[client.CloseCode(c.Err())]++
			mu.Unlock()
			if after >= 0 {
				time.Sleep(time.Duration(after) * time.Millisecond) // as a client must
			}
			nb, err := dialAs(b.base, user)
			if err != nil {
				t.Errorf("%s: dial B: %v", user, err)
				return
			}
			defer nb.Close()
			go func() {
				for range nb.Messages() { // keep reading, or replies wait behind a full buffer
				}
			}()
			if _, err := nb.Subscribe(ctx, ch); err != nil {
				t.Errorf("%s: subscribe on B: %v", user, err)
				return
			}
			id, _, err := nb.Publish(ctx, ch, map[string]any{"from": user, "on": "b"}, user+"-b")
			if err != nil {
				t.Errorf("%s: publish on B: %v", user, err)
				return
			}
			ack(id)
		}()
	}
	// Let every client publish a few times on A, then shut A down.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= clients+clients/10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%v: %d clients connected and published; shutting A down", time.Since(start), clients)
	a.cancel()
	if err := a.wait(t); err != nil {
		t.Fatalf("A did not shut down cleanly: %v", err)
	}
	wg.Wait()
	t.Logf("%v: A is down and every client moved to B", time.Since(start))

	sort.Slice(afters, func(i, j int) bool { return afters[i] < afters[j] })
	if afters[0] < 0 {
		t.Fatalf("a client got no reconnect notice")
	}
	w := window.Milliseconds()
	if afters[0] > w/4 || afters[len(afters)-1] < 3*w/4 || afters[len(afters)-1] > w {
		t.Fatalf("after_ms from %d to %d, want a spread over [0, %d]", afters[0], afters[len(afters)-1], w)
	}
	if codes[wire.CloseServiceRestart] != clients {
		t.Fatalf("close codes %v, want %d closes with 1012", codes, clients)
	}

	// Every acknowledged message is in the history on B.
	have := historyIDs(t, b.base, owner, roomID)
	var missing []string
	for _, id := range acked {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged messages are missing from history: %s", len(missing), len(acked), strings.Join(missing[:min(5, len(missing))], ","))
	}
	t.Logf("%d acknowledged messages, all in history; after_ms %d..%d", len(acked), afters[0], afters[len(afters)-1])
}
