// Package threshold owns partyline's pass/fail criteria for a load run, in
// k6's threshold grammar, so that a k6 user's thresholds work unchanged:
//
//	"thresholds": {
//	  "http_req_duration": ["p(95)<200", "avg<=100"],
//	  "ws_fanout_latency{scenario:chat}": [
//	    {"threshold": "p(99)<100", "abortOnFail": true, "delayAbortEval": "10s"}
//	  ],
//	  "checks": ["rate>0.99"],
//	  "recovery_gaps": ["count==0"]
//	}
//
// A key is a metric name, optionally followed by a tag filter that selects
// a sub-metric: name{tag:value,tag2:"value, with comma"}. Values may be
// quoted with " or ' and must be quoted when they hold a comma or a brace.
//
// An expression is "aggregation operator number", whitespace tolerant. The
// aggregations a metric type allows are:
//
//	trend    avg min max med p(N)   (N from 0 to 100, decimals allowed)
//	counter  count rate             (rate is the count per second of the run)
//	rate     rate                   (passes / samples)
//	gauge    value min max
//
// Operators are < <= > >= == === != (=== is the same as ==). Time trends
// are compared in milliseconds, as in k6.
//
// Parse rejects what is wrong whatever the metric: an unknown aggregation,
// a missing operator or number, a bad tag filter, a bad delayAbortEval.
// Whether an aggregation fits its metric is known only once the metric is
// registered, so Evaluate reports a mismatch as the Result's Err (and the
// result fails); Check reports every mismatch and every metric that was
// never registered, for the runner to show as a configuration error at
// the end of the run.
//
// Metrics without samples follow k6: a metric that is registered but has
// no samples (in the sub-metric's tag sets) is evaluated over zero values,
// so "count==0" passes and "rate>0.99" fails; the Result says NoData. A
// metric that is not registered yet is not evaluated: its Result passes,
// says NoData and Missing, and never aborts the run.
//
// A failed threshold with abortOnFail asks the runner to stop the run once
// the run has lasted delayAbortEval (Result.Abort); the runner decides
// what to do with it.
//
// # Concurrency
//
// A Set is immutable after Parse and safe for concurrent use. Evaluate and
// Check read the registry through its own locking and start no goroutines;
// the runner calls Evaluate periodically and once at the end.
package threshold
