package realtime

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
// 1 KiB costs nothing there; a 2 KiB write buffer still sends a typical
// packed frame of small messages in one write.
const (
	connReadBuffer  = 1 << 10
	connWriteBuffer = 2 << 10
)

// smallBuffers wraps the ResponseWriter of an upgrade so that the
// connection gets smaller buffers when the WebSocket library hijacks it.
type smallBuffers struct {
	http.ResponseWriter
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
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(conn, connWriteBuffer)), nil
}

func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }
