//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package clips

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// haveFlock is true: the lock on a resumable upload includes a flock on
// its data file.
const haveFlock = true

// tryFlock takes an exclusive advisory lock on f without waiting, and
// reports whether it got it. Locks are per open file, so another process
// (another node sharing the directory) that holds one keeps this one out.
// On NFS, Linux turns it into a lock the server keeps, so nodes on other
// machines keep each other out too.
func tryFlock(f *os.File) (bool, error) {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EWOULDBLOCK):
			return false, nil
		case errors.Is(err, unix.EINTR):
			continue
		default:
			return false, err
		}
	}
}
