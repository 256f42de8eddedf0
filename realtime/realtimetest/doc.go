// Package realtimetest holds the conformance suites for the realtime
// backends: TestStream, TestBroker and TestPresence. Every implementation
// of realtime.Stream, realtime.Broker and realtime.Presence runs them from
// its own tests (the memory ones in package realtime, the Redis ones in
// realtime/redisbroker), so all of them keep the same contract.
//
// A suite builds a fresh implementation for each subtest through the
// constructor it is given, and uses unique random channel and user names,
// so implementations that share an outside server across runs do not see
// each other's data. The constructor registers its own cleanup with
// t.Cleanup.
//
// Concurrency: the stream and broker suites start the broker's Run in one
// goroutine per subtest, with a recording Deliverer, and stop it (cancel,
// then wait for Run to return) in the subtest's cleanup, so no goroutine
// outlives a subtest. The concurrency subtests start their publisher
// goroutines themselves and wait for them. Waits poll with a deadline;
// nothing sleeps for a fixed time.
package realtimetest
