// Command partyline is the partyline server: the realtime gateway, the REST
// API and, as they land, the voice SFU, clips and feeds, in one binary.
//
// main calls run(ctx, args, getenv, stdout, stderr) and nothing else, so
// the whole binary is testable from run_test.go. run dispatches the
// subcommands serve (the default), migrate, token and version. serve wires
// the store, auth, the realtime node and the HTTP listeners together
// (routes.go mounts every route on one screen) and owns their lifetimes:
// an errgroup runs the main and admin HTTP servers; the realtime node runs
// beside them and stops last. On SIGINT or SIGTERM readiness turns false,
// the drain hooks run, the HTTP servers shut down, the node stops and the
// store closes; a second signal ends the process at once.
//
// See README.md for the settings.
package main
