package realtime

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"sync"
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
	mu        sync.Mutex // orders writes; guards closeSent
	closeSent bool       // a close frame has gone out: no data frame may follow
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

// writeText sends b[frameHeaderMax:] as one final, unmasked text frame.
// The caller leaves the first frameHeaderMax bytes of b free; the header
// is written into the end of that space, so header and payload go out in
// one write with no copy. It blocks for the write.
func (c *frameConn) writeText(b []byte) error {
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeSent {
		return net.ErrClosed
	}
	_, err := c.Conn.Write(b[frameHeaderMax-h:])
	return err
}
