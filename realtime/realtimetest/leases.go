package realtimetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline/realtime"
)

// expectHost fails the test unless got, what a call named by what
// returned, is the host want ("" for none).
func expectHost(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// TestLeases runs the conformance suite of realtime.Leases. newLeases
// returns fresh, empty Leases whose leases live ttl; it registers its own
// cleanup with t.Cleanup. It checks claims and take-overs from a dead
// holder, release, and expiry and refresh.
func TestLeases(t *testing.T, ttl time.Duration, newLeases func(t *testing.T) realtime.Leases) {
	ctx := context.Background()
	must := func(host string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("leases: %v", err)
		}
		return host
	}
	t.Run("ttl", func(t *testing.T) {
		if got := newLeases(t).TTL(); got != ttl {
			t.Errorf("TTL() = %v, want %v", got, ttl)
		}
	})
	t.Run("claim and lookup", func(t *testing.T) {
		p := newLeases(t)
		expectHost(t, "Lookup of a free room", must(p.Lookup(ctx, "r1")), "")
		expectHost(t, "first Claim", must(p.Claim(ctx, "r1", "a", "")), "a")
		expectHost(t, "Claim of a held room", must(p.Claim(ctx, "r1", "b", "")), "a")
		expectHost(t, "take-over naming a node that is not the holder", must(p.Claim(ctx, "r1", "b", "c")), "a")
		expectHost(t, "Lookup", must(p.Lookup(ctx, "r1")), "a")
		expectHost(t, "take-over from the dead a", must(p.Claim(ctx, "r1", "b", "a")), "b")
		expectHost(t, "another room", must(p.Claim(ctx, "r2", "a", "")), "a")
	})
	t.Run("release", func(t *testing.T) {
		p := newLeases(t)
		must(p.Claim(ctx, "r1", "a", ""))
		if err := p.Release(ctx, "r1", "b"); err != nil {
			t.Fatal(err)
		}
		expectHost(t, "after a release by a non-holder, Lookup", must(p.Lookup(ctx, "r1")), "a")
		for range 2 { // idempotent
			if err := p.Release(ctx, "r1", "a"); err != nil {
				t.Fatal(err)
			}
		}
		expectHost(t, "after release, Lookup", must(p.Lookup(ctx, "r1")), "")
		expectHost(t, "Claim after release", must(p.Claim(ctx, "r1", "b", "")), "b")
	})
	t.Run("ttl and refresh", func(t *testing.T) {
		p := newLeases(t)
		must(p.Claim(ctx, "r1", "a", ""))
		must(p.Claim(ctx, "r2", "a", ""))
		must(p.Claim(ctx, "r3", "b", ""))
		// Refreshing keeps a's rooms past the TTL; b's expires.
		deadline := time.Now().Add(ttl + ttl/2)
		for time.Now().Before(deadline) {
			lost, err := p.Refresh(ctx, "a", []string{"r1", "r2"})
			if err != nil {
				t.Fatal(err)
			}
			if len(lost) != 0 {
				t.Fatalf("Refresh lost %v", lost)
			}
			time.Sleep(ttl / 4)
		}
		expectHost(t, "refreshed r1", must(p.Lookup(ctx, "r1")), "a")
		expectHost(t, "unrefreshed r3", must(p.Lookup(ctx, "r3")), "")
		must(p.Claim(ctx, "r3", "c", ""))
		lost, err := p.Refresh(ctx, "a", []string{"r1", "r3", "r9"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"r3", "r9"}, lost); diff != "" {
			t.Errorf("lost (-want +got):\n%s", diff)
		}
		if lost, err := p.Refresh(ctx, "a", nil); err != nil || len(lost) != 0 {
			t.Errorf("Refresh of nothing = %v, %v", lost, err)
		}
	})
}
