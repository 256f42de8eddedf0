//go:build unix

package realtime

import "syscall"

// nbWrite is the state of a write that must not wait for the socket. Its
// do method is bound once (newNBWrite), so a write allocates nothing.
type nbWrite struct {
	p   []byte
	n   int
	err error
	do  func(fd uintptr) bool
}

func newNBWrite() *nbWrite {
	w := &nbWrite{}
	w.do = w.write
	return w
}

func (w *nbWrite) write(fd uintptr) bool {
	for w.n < len(w.p) {
		m, e := syscall.Write(int(fd), w.p[w.n:])
		if m > 0 {
			w.n += m
		}
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			w.err = errWouldBlock
		case e != nil:
			w.err = e
		case m <= 0:
			w.err = errWouldBlock
		default:
			continue
		}
		break
	}
	return true // done either way: never wait for the socket here
}

// writeNow writes p to the socket without waiting for it to become
// writable: it returns errWouldBlock, with what was written, when the
// socket's buffer cannot take all of p. w is the caller's, used by one
// goroutine at a time.
func writeNow(w *nbWrite, rc syscall.RawConn, p []byte) (int, error) {
	w.p, w.n, w.err = p, 0, nil
	err := rc.Write(w.do)
	n, werr := w.n, w.err
	w.p, w.err = nil, nil
	if err != nil {
		return n, err
	}
	return n, werr
}
