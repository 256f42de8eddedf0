package realtimetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
)

// TestPresence runs the Presence conformance suite. newPresence builds a
// fresh Presence for each subtest; it registers its own cleanup with
// t.Cleanup. Members of one channel come from several nodes (different
// Node fields) through the one Presence.
//
// It checks firstForUser and lastForUser across several connections and
// nodes, that Join and Leave are idempotent, what Members lists, that
// channels are independent, status storage, the offline records (due
// times, replacement, and that each is claimed exactly once among 16
// concurrent claimers), a capped join (JoinAtMost), and all of it under 16 concurrent goroutines.
func TestPresence(t *testing.T, newPresence func(t *testing.T) realtime.Presence) {
	t.Run("FirstAndLastPerUser", func(t *testing.T) {
		p := newPresence(t)
		ch := name("room:p")
		u1, u2 := name("u1"), name("u2")
		a := realtime.Member{ConnID: name("c"), User: u1, Node: "n1"}
		b := realtime.Member{ConnID: name("c"), User: u1, Node: "n2"}
		c := realtime.Member{ConnID: name("c"), User: u1, Node: "n1"}
		d := realtime.Member{ConnID: name("c"), User: u2, Node: "n2"}
		join(t, p, ch, a, true)
		join(t, p, ch, b, false)
		join(t, p, ch, d, true)
		join(t, p, ch, c, false)
		leave(t, p, ch, b, false)
		leave(t, p, ch, a, false)
		leave(t, p, ch, d, true)
		leave(t, p, ch, c, true)
		join(t, p, ch, b, true) // first again once all are gone
		leave(t, p, ch, b, true)
	})

	t.Run("JoinAndLeaveAreIdempotent", func(t *testing.T) {
		p := newPresence(t)
		ch := name("room:p")
		m := realtime.Member{ConnID: name("c"), User: name("u"), Node: "n1"}
		join(t, p, ch, m, true)
		join(t, p, ch, m, false)
		checkMembers(t, p, ch, []realtime.Member{m})
		leave(t, p, ch, m, true)
		leave(t, p, ch, m, false)
		checkMembers(t, p, ch, nil)
		leave(t, p, ch, realtime.Member{ConnID: name("c"), User: m.User, Node: "n1"}, false)
		leave(t, p, name("room:never"), m, false)
	})

	t.Run("Members", func(t *testing.T) {
		p := newPresence(t)
		ch := name("room:p")
		checkMembers(t, p, ch, nil)
		u1, u2 := name("u1"), name("u2")
		ms := []realtime.Member{
			{ConnID: name("c"), User: u1, Node: "n1"},
			{ConnID: name("c"), User: u1, Node: "n2"},
			{ConnID: name("c"), User: u2, Node: "n1"},
			{ConnID: name("c"), User: u2, Node: "n3"},
		}
		for i, m := range ms {
			join(t, p, ch, m, i%2 == 0)
		}
		checkMembers(t, p, ch, ms)
		leave(t, p, ch, ms[1], false)
		leave(t, p, ch, ms[2], false)
		checkMembers(t, p, ch, []realtime.Member{ms[0], ms[3]})
	})

	t.Run("ChannelsAreIndependent", func(t *testing.T) {
		p := newPresence(t)
		ch1, ch2 := name("room:p1"), name("room:p2")
		m := realtime.Member{ConnID: name("c"), User: name("u"), Node: "n1"}
		join(t, p, ch1, m, true)
		join(t, p, ch2, m, true)
		checkMembers(t, p, ch1, []realtime.Member{m})
		leave(t, p, ch1, m, true)
		checkMembers(t, p, ch1, nil)
		checkMembers(t, p, ch2, []realtime.Member{m})
		leave(t, p, ch2, m, true)
	})

	t.Run("Status", func(t *testing.T) {
		p := newPresence(t)
		u1, u2 := name("u1"), name("u2")
		checkStatus(t, p, u1, realtime.Status{}, false)
		st := realtime.Status{Status: "in_game", Game: "Chess ♞", Text: "brb", TS: 1732760000123}
		if err := p.SetStatus(t.Context(), u1, st); err != nil {
			t.Fatalf("SetStatus: %v", err)
		}
		checkStatus(t, p, u1, st, true)
		checkStatus(t, p, u2, realtime.Status{}, false)
		st2 := realtime.Status{Status: "idle", TS: 1732760000999}
		if err := p.SetStatus(t.Context(), u1, st2); err != nil {
			t.Fatalf("SetStatus: %v", err)
		}
		checkStatus(t, p, u1, st2, true)
	})

	t.Run("OfflineRecords", func(t *testing.T) {
		p := newPresence(t)
		u1, u2, u3, u4 := name("u1"), name("u2"), name("u3"), name("u4")
		checkClaim(t, p, u1, false)
		checkDue(t, p, nil)

		// Not due: left, with the wait until it is.
		schedule(t, p, u1, time.Hour)
		claimed, wait, err := p.ClaimOffline(t.Context(), u1)
		if err != nil || claimed || wait <= 59*time.Minute || wait > time.Hour {
			t.Fatalf("ClaimOffline of a record due in an hour = %v, %v, %v; want false, about an hour, nil", claimed, wait, err)
		}
		checkDue(t, p, nil)
		// A new record replaces the old one: due now, claimed once.
		schedule(t, p, u1, 0)
		checkClaim(t, p, u1, true)
		checkClaim(t, p, u1, false)
		checkDue(t, p, nil)

		// And the other way round: a later record postpones an earlier one.
		schedule(t, p, u2, 0)
		schedule(t, p, u3, 0)
		schedule(t, p, u4, 0)
		schedule(t, p, u4, time.Hour)
		checkDue(t, p, []string{u2, u3})
		checkDue(t, p, nil)
		checkClaim(t, p, u2, false)

		// A short delay passes.
		schedule(t, p, u1, 50*time.Millisecond)
		var got []string
		testenv.Eventually(t, "the record to be due", func() bool {
			users, err := p.ClaimDueOffline(t.Context())
			if err != nil {
				t.Fatalf("ClaimDueOffline: %v", err)
			}
			got = append(got, users...)
			return len(got) > 0
		})
		if diff := cmp.Diff([]string{u1}, got); diff != "" {
			t.Fatalf("ClaimDueOffline (-want +got):\n%s", diff)
		}
		checkClaim(t, p, u1, false)
	})

	t.Run("OfflineClaimedOnce", func(t *testing.T) {
		const goroutines, users = 16, 20
		p := newPresence(t)
		userNames := make([]string, users)
		for i := range userNames {
			userNames[i] = name(fmt.Sprintf("u%d", i))
			schedule(t, p, userNames[i], 0)
		}
		var claims sync.Map // user -> *atomic.Int32
		for _, u := range userNames {
			claims.Store(u, new(atomic.Int32))
		}
		count := func(u string) {
			c, ok := claims.Load(u)
			if !ok {
				t.Errorf("claimed %q, which has no record", u)
				return
			}
			c.(*atomic.Int32).Add(1)
		}
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range users {
					if g%2 == 0 {
						u := userNames[(i+g)%users]
						claimed, _, err := p.ClaimOffline(t.Context(), u)
						if err != nil {
							t.Errorf("ClaimOffline: %v", err)
							return
						}
						if claimed {
							count(u)
						}
						continue
					}
					due, err := p.ClaimDueOffline(t.Context())
					if err != nil {
						t.Errorf("ClaimDueOffline: %v", err)
						return
					}
					for _, u := range due {
						count(u)
					}
				}
			})
		}
		wg.Wait()
		for _, u := range userNames {
			c, _ := claims.Load(u)
			if n := c.(*atomic.Int32).Load(); n != 1 {
				t.Errorf("user %s: claimed %d times, want once", u, n)
			}
		}
	})

	t.Run("JoinAtMost", func(t *testing.T) {
		p := newPresence(t)
		ch := name("online/p")
		u, other := name("u"), name("u")
		ms := make([]realtime.Member, 3)
		for i := range ms {
			ms[i] = realtime.Member{ConnID: name("c"), User: u, Node: fmt.Sprintf("n%d", i)}
		}
		joinAtMost := func(m realtime.Member, wantFirst bool) {
			t.Helper()
			first, err := p.JoinAtMost(t.Context(), ch, m, 2)
			if err != nil || first != wantFirst {
				t.Fatalf("JoinAtMost(%+v, 2) = %v, %v; want %v, nil", m, first, err, wantFirst)
			}
		}
		over := func(m realtime.Member) {
			t.Helper()
			if _, err := p.JoinAtMost(t.Context(), ch, m, 2); !errors.Is(err, partyline.ErrLimitExceeded) {
				t.Fatalf("JoinAtMost(%+v, 2) with 2 there: %v, want ErrLimitExceeded", m, err)
			}
		}
		joinAtMost(ms[0], true)
		joinAtMost(ms[1], false)
		over(ms[2])
		joinAtMost(ms[1], false) // one that is there joins again
		checkMembers(t, p, ch, ms[:2])
		join(t, p, ch, realtime.Member{ConnID: name("c"), User: other, Node: "n1"}, true) // others are not counted
		leave(t, p, ch, ms[0], false)
		joinAtMost(ms[2], false)
		if _, err := p.JoinAtMost(t.Context(), ch, ms[0], 0); !errors.Is(err, partyline.ErrInvalid) {
			t.Errorf("JoinAtMost with a cap of 0: %v, want ErrInvalid", err)
		}

		// Concurrent joins, as from several nodes at once, never pass it.
		const most, tries = 3, 16
		busy := name("online/p")
		var added atomic.Int32
		var wg sync.WaitGroup
		for i := range tries {
			wg.Go(func() {
				m := realtime.Member{ConnID: name("c"), User: u, Node: fmt.Sprintf("n%d", i)}
				_, err := p.JoinAtMost(t.Context(), busy, m, most)
				switch {
				case err == nil:
					added.Add(1)
				case !errors.Is(err, partyline.ErrLimitExceeded):
					t.Errorf("JoinAtMost: %v", err)
				}
			})
		}
		wg.Wait()
		if n := added.Load(); n != most {
			t.Errorf("%d concurrent joins under a cap of %d added %d", tries, most, n)
		}
		if got, err := p.Members(t.Context(), busy); err != nil || len(got) != most {
			t.Errorf("Members after concurrent capped joins: %d, %v; want %d", len(got), err, most)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		const goroutines, conns, users = 16, 10, 4
		p := newPresence(t)
		ch := name("room:pc")
		userNames := make([]string, users)
		for i := range userNames {
			userNames[i] = name(fmt.Sprintf("u%d", i))
		}
		memberOf := func(g, i int) realtime.Member {
			return realtime.Member{
				ConnID: fmt.Sprintf("%s-c%02d-%02d", ch, g, i),
				User:   userNames[g%users],
				Node:   fmt.Sprintf("n%d", g%3),
			}
		}
		parallel := func(f func(g int)) {
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() { f(g) })
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
		}
		// onEach runs op on every member, from all goroutines at once, and
		// checks that what, the flag op returns, was true once per user.
		onEach := func(what string, op func(m realtime.Member, g, i int) (bool, error)) {
			var trues [users]atomic.Int32
			parallel(func(g int) {
				for i := range conns {
					ok, err := op(memberOf(g, i), g, i)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						trues[g%users].Add(1)
					}
				}
			})
			for u := range users {
				if n := trues[u].Load(); n != 1 {
					t.Errorf("user %d: %s was true %d times, want once", u, what, n)
				}
			}
		}

		onEach("firstForUser", func(m realtime.Member, g, i int) (bool, error) {
			first, err := p.Join(t.Context(), ch, m)
			if err != nil {
				return false, fmt.Errorf("Join: %w", err)
			}
			st := realtime.Status{Status: "online", Text: fmt.Sprint(g), TS: int64(i)}
			if err := p.SetStatus(t.Context(), m.User, st); err != nil {
				return false, fmt.Errorf("SetStatus: %w", err)
			}
			if _, ok, err := p.GetStatus(t.Context(), m.User); err != nil || !ok {
				return false, fmt.Errorf("GetStatus right after SetStatus = ok %v, %v; want ok", ok, err)
			}
			return first, nil
		})
		var want []realtime.Member
		for g := range goroutines {
			for i := range conns {
				want = append(want, memberOf(g, i))
			}
		}
		checkMembers(t, p, ch, want)

		onEach("lastForUser", func(m realtime.Member, _, _ int) (bool, error) {
			last, err := p.Leave(t.Context(), ch, m)
			if err != nil {
				return false, fmt.Errorf("Leave: %w", err)
			}
			return last, nil
		})
		checkMembers(t, p, ch, nil)
	})
}

// join joins m to ch and checks firstForUser.
func join(t *testing.T, p realtime.Presence, ch string, m realtime.Member, wantFirst bool) {
	t.Helper()
	checkFlag(t, "Join", p.Join, "firstForUser", ch, m, wantFirst)
}

// leave removes m from ch and checks lastForUser.
func leave(t *testing.T, p realtime.Presence, ch string, m realtime.Member, wantLast bool) {
	t.Helper()
	checkFlag(t, "Leave", p.Leave, "lastForUser", ch, m, wantLast)
}

// checkFlag calls op (Join or Leave, called name) for m in ch and checks
// that the flag it returns is want.
func checkFlag(t *testing.T, name string, op func(context.Context, string, realtime.Member) (bool, error), flag, ch string, m realtime.Member, want bool) {
	t.Helper()
	got, err := op(t.Context(), ch, m)
	if err != nil {
		t.Fatalf("%s(%q, %+v): %v", name, ch, m, err)
	}
	if got != want {
		t.Errorf("%s(%q, %+v) %s = %v, want %v", name, ch, m, flag, got, want)
	}
}

// checkMembers checks ch's members, in any order.
func checkMembers(t *testing.T, p realtime.Presence, ch string, want []realtime.Member) {
	t.Helper()
	got, err := p.Members(t.Context(), ch)
	if err != nil {
		t.Fatalf("Members(%q): %v", ch, err)
	}
	byConn := cmpopts.SortSlices(func(a, b realtime.Member) bool { return strings.Compare(a.ConnID, b.ConnID) < 0 })
	if diff := cmp.Diff(want, got, byConn, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Members(%q) (-want +got):\n%s", ch, diff)
	}
}

// schedule records that user's offline is due after delay.
func schedule(t *testing.T, p realtime.Presence, user string, delay time.Duration) {
	t.Helper()
	if err := p.ScheduleOffline(t.Context(), user, delay); err != nil {
		t.Fatalf("ScheduleOffline(%q, %v): %v", user, delay, err)
	}
}

// checkClaim claims user's offline record and checks that it was taken
// (when want) or that there was none.
func checkClaim(t *testing.T, p realtime.Presence, user string, want bool) {
	t.Helper()
	claimed, wait, err := p.ClaimOffline(t.Context(), user)
	if err != nil {
		t.Fatalf("ClaimOffline(%q): %v", user, err)
	}
	if claimed != want || wait != 0 {
		t.Errorf("ClaimOffline(%q) = %v, %v; want %v, 0", user, claimed, wait, want)
	}
}

// checkDue claims the due offline records and checks their users, in any
// order.
func checkDue(t *testing.T, p realtime.Presence, want []string) {
	t.Helper()
	got, err := p.ClaimDueOffline(t.Context())
	if err != nil {
		t.Fatalf("ClaimDueOffline: %v", err)
	}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b }), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("ClaimDueOffline (-want +got):\n%s", diff)
	}
}

// checkStatus checks the user's status.
func checkStatus(t *testing.T, p realtime.Presence, user string, want realtime.Status, wantOK bool) {
	t.Helper()
	got, ok, err := p.GetStatus(t.Context(), user)
	if err != nil {
		t.Fatalf("GetStatus(%q): %v", user, err)
	}
	if ok != wantOK {
		t.Errorf("GetStatus(%q) ok = %v, want %v", user, ok, wantOK)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetStatus(%q) (-want +got):\n%s", user, diff)
	}
}
