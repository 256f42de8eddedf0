package realtimetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline/realtime"
)

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
		if got := must(p.Lookup(ctx, "r1")); got != "" {
			t.Errorf("Lookup of a free room = %q, want none", got)
		}
		if got := must(p.Claim(ctx, "r1", "a", "")); got != "a" {
			t.Errorf("first Claim = %q, want a", got)
		}
		if got := must(p.Claim(ctx, "r1", "b", "")); got != "a" {
			t.Errorf("Claim of a held room = %q, want a", got)
		}
		if got := must(p.Claim(ctx, "r1", "b", "c")); got != "a" {
			t.Errorf("take-over naming a node that is not the holder = %q, want a", got)
		}
		if got := must(p.Lookup(ctx, "r1")); got != "a" {
			t.Errorf("Lookup = %q, want a", got)
		}
		if got := must(p.Claim(ctx, "r1", "b", "a")); got != "b" {
			t.Errorf("take-over from the dead a = %q, want b", got)
		}
		if got := must(p.Claim(ctx, "r2", "a", "")); got != "a" {
			t.Errorf("another room = %q, want a", got)
		}
	})
	t.Run("release", func(t *testing.T) {
		p := newLeases(t)
		must(p.Claim(ctx, "r1", "a", ""))
		if err := p.Release(ctx, "r1", "b"); err != nil {
			t.Fatal(err)
		}
		if got := must(p.Lookup(ctx, "r1")); got != "a" {
			t.Errorf("after a release by a non-holder, Lookup = %q, want a", got)
		}
		for range 2 { // idempotent
			if err := p.Release(ctx, "r1", "a"); err != nil {
				t.Fatal(err)
			}
		}
		if got := must(p.Lookup(ctx, "r1")); got != "" {
			t.Errorf("after release, Lookup = %q, want none", got)
		}
		if got := must(p.Claim(ctx, "r1", "b", "")); got != "b" {
			t.Errorf("Claim after release = %q, want b", got)
		}
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
		if got := must(p.Lookup(ctx, "r1")); got != "a" {
			t.Errorf("refreshed r1 = %q, want a", got)
		}
		if got := must(p.Lookup(ctx, "r3")); got != "" {
			t.Errorf("unrefreshed r3 = %q, want expired", got)
		}
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
