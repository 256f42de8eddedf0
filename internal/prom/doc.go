// Package prom builds and registers the Prometheus collectors of the domain
// packages (realtime, signaling, feed): one-line constructors for the plain
// counters and gauges that make up most of their metrics, and Register,
// which puts a list of collectors on a Registerer.
//
// Each package keeps its own metric names, help strings and labels; this
// package only spares them the option structs. Nothing here starts
// goroutines, and every function is safe for concurrent use.
package prom
