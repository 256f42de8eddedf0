// Package httpx is the HTTP plumbing every REST route shares: RFC 9457
// problem+json errors (routers that answer unknown routes with them too), the one mapping from domain errors to statuses,
// request ids, panic recovery, an access log, body limits, JSON decoding,
// the shape of a part of the OpenAPI document, and an http.Server with sane
// timeouts.
//
// cmd/partyline wraps its routers with the middleware here, and every domain
// package writes its errors with Error. AccessLog puts its logger in the
// request context, and Recover, Error and JSON log through it (Logger), so
// each server's panics and 5xx errors reach that server's log even when
// several run in one process; there is no process-wide logger to set.
// Nothing here starts goroutines; all functions are safe for concurrent use.
package httpx
