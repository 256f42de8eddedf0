//go:build !unix

package realtime

import "syscall"

// nbWrite has no use here: there is no write that does not wait.
type nbWrite struct{}

func newNBWrite() *nbWrite { return &nbWrite{} }

// writeNow has no non-blocking form here: every write is handed to a
// goroutine that may block.
func writeNow(*nbWrite, syscall.RawConn, []byte) (int, error) { return 0, errWouldBlock }
