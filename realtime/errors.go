package realtime

import (
	"context"
	"errors"
	"fmt"

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

// errorf returns an error with the message msg that wraps kind.
func errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// Errorf returns an error whose message is the formatted text and which
// wraps kind, one of the partyline error kinds; extensions use it so the
// client sees a clean message with the right code.
func Errorf(kind error, format string, args ...any) error { return errorf(kind, format, args...) }
