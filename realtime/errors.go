package realtime

import (
	"context"
	"errors"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime/wire"
)

// ErrorCode maps a domain error to its wire error code.
func ErrorCode(err error) string {
	switch {
	case errors.Is(err, partyline.ErrInvalid):
		return wire.CodeBadRequest
	case errors.Is(err, partyline.ErrUnauthorized):
		return wire.CodeUnauthorized
	case errors.Is(err, partyline.ErrForbidden):
		return wire.CodeForbidden
	case errors.Is(err, partyline.ErrNotFound):
		return wire.CodeNotFound
	case errors.Is(err, partyline.ErrConflict):
		return wire.CodeConflict
	case errors.Is(err, partyline.ErrRateLimited):
		return wire.CodeRateLimited
	case errors.Is(err, partyline.ErrTooLarge):
		return wire.CodeTooLarge
	case errors.Is(err, partyline.ErrLimitExceeded):
		return wire.CodeLimitExceeded
	case errors.Is(err, partyline.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return wire.CodeUnavailable
	}
	return wire.CodeInternal
}

// ErrorMessage is the text of err for an error reply: err's own message
// when it was written for clients, and otherwise a generic one, so that an
// internal error or the cause of an outage (a driver error naming a host)
// never reaches a client. Servers log the full error.
func ErrorMessage(err error) string {
	switch code := ErrorCode(err); {
	case code == wire.CodeInternal:
		return "internal error"
	case code == wire.CodeUnavailable && !partyline.Public(err):
		return "a dependency is unavailable; retry later"
	}
	return err.Error()
}
