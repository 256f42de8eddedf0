//go:build !linux

package signaling

import "syscall"

// sharePortSupported: elsewhere a port has one socket.
const sharePortSupported = false

func sharePort(_, _ string, _ syscall.RawConn) error { return nil }
