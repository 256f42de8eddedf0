package testenv

import (
	"testing"
	"time"
)

// Wait is how long Eventually waits before it fails the test. Nothing
// should come near it: a wait that succeeds returns as soon as its
// condition holds.
const Wait = 15 * time.Second

// Eventually polls cond until it holds, and fails the test when Wait
// passes first. It must run on the test's goroutine.
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	EventuallyWithin(tb, Wait, what, cond)
}

// EventuallyWithin is Eventually with a wait of d.
//
// It polls every 2 ms at first, then less often, up to every 20 ms, so a
// long wait on a condition that costs a request does not become a busy
// loop.
func EventuallyWithin(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	pause := 2 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(pause)
		pause = min(pause+pause/4, 20*time.Millisecond)
	}
}
