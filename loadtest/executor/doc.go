// Package executor runs a scenario's iterations the way k6's executors do:
// constant-vus, ramping-vus, constant-arrival-rate, ramping-arrival-rate,
// per-vu-iterations and shared-iterations, with k6's option names
// (vus, duration, stages, rate, timeUnit, preAllocatedVUs, maxVUs,
// startTime, gracefulStop, gracefulRampDown, iterations, maxDuration).
//
// The arrival-rate executors are open models: iteration n is scheduled at
// the time the integral of the rate reaches n, whether or not earlier
// iterations have finished, and VU.Scheduled carries that intended time so
// that latencies measured from it include any delay in starting (no
// coordinated omission). When no VU is free and maxVUs are allocated, the
// iteration is dropped and counted in dropped_iterations.
//
// # Concurrency
//
// Run starts one goroutine per VU and, for the timing of the end, one
// more; it waits for the VUs before it returns, and the timing goroutine
// ends with the run's context, which Run cancels as it returns. A VU runs one
// iteration at a time, so the scenario's per-VU State needs no lock of its
// own. Retire is called on the VU's goroutine after its last iteration.
package executor
