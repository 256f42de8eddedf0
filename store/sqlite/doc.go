// Package sqlite is the SQLite store of partyline's embedded mode, the
// default when no database URL is set. It owns the SQLite schema, embedded
// as versioned goose migrations in migrations/, and implements chat.Store,
// clips.Store, feed.Store and auth.UserStore on one database file through
// modernc.org/sqlite, a pure-Go driver, so the binary needs no cgo. The
// logic both stores share is store/internal/sqlstore's; this package gives it
// a Conn over each pool, the statements whose SQLite text differs, and its
// own feed queries.
//
// cmd/partyline opens it with Open on a file in the data directory, runs
// Migrate, hands the *DB to every domain package as the store interface it
// consumes, and calls Close last during shutdown. The conformance suite in
// store/storetest runs against it in sqlite_test.go.
//
// # Concurrency
//
// A *DB is safe for concurrent use and starts no goroutines. SQLite allows
// one writer at a time, and two connections that both try to upgrade to
// writing fail with SQLITE_BUSY ("database is locked") whatever the busy
// timeout. So a *DB keeps two pools:
//
//   - the writer, exactly one connection, whose transactions begin
//     IMMEDIATE (taking the write lock up front). Every write goes through
//     it, so writers of this process queue in database/sql rather than
//     contend inside SQLite, and none ever sees SQLITE_BUSY;
//   - the readers, several query_only connections. The file is in WAL mode,
//     so readers never block the writer and see every committed write.
//
// A transaction on the writer holds its only connection, so code inside one
// must use that transaction for every statement. Races the interfaces
// promise to settle (idempotent publishes, EnsureUser, Like, Follow) are
// settled by that serialization. The busy timeout only matters for another
// process on the same file, such as a migrate run.
//
// # Representation
//
// Tables are STRICT. Times are INTEGER unix milliseconds in UTC, cut to
// milliseconds on write like the PostgreSQL store does. Message data and
// clip tags are TEXT holding JSON, checked with json_valid. conn converts
// time.Time and []string arguments and scan destinations to these forms. Text compares
// bytewise (the BINARY collation), so keyset order is byte order. With WAL,
// synchronous=NORMAL keeps the file consistent on a crash and may lose
// only the last transactions on power loss.
package sqlite
