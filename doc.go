// Package partyline holds what every domain package shares: the domain error
// kinds. It has no dependencies, and nothing in it starts goroutines.
//
// A domain package wraps one of the sentinel errors with context, for example
// fmt.Errorf("chat: room %s: %w", id, partyline.ErrNotFound). One function in
// internal/httpx maps these to HTTP statuses, and one in realtime maps them to
// wire error codes, so each transport reports the same failure the same way.
package partyline
