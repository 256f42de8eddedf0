package partyline

import (
	"errors"
	"fmt"
)

// The domain error kinds. Callers test for them with errors.Is.
var (
	// ErrInvalid means the input is malformed or breaks a rule (HTTP 400, bad_request).
	ErrInvalid = errors.New("invalid input")
	// ErrUnauthorized means there is no valid identity (HTTP 401, unauthorized).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden means the caller is known but not allowed (HTTP 403, forbidden).
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound means the thing does not exist, or is not visible to the caller (HTTP 404, not_found).
	ErrNotFound = errors.New("not found")
	// ErrConflict means the request clashes with the current state (HTTP 409, conflict).
	ErrConflict = errors.New("conflict")
	// ErrTooLarge means the data is over a size limit (HTTP 413, too_large).
	ErrTooLarge = errors.New("too large")
	// ErrUnsupported means the media type is not accepted (HTTP 415).
	ErrUnsupported = errors.New("unsupported media type")
	// ErrRateLimited means the caller is over a rate limit (HTTP 429, rate_limited).
	ErrRateLimited = errors.New("rate limited")
	// ErrLimitExceeded means a count limit is reached: subscriptions, room capacity (HTTP 409, limit_exceeded).
	ErrLimitExceeded = errors.New("limit exceeded")
	// ErrUnavailable means a dependency is down; retry later (HTTP 503, unavailable).
	ErrUnavailable = errors.New("unavailable")
)

// Errorf returns an error whose message is the formatted text alone and
// which wraps kind, one of the errors above, so errors.Is finds the kind
// while clients see a clean message.
func Errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }

// Public reports whether err's message was written for clients: err was
// made by Errorf itself rather than wrapped around another error, whose
// text could name hosts, queries or other internals.
func Public(err error) bool {
	_, ok := err.(*kindError)
	return ok
}
func (e *kindError) Unwrap() error { return e.kind }
