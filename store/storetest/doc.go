// Package storetest is the conformance suite every partyline store passes.
// store/postgres and store/sqlite call Run from their tests, so both
// implement the doc comments of chat.Store, clips.Store, feed.Store and
// auth.UserStore the same way: error kinds (errors.Is with partyline's
// sentinels), millisecond time round-trips, idempotency windows, keyset
// paging order and stability under concurrent inserts, counters, concurrent
// writers (16 at once, none failing), and migrations that are safe to run
// twice.
//
// The suite lives in a non-test package so that each store's tests can
// import it. It uses only the standard testing package and go-cmp.
//
// # Concurrency
//
// Run runs its top-level subtests in parallel, each on a store of its own
// from the caller's open function. The concurrency subtests start their
// goroutines with errgroup and wait for all of them before returning.
package storetest
