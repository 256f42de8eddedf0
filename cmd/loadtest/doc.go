// Command loadtest measures a running partyline gateway from a separate
// process. See docs/benchmarks.md for the figures and how they were made.
//
//	loadtest idle   [flags]   memory per idle connection
//	loadtest fanout [flags]   end-to-end fan-out latency and throughput
//
// It is a thin wrapper over package loadtest: main calls run(ctx, args,
// getenv, stdout, stderr), which parses the subcommand's flags and runs the
// driver until it ends or SIGINT/SIGTERM arrives.
package main
