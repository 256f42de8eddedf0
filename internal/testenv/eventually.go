package testenv

import (
	"testing"
	"time"
)

// Wait is how long Eventually waits before it fails the test. Nothing
// should come near it: a wait that succeeds returns as soon as its
// condition holds.
const Wait = 10 * time.Second

// Eventually polls cond every few milliseconds until it holds, and fails
// the test when Wait passes first. It must run on the test's goroutine.
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	EventuallyWithin(tb, Wait, what, cond)
}

// EventuallyWithin is Eventually with a wait of d.
func EventuallyWithin(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
}
