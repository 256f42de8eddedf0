// Package summary owns what a partyline load run leaves behind, in the
// shapes a k6 user knows:
//
//   - Text writes the end-of-test summary: the scenarios, the thresholds
//     with ✓ or ✗ under each metric key, the checks, and one dot-padded row
//     per metric, grouped into sections (HTTP, EXECUTION, NETWORK,
//     WEBSOCKET, and RECOVERY, PRESENCE, VOICE and CUSTOM for partyline's
//     own metrics). A sub-metric named in a threshold is shown indented
//     under its metric.
//   - Export writes the --summary-export JSON in k6's legacy shape. As in
//     k6, a threshold's boolean there is true when the threshold FAILED.
//   - NewNDJSON returns the --out json=FILE sample writer: one JSON line per
//     sample ("Point"), after a "Metric" line the first time a metric is
//     seen.
//   - HTML writes the --report file: one self-contained page (inline CSS,
//     inline SVG charts drawn here, no scripts or fonts fetched) with the
//     summary, the thresholds, the checks, latency over time for every time
//     trend and throughput over time for the counters, and the chart data
//     embedded as JSON.
//
// Time trends are in milliseconds and are printed as k6 prints them
// (850µs, 1.23ms, 2.5s). A metric without samples is left out of the
// summaries unless a threshold names it. Checks are the Rate metric
// "checks", one check per value of its "check" tag.
//
// # Concurrency
//
// Text, Export and HTML read the registry through its own locking and may
// run while samples are still being recorded; they start no goroutines.
// The function NewNDJSON returns is safe for concurrent use: it encodes a
// sample on the caller's goroutine and takes one mutex to append it to a
// buffered writer; flush takes the same mutex, so it may run at any time.
// The first sample of a metric looks the metric up in the registry while
// holding that mutex (lock order: the writer's mutex, then the
// registry's), which is safe because the registry never calls its
// SampleFunc with a lock held.
package summary
