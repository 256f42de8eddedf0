//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package clips

import "os"

// tryFlock takes no lock here: where flock(2) is missing, the lock on a
// resumable upload is only the process's own.
func tryFlock(*os.File) (bool, error) { return true, nil }
