// Package sqlstore owns the store logic that store/postgres and
// store/sqlite share: the statements, checks, row scanning, paging and
// not-found handling of the chat, clips, feed and user store methods whose
// logic is the same in both databases. Each store embeds a *Store built
// with New and adds the methods it plans its own way.
//
// A store reaches its database through Conn, which it implements over its
// driver (pgx, database/sql). Statements number their parameters $1, $2,
// which PostgreSQL and modernc.org/sqlite both bind by position. A Conn
// converts plain Go values to the stored form of its database and back
// (SQLite keeps times as unix milliseconds and tag lists as JSON), reads
// times in UTC, and reports a missing row as sql.ErrNoRows, so one scan
// function serves both stores. Statements whose text differs between the
// databases are given per store in Statements; constraint errors are
// mapped by the store's Classify, outages by its Conn.
//
// Cursors and limits come from store/internal/keyset, input checks and
// time precision from store/internal/record.
//
// Nothing here starts goroutines. A Store is safe for concurrent use when
// its Conns are; the stores' pools are.
package sqlstore
