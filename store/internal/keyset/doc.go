// Package keyset holds what both stores share about paged listings: limit
// clamping, the opaque cursor encoding and the cut of a page. It keeps the
// cursor format identical across store/postgres and store/sqlite, so a
// cursor means the same thing whichever store issued it.
//
// A cursor names the last row of the previous page. Listings query for rows
// strictly after it in their order, fetching one row more than the limit to
// learn whether another page exists. Because a cursor is a key and not an
// offset, rows inserted while a caller pages never shift the rows that
// existed when paging started.
//
// Nothing here touches a database or starts goroutines; every function is
// safe for concurrent use.
package keyset
