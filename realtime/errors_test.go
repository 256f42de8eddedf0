package realtime

import (
	"errors"
	"fmt"
	"testing"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime/wire"
)

// TestErrorMessage: a reply says what a client can act on, never the
// internals behind an internal error or an outage.
func TestErrorMessage(t *testing.T) {
	driver := errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")
	for _, tc := range []struct {
		err        error
		code, want string
	}{
		{partyline.Errorf(partyline.ErrInvalid, "channel is required"), wire.CodeBadRequest, "channel is required"},
		{partyline.Errorf(partyline.ErrUnavailable, "node is draining"), wire.CodeUnavailable, "node is draining"},
		{fmt.Errorf("store: get user: %w: %w", partyline.ErrUnavailable, driver), wire.CodeUnavailable, "a dependency is unavailable; retry later"},
		{fmt.Errorf("wrapped: %w", partyline.Errorf(partyline.ErrUnavailable, "stream unavailable")), wire.CodeUnavailable, "a dependency is unavailable; retry later"},
		{driver, wire.CodeInternal, "internal error"},
	} {
		if code, msg := ErrorCode(tc.err), ErrorMessage(tc.err); code != tc.code || msg != tc.want {
			t.Errorf("%v: got %s %q, want %s %q", tc.err, code, msg, tc.code, tc.want)
		}
	}
}
