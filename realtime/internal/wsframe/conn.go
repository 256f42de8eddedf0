package wsframe

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"syscall"
)

// ErrWouldBlock reports that a socket could not take a whole frame without
// blocking.
var ErrWouldBlock = errors.New("wsframe: write would block")

// Conn is the connection under the WebSocket library. The library writes
// only control frames through it (pings, pongs, closes), each as one
// Write: a control frame is at most 127 bytes, which fits the connection's
// write buffer, and the library flushes after each one. Data frames bypass
// the library: the caller hands their payload to WriteText or TryWriteText,
// which frame it and send header and payload in one write. mu orders the
// two, so a frame is never split by another.
type Conn struct {
	net.Conn
	raw       syscall.RawConn // for writes that must not block; nil when the connection has none
	mu        sync.Mutex      // orders writes; guards closeSent
	closeSent bool            // a close frame has gone out: no data frame may follow
}

func newConn(nc net.Conn) *Conn {
	c := &Conn{Conn: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.raw = rc
		}
	}
	return c
}

// Write sends a control frame written by the WebSocket library.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(p) > 0 && p[0]&0x0f == opClose {
		c.closeSent = true
	}
	return c.Conn.Write(p)
}

// CloseSent reports whether the library has written a close frame, after
// which no data frame goes out.
func (c *Conn) CloseSent() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeSent
}

// HeaderMax is the room a caller leaves free at the start of a buffer for
// the header of the frame: server frames are not masked, so a header is 2,
// 4 or 10 bytes (RFC 6455, section 5.2).
const HeaderMax = 10

const (
	opClose = 0x8
	finText = 0x80 | 0x1
)

// header writes the header of a final, unmasked text frame carrying
// b[HeaderMax:] into the end of the space the caller left free at the
// start of b, and returns the frame: header and payload, contiguous.
func header(b []byte) []byte {
	n := len(b) - HeaderMax
	var h int
	switch {
	case n <= 125:
		h = 2
		b[HeaderMax-1] = byte(n)
	case n <= 0xffff:
		h = 4
		b[HeaderMax-3] = 126
		binary.BigEndian.PutUint16(b[HeaderMax-2:], uint16(n))
	default:
		h = 10
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
	b[HeaderMax-h] = finText
	return b[HeaderMax-h:]
}

// WriteText sends b[HeaderMax:] as one final, unmasked text frame. The
// caller leaves the first HeaderMax bytes of b free for the header, so
// header and payload go out in one write with no copy. It blocks for the
// write, and returns net.ErrClosed once a close frame has gone out.
func (c *Conn) WriteText(b []byte) error {
	frame := header(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeSent {
		return net.ErrClosed
	}
	_, err := c.Conn.Write(frame)
	return err
}

// TryWriteText is WriteText without blocking. When the socket cannot take
// the whole frame now, or another write is under way, it returns
// ErrWouldBlock with the frame's unsent bytes; held reports that part of
// the frame went out and c is still locked, so that nothing can come
// between its parts. FinishText must then send the rest. w is the
// caller's write state.
func (c *Conn) TryWriteText(w *NBWrite, b []byte) (rest []byte, held bool, err error) {
	frame := header(b)
	if c.raw == nil || !c.mu.TryLock() {
		return frame, false, ErrWouldBlock
	}
	if c.closeSent {
		c.mu.Unlock()
		return nil, false, net.ErrClosed
	}
	n, err := writeNow(w, c.raw, frame)
	if errors.Is(err, ErrWouldBlock) && n > 0 {
		return frame[n:], true, err
	}
	c.mu.Unlock()
	return frame[n:], false, err
}

// FinishText sends, blocking, the rest of a frame that TryWriteText could
// not send whole; held is what TryWriteText returned.
func (c *Conn) FinishText(rest []byte, held bool) error {
	if !held {
		c.mu.Lock()
		if c.closeSent {
			c.mu.Unlock()
			return net.ErrClosed
		}
	}
	defer c.mu.Unlock()
	_, err := c.Conn.Write(rest)
	return err
}
