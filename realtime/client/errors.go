package client

import (
	"errors"
	"fmt"

	"github.com/coder/websocket"
)

var (
	// ErrDisconnected means the connection was lost before a request got its
	// reply, or a notification was sent while no connection was up. A request
	// that fails with it may or may not have reached the server; retry a
	// publish with the same idem key.
	ErrDisconnected = errors.New("disconnected")
	// ErrClosed means the client has stopped: Close was called, or it gave
	// up reconnecting, in which case the error also wraps the reason (see
	// Client.Err).
	ErrClosed = errors.New("client closed")
	// ErrTooLarge means an encoded request is over the server's
	// max_frame_bytes. It was not sent, because the server would close the
	// connection with 1009.
	ErrTooLarge = errors.New("request over the frame limit")
)

// Error is an error reply from the server. Code is one of the wire.Code*
// constants.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// CloseError is the close frame the server ended a connection with. Code is
// one of the wire.Close* constants (or another WebSocket status code).
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("closed with %d", e.Code)
	}
	return fmt.Sprintf("closed with %d: %s", e.Code, e.Reason)
}

// ErrorCode returns the code of the *Error in err's chain, or "" when there
// is none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// CloseCode returns the WebSocket close code in err's chain, or -1 when err
// did not come from a close frame (an abrupt drop, a dial failure, a
// timeout).
func CloseCode(err error) int {
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return int(websocket.CloseStatus(err))
}

// closeError turns a read error into a *CloseError when the server sent a
// close frame, and returns it unchanged otherwise.
func closeError(err error) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: int(ce.Code), Reason: ce.Reason}
	}
	return err
}

// disconnected is the error of a request whose connection went away.
func disconnected(typ string, cause error) error {
	if errors.Is(cause, ErrClosed) {
		return fmt.Errorf("client: %s: %w", typ, ErrClosed)
	}
	return fmt.Errorf("client: %s: %w: %w", typ, ErrDisconnected, cause)
}
