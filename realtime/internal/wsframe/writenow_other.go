//go:build !unix

package wsframe

import "syscall"

// NBWrite has no use here: there is no write that does not wait.
type NBWrite struct{}

// NewNBWrite returns the write state for a goroutine's TryWriteText calls.
func NewNBWrite() *NBWrite { return &NBWrite{} }

// writeNow has no non-blocking form here: every write is handed to a
// goroutine that may block.
func writeNow(*NBWrite, syscall.RawConn, []byte) (int, error) { return 0, ErrWouldBlock }
