// Package postgres is the PostgreSQL store of partyline's cluster mode. It
// owns the PostgreSQL schema, embedded as versioned goose migrations in
// migrations/, and implements chat.Store, clips.Store, feed.Store and
// auth.UserStore on one pgx v5 connection pool. The logic both stores share
// is store/internal/sqlstore's; this package gives it a Conn over the pool,
// the statements whose PostgreSQL text differs, and its own feed queries.
//
// cmd/partyline opens it with Open when a database URL is configured, runs
// Migrate (at startup, or through the migrate subcommand), hands the *DB to
// every domain package as the store interface it consumes, and calls Close
// last during shutdown. The conformance suite in store/storetest runs
// against it in postgres_test.go.
//
// # Concurrency
//
// A *DB is safe for concurrent use. It starts no goroutines of its own; the
// pgxpool it holds may run its health-check goroutine until Close. Every
// multi-statement operation is one read-committed transaction. Races the
// interfaces promise to settle are settled by the database: a unique index
// on (author, idem_key) makes concurrent idempotent publishes store one
// message (the loser re-runs and returns the winner's), INSERT ... ON
// CONFLICT DO NOTHING makes EnsureUser, Like and Follow idempotent, and
// counters are updated in place (likes = likes + 1) in the same transaction
// as the row that moves them. Migrate takes a session-level advisory lock, so
// nodes starting together migrate one at a time.
//
// # Representation
//
// Ids, channels and user ids use the "C" collation, so keyset order is byte
// order. Times are timestamptz cut to milliseconds on write (the precision
// the SQLite store keeps, so both read back equal values) and returned in
// UTC. Message data is a json column, which keeps the client's bytes
// verbatim; clip tags are text[]. Stream offsets are uint64 stored bit for
// bit in a bigint.
//
// # Errors
//
// Constraint violations map to partyline.ErrConflict, ErrNotFound and
// ErrInvalid (classify). Every statement goes through conn, the Conn over
// the pool or a transaction, and every transaction through inTx, which wrap
// a failure to reach the database (refused or dropped connections,
// timeouts, server shutdown, too many connections) as
// partyline.ErrUnavailable, so an outage reaches
// clients as 503 and the WebSocket code unavailable. A cancelled context
// stays context.Canceled. The driver's error stays in the chain.
package postgres
