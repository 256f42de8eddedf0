// Package server is the one assembly of a partyline node: New builds the
// whole server from Options, for cmd/partyline and for every test harness
// (through servertest). It opens the store (SQLite in the data dir, or
// PostgreSQL) and the gateway backend (memory, or Redis), builds the
// realtime Node, then each domain with the Node passed to its constructor
// as the small interface the domain declares (chat.Gateway,
// clips.Notifier, signaling.Node), and registers the extensions with
// Node.Register. routes.go mounts every route of the main and admin
// listeners on one screen; docs/architecture.md follows a message through
// them.
//
// # Lifetimes
//
// New starts nothing. Run starts the Node and the backend's own work, then
// clips, the feed and voice; it turns readiness on once the Node runs.
// When Run's context ends, voice, clips and the feed stop first (voice
// tells its participants, the feed saves its model) while the Node still
// delivers; then the Node and the backend stop, and Run returns. The
// caller's shutdown order is: Drain (readiness off, then the Node's drain
// spreads reconnect notices over the drain window), the HTTP servers'
// Shutdown, the end of Run's context, then Close, which closes the backend
// and the store that New opened. A store or backend given in Options is
// the caller's to close.
//
// A Server is safe for concurrent use once built; New, Run and Close are
// each called once.
package server
