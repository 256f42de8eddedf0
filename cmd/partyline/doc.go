// Command partyline is the partyline server: the realtime gateway, the voice
// SFU, clips, the feeds and the REST API, in one binary.
//
// main calls run(ctx, args, getenv, stdout, stderr) and nothing else, so
// the whole binary is testable from run_test.go. run dispatches the
// subcommands serve (the default), migrate, token, version and feed-eval.
// serve maps the flags and PARTYLINE_* variables onto server.Options,
// builds the server with internal/server (the one assembly: store, auth,
// the realtime node, chat, clips, the feed, voice and every route), opens
// the main and admin listeners and owns the shutdown order: on SIGINT or
// SIGTERM readiness turns false and the node drains, the HTTP servers
// shut down, then the server's Run stops (voice tells its participants,
// the feed saves its model, the node stops last) and the store closes; a
// second signal ends the process at once.
//
// See README.md for the settings.
package main
