package wsframe

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
)

// Buffer sizes of an upgraded connection. net/http hands a hijacked
// connection 4 KiB buffers each way, which an idle connection would hold
// for its whole life. Reads of large payloads bypass the read buffer, so
// 1 KiB costs nothing there. The library writes only control frames,
// through a buffer just large enough for the largest (2+125 bytes) into a
// Conn; the caller frames data itself, so no connection keeps a write
// buffer while idle.
const (
	readBuffer  = 1 << 10
	writeBuffer = 128
)

// ResponseWriter wraps the ResponseWriter of an upgrade so that the
// connection the WebSocket library hijacks from it gets small buffers and
// becomes a Conn. Pass a pointer to websocket.Accept; after a successful
// Accept, Conn is the connection under the library.
type ResponseWriter struct {
	http.ResponseWriter
	Conn *Conn
}

// Hijack takes the connection over from net/http and replaces its buffers,
// carrying over any bytes the client sent ahead.
func (w *ResponseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	cc := newConn(conn)
	br := bufio.NewReaderSize(conn, readBuffer)
	if n := brw.Reader.Buffered(); n > 0 {
		// Bytes the client sent ahead of the upgrade's answer must stay
		// buffered: the WebSocket library takes what is buffered, then
		// reads the connection itself.
		ahead, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), conn), max(readBuffer, n))
		if _, err := br.Peek(n); err != nil {
			conn.Close()
			return nil, nil, err
		}
	}
	w.Conn = cc
	return cc, bufio.NewReadWriter(br, bufio.NewWriterSize(cc, writeBuffer)), nil
}

// Unwrap returns the wrapped ResponseWriter, for http.ResponseController.
func (w *ResponseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
