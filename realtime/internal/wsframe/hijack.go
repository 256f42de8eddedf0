package realtime

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
)

// Buffer sizes of an upgraded connection. net/http hands a hijacked
// connection 4 KiB buffers each way, which an idle connection would hold
// for its whole life. Reads of large payloads bypass the read buffer, so
// 1 KiB costs nothing there. The library writes only control frames,
// through a buffer just large enough for the largest (2+125 bytes) into a
// frameConn; the writer frames data itself in a pooled buffer, so no
// connection keeps a write buffer while idle.
const (
	connReadBuffer  = 1 << 10
	connWriteBuffer = 128
)

// smallBuffers wraps the ResponseWriter of an upgrade so that the
// connection gets small buffers and a frameConn when the WebSocket library
// hijacks it. conn receives the frameConn.
type smallBuffers struct {
	http.ResponseWriter
	conn **frameConn
}

// Hijack takes the connection over from net/http and replaces its buffers,
// carrying over any bytes the client sent ahead.
func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	cc := &frameConn{Conn: conn}
	if sc, ok := conn.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			cc.raw = rc
		}
	}
	br := bufio.NewReaderSize(conn, connReadBuffer)
	if n := brw.Reader.Buffered(); n > 0 {
		// Bytes the client sent ahead of the upgrade's answer must stay
		// buffered: the WebSocket library takes what is buffered, then
		// reads the connection itself.
		ahead, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), conn), max(connReadBuffer, n))
		if _, err := br.Peek(n); err != nil {
			conn.Close()
			return nil, nil, err
		}
	}
	*w.conn = cc
	return cc, bufio.NewReadWriter(br, bufio.NewWriterSize(cc, connWriteBuffer)), nil
}

func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// frameConn is the connection under the WebSocket library. The library
// writes only control frames through it (pings, pongs, closes), each as
// one Write: a control frame is at most 127 bytes, which fits the
// connection's write buffer, and the library flushes after each one. Data
// frames bypass the library: the writer frames the text itself and sends
// header and payload in one write (writeText). mu orders the two, so a
// frame is never split by another.
type frameConn struct {
	net.Conn
	raw       syscall.RawConn // for writes that must not block; nil when the connection has none
	mu        sync.Mutex      // orders writes; guards closeSent
	closeSent bool            // a close frame has gone out: no data frame may follow
}

// Write sends a control frame written by the WebSocket library.
func (c *frameConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(p) > 0 && p[0]&0x0f == opClose {
		c.closeSent = true
	}
	return c.Conn.Write(p)
}

// Server frames are not masked, so a header is 2, 4 or 10 bytes (RFC 6455,
// section 5.2).
const (
	frameHeaderMax = 10
	opClose        = 0x8
	finText        = 0x80 | 0x1
)

// header writes the header of a final, unmasked text frame carrying
// b[frameHeaderMax:] into the end of the space the caller left free at the
// start of b, and returns the frame: header and payload, contiguous.
func header(b []byte) []byte {
	n := len(b) - frameHeaderMax
	var h int
	switch {
	case n <= 125:
		h = 2
		b[frameHeaderMax-1] = byte(n)
	case n <= 0xffff:
		h = 4
		b[frameHeaderMax-3] = 126
		binary.BigEndian.PutUint16(b[frameHeaderMax-2:], uint16(n))
	default:
		h = 10
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
	b[frameHeaderMax-h] = finText
	return b[frameHeaderMax-h:]
}

// writeText sends b[frameHeaderMax:] as one final, unmasked text frame.
// The caller leaves the first frameHeaderMax bytes of b free for the
// header, so header and payload go out in one write with no copy. It
// blocks for the write.
func (c *frameConn) writeText(b []byte) error {
	frame := header(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeSent {
		return net.ErrClosed
	}
	_, err := c.Conn.Write(frame)
	return err
}

// tryWriteText is writeText without blocking. When the socket cannot take
// the whole frame now, or another write is under way, it returns
// errWouldBlock with the frame's unsent bytes; held reports that part of
// the frame went out and c is still locked, so that nothing can come
// between its parts. finishText must then send the rest.
// w is the caller's write state.
func (c *frameConn) tryWriteText(w *nbWrite, b []byte) (rest []byte, held bool, err error) {
	frame := header(b)
	if c.raw == nil || !c.mu.TryLock() {
		return frame, false, errWouldBlock
	}
	if c.closeSent {
		c.mu.Unlock()
		return nil, false, net.ErrClosed
	}
	n, err := writeNow(w, c.raw, frame)
	if errors.Is(err, errWouldBlock) && n > 0 {
		return frame[n:], true, err
	}
	c.mu.Unlock()
	return frame[n:], false, err
}

// finishText sends, blocking, the rest of a frame that tryWriteText could
// not send whole; held is what tryWriteText returned.
func (c *frameConn) finishText(rest []byte, held bool) error {
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
