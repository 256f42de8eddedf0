package srtpdirect

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// sharePortSupported: Linux spreads the datagrams of a port over the
// sockets that share it (SO_REUSEPORT), always the same socket for one
// remote address.
const sharePortSupported = true

// sharePort lets the socket share its port with the node's other sockets
// (of the same user only, as the kernel enforces).
func sharePort(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}
