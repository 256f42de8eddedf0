//go:build unix

package wsframe

import "syscall"

// NBWrite is the state of a write that must not wait for the socket, for
// one goroutine at a time. Its do method is bound once (NewNBWrite), so a
// write allocates nothing.
type NBWrite struct {
	p   []byte
	n   int
	err error
	do  func(fd uintptr) bool
}

// NewNBWrite returns the write state for a goroutine's TryWriteText calls.
func NewNBWrite() *NBWrite {
	w := &NBWrite{}
	w.do = w.write
	return w
}

func (w *NBWrite) write(fd uintptr) bool {
	for w.n < len(w.p) {
		m, e := syscall.Write(int(fd), w.p[w.n:])
		if m > 0 {
			w.n += m
		}
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			w.err = ErrWouldBlock
		case e != nil:
			w.err = e
		case m <= 0:
			w.err = ErrWouldBlock
		default:
			continue
		}
		break
	}
	return true // done either way: never wait for the socket here
}

// writeNow writes p to the socket without waiting for it to become
// writable: it returns ErrWouldBlock, with what was written, when the
// socket's buffer cannot take all of p. w is the caller's, used by one
// goroutine at a time.
func writeNow(w *NBWrite, rc syscall.RawConn, p []byte) (int, error) {
	w.p, w.n, w.err = p, 0, nil
	err := rc.Write(w.do)
	n, werr := w.n, w.err
	w.p, w.err = nil, nil
	if err != nil {
		return n, err
	}
	return n, werr
}
