//go:build !linux

package srtpdirect

import "syscall"

// sharePortSupported: elsewhere a port has one socket.
const sharePortSupported = false

func sharePort(_, _ string, _ syscall.RawConn) error { return nil }
