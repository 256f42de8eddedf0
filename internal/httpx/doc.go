// Package httpx is the HTTP plumbing every REST route shares: RFC 9457
// problem+json errors, the one mapping from domain errors to statuses,
// request ids, panic recovery, an access log, body limits, JSON decoding and
// an http.Server with sane timeouts.
//
// cmd/partyline wraps its routers with the middleware here, and every domain
// package writes its errors with Error. Nothing here starts goroutines; all
// functions are safe for concurrent use.
package httpx
