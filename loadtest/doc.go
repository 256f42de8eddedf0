// Package loadtest drives a running partyline gateway from a separate
// process and measures it: memory per idle connection (RunIdle) and
// end-to-end fan-out latency and throughput (RunFanout). cmd/loadtest is
// its command line; docs/benchmarks.md holds the figures it produced and
// the commands that reproduce them. The scenario runner, thresholds and
// reports of the full harness will be built on the same pieces.
//
// The client has to stay cheaper than the server it measures, since one
// core drives 10,000 connections:
//
//   - a connection is a coder/websocket.Conn with compression off and one
//     reader goroutine; it borrows a read buffer from a pool only while a
//     frame is in hand, and reads with a context that is never done, so no
//     per-read cancellation is armed;
//   - a delivered msg is not decoded: its offset and the "sent" time that
//     the publisher put in its data are found by searching for their keys
//     (message.go);
//   - latencies go into HDR histograms, one per Recorder shard, merged once
//     at the end.
//
// Latency is the receive time minus the send time, both read from the same
// wall clock on the same machine: the publisher takes the time just before
// it sends the server API request, and a reader just after a frame's header
// arrives. It thus covers the publish request, the fan-out, the socket
// writes and the client's own scheduling.
//
// Concurrency: Dial sets connections up from a bounded errgroup and starts
// each one's reader goroutine as soon as it is subscribed, so no
// connection sits unread while the others are set up; Fleet.Close closes
// the sockets and waits for the readers. Pace runs its worker goroutines
// and waits for them before it returns. Recorder shards each have a mutex;
// a reader takes only its own shard's, once per frame. RunIdle and
// RunFanout return only after everything they started has ended.
package loadtest
