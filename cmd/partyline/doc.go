// Command partyline is the partyline server: the realtime gateway, the voice
// SFU, clips, the feeds and the REST API, in one binary.
//
// main calls run(ctx, args, getenv, stdout, stderr) and nothing else, so
// the whole binary is testable from run_test.go. run dispatches the
// subcommands serve (the default), migrate, token, version and feed-eval.
// serve wires the store, auth, clips, the feed, voice, the realtime node
// and the HTTP listeners together (routes.go mounts every route on one
// screen) and owns their lifetimes: an errgroup runs the main and admin
// HTTP servers and the Run loops of clips, the feed and voice; the
// realtime node runs beside them and stops last. On SIGINT or SIGTERM
// readiness turns false, the drain hooks run, the HTTP servers shut down,
// clips, the feed and voice stop (voice tells its participants), the node
// stops and the store closes; a second signal ends the process at once.
//
// See README.md for the settings.
package main
