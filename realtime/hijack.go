package realtime

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
)

// Buffer sizes of an upgraded connection. net/http hands a hijacked
// connection 4 KiB buffers each way, which an idle connection would hold
// for its whole life. Reads of large payloads bypass the read buffer, so
// 1 KiB costs nothing there. Writes go through a tiny buffer into a
// corkConn, which gathers a whole frame in a pooled buffer and sends it
// with one write, so no connection keeps a write buffer while idle.
const (
	connReadBuffer  = 1 << 10
	connWriteBuffer = 128
)

// smallBuffers wraps the ResponseWriter of an upgrade so that the
// connection gets small buffers and a corkConn when the WebSocket library
// hijacks it. conn receives the corkConn.
type smallBuffers struct {
	http.ResponseWriter
	conn **corkConn
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
	cc := &corkConn{Conn: conn}
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

// corkBufPool holds the buffers corked writes gather into.
var corkBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// corkConn is the connection under the WebSocket library. While corked,
// its writes gather in a pooled buffer; uncork sends them as one write and
// returns the buffer. Uncorked, writes go straight to the socket: control
// frames (pings, pongs, closes) written from other goroutines.
type corkConn struct {
	net.Conn
	mu     sync.Mutex // guards corked and buf, and orders writes
	corked bool
	buf    *[]byte
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = corkBufPool.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// cork starts gathering writes.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork sends what was gathered in one write and stops gathering. It
// blocks for the write.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if c.buf == nil {
		return nil
	}
	_, err := c.Conn.Write(*c.buf)
	if cap(*c.buf) <= 64<<10 {
		*c.buf = (*c.buf)[:0]
		corkBufPool.Put(c.buf)
	}
	c.buf = nil
	return err
}
