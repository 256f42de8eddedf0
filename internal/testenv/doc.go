// Package testenv gives tests the real services they need, isolated per test.
//
// Tests find PostgreSQL and Redis through PARTYLINE_TEST_DATABASE_URL and
// PARTYLINE_TEST_REDIS_URL. When a URL is unset the test is skipped with one
// clear line, so `go test ./...` passes on a bare machine; .ci/run sets both
// and fails when a service is unreachable, so CI never skips them.
//
// FastPaths reads PARTYLINE_TEST_FAST_PATHS: set to "off", the harnesses
// run their suites on the libraries' own paths instead of the fast paths.
//
// Postgres creates a fresh database per call and drops it in t.Cleanup, so
// test packages running in parallel never collide. Eventually polls a
// condition until it holds, and fails the test after Wait. Go runs a
// function such
// as a Run method on its own goroutine until the test ends, and checks how
// it returned; nothing else here starts goroutines that outlive the call.
package testenv
