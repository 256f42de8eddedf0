// Package metrics holds the load harness's measurements: counters, gauges,
// rates and trends, each kept per tag set so that thresholds and the
// summary can look at a sub-metric such as
// ws_fanout_latency{scenario:chat}.
//
// Trends are HDR histograms of durations in microseconds (or of plain
// values, for trends that are not times), so a distributed run merges the
// agents' histograms into one that equals a histogram over all samples.
// A Snapshot is the serializable state of a Registry; Merge adds one
// Snapshot into another.
//
// # Concurrency
//
// A Registry and its metrics are safe for concurrent use. Each sink has its
// own mutex, taken once per sample; the registry's mutex guards only the
// maps from names and tag sets to sinks, and the common path (a metric
// handle reused with the same tags) does not take it. The package starts
// no goroutines: the runner calls Tick for time series.
package metrics
