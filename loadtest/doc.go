// Package loadtest is partyline's load harness. Run runs a test in k6's
// shape (Config: scenarios, each an exec'd Go Scenario under one of the
// executors of loadtest/executor, and thresholds of loadtest/threshold),
// recording into a loadtest/metrics Registry that loadtest/summary turns
// into the end-of-test summary, the JSON export and the HTML report. Agent
// and Coordinate split one test over several processes and merge their
// metrics exactly. Scenarios register themselves by name
// (RegisterScenario); each lives in a scenario_*.go file. cmd/loadtest is
// the command line, and docs/loadtest.md documents every option, scenario
// and metric.
//
// The older drivers RunIdle (memory per idle connection) and RunFanout
// (server API fan-out latency and throughput) measure the gateway for
// docs/benchmarks.md with the same lean connections as connect-idle.
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
// Concurrency: Run starts the executors' VU goroutines (see
// loadtest/executor) and one monitor goroutine that ticks the time series,
// writes the progress line and evaluates thresholds; it waits for all of
// them. A scenario's VU state is touched only by its VU's goroutine and,
// for sessions, by the session's pump goroutine, which Retire stops. The
// Agent runs one job at a time on a goroutine that Close waits for.
//
// Dial sets connections up from a bounded errgroup and starts
// each one's reader goroutine as soon as it is subscribed, so no
// connection sits unread while the others are set up; Fleet.Close closes
// the sockets and waits for the readers. Pace runs its worker goroutines
// and waits for them before it returns. Recorder shards each have a mutex;
// a reader takes only its own shard's, once per frame. RunIdle and
// RunFanout return only after everything they started has ended.
package loadtest
