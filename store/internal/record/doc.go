// Package record prepares domain values for storage the same way in both
// stores: times cut to milliseconds, message ids, the room or dm a channel
// names, and the input checks that are not expressed in SQL. Keeping these
// here means store/postgres and store/sqlite accept and reject exactly the
// same inputs, which the storetest suite relies on.
//
// Nothing here touches a database or starts goroutines; every function is
// safe for concurrent use.
package record
