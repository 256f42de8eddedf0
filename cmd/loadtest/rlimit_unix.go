//go:build unix

package main

import "syscall"

// raiseOpenFiles raises this process's open-file limit to its hard limit
// when it may, and returns the limit and the hard limit.
func raiseOpenFiles() (files, hard uint64, ok bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, false
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			lim = raised
		}
	}
	return uint64(lim.Cur), uint64(lim.Max), true
}
