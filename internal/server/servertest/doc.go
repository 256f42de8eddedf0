// Package servertest starts whole partyline servers for tests: the one
// assembly of internal/server, served by httptest, with test defaults (a
// fresh SQLite store, the memory backend, voice on a free loopback port,
// tokens that are user ids, and the fast paths off when
// PARTYLINE_TEST_FAST_PATHS=off). Every domain's test harness builds its
// server here, so none wires the Node by hand. It also holds the HTTP and
// WebSocket test clients the harnesses share.
//
// Start runs the server's Run on a goroutine of its own (testenv.Go); the
// test's cleanup stops it, closes the HTTP server and then the store. A
// Client reads its connection on a goroutine of its own until Close or the
// end of the test.
package servertest
