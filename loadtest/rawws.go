// rawConn frames per RFC 6455 independently of coder/websocket, so a library upgrade does not affect it.

package loadtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/partyline/partyline/realtime/wire"
)

// rawConn is the harness's leanest WebSocket client, for connections that
// mostly sit idle: no buffered reader or writer, no goroutine of its own
// besides the one that reads, and a frame buffer borrowed from a pool only
// while a frame is in hand. It speaks just enough of RFC 6455 for the
// gateway: masked text frames out, unfragmented or fragmented text frames
// in, pings answered with pongs, and the close handshake.
type rawConn struct {
	c  net.Conn
	wm sync.Mutex // serializes writes: the reader answers pings
}

// wsGUID is RFC 6455's key suffix for Sec-WebSocket-Accept.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// WebSocket opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// dialRaw connects to the ws:// URL with dial, upgrades with the
// partyline subprotocol, sends hello and a sub for each channel in one
// frame, and waits for every reply. The context bounds the whole setup.
func dialRaw(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), rawURL, token string, channels []string) (*rawConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "ws" {
		return nil, fmt.Errorf("websocket URL %q: want ws://host:port/path", rawURL)
	}
	c, err := dial(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	rc := &rawConn{c: c}
	fail := func(err error) (*rawConn, error) { c.Close(); return nil, err }

	var keyRaw [16]byte
	_, _ = rand.Read(keyRaw[:])
	key := base64.StdEncoding.EncodeToString(keyRaw[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
		"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + wire.Subprotocol + "\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		return fail(err)
	}
	// The handshake reply is read through a small bufio.Reader that is
	// dropped afterwards; the server sends nothing more before hello's
	// reply, which is requested only below.
	br := bufio.NewReaderSize(c, 512)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fail(fmt.Errorf("handshake: %w", err))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fail(fmt.Errorf("handshake: %s", resp.Status))
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		return fail(errors.New("handshake: bad Sec-WebSocket-Accept"))
	}
	if br.Buffered() > 0 {
		return fail(errors.New("handshake: data before the first request"))
	}

	if err := rc.write(opText, helloFrame(token, channels)); err != nil {
		return fail(err)
	}
	if _, err := awaitHello(func() ([]byte, error) { return rc.next(nil) }, len(channels)); err != nil {
		return fail(err)
	}
	_ = c.SetDeadline(time.Time{})
	return rc, nil
}

// write sends one masked frame.
func (rc *rawConn) write(op byte, payload []byte) error {
	var hdr [14]byte
	hdr[0] = 0x80 | op
	n := 2
	switch l := len(payload); {
	case l < 126:
		hdr[1] = 0x80 | byte(l)
	case l <= 0xFFFF:
		hdr[1] = 0x80 | 126
		binary.BigEndian.PutUint16(hdr[2:], uint16(l))
		n = 4
	default:
		hdr[1] = 0x80 | 127
		binary.BigEndian.PutUint64(hdr[2:], uint64(l))
		n = 10
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	copy(hdr[n:], mask[:])
	n += 4
	buf := make([]byte, 0, n+len(payload))
	buf = append(buf, hdr[:n]...)
	for i, b := range payload {
		buf = append(buf, b^mask[i&3])
	}
	rc.wm.Lock()
	defer rc.wm.Unlock()
	_, err := rc.c.Write(buf)
	return err
}

// errClosed is a close frame from the server; code is its status.
type errClosed struct{ code int }

func (e errClosed) Error() string { return fmt.Sprintf("websocket closed with %d", e.code) }

// next reads the next text message, answering pings on the way, and
// appends it to buf. A close frame is answered and returned as errClosed.
func (rc *rawConn) next(buf []byte) ([]byte, error) {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(rc.c, hdr[:2]); err != nil {
			return buf, err
		}
		fin, op := hdr[0]&0x80 != 0, hdr[0]&0x0F
		if hdr[1]&0x80 != 0 {
			return buf, errors.New("websocket: masked frame from the server")
		}
		l := uint64(hdr[1] & 0x7F)
		switch l {
		case 126:
			if _, err := io.ReadFull(rc.c, hdr[:2]); err != nil {
				return buf, err
			}
			l = uint64(binary.BigEndian.Uint16(hdr[:2]))
		case 127:
			if _, err := io.ReadFull(rc.c, hdr[:8]); err != nil {
				return buf, err
			}
			l = binary.BigEndian.Uint64(hdr[:8])
		}
		if l > maxReadBytes {
			return buf, fmt.Errorf("websocket: frame of %d bytes", l)
		}
		switch op {
		case opText, opBinary, opContinuation:
			start := len(buf)
			buf = append(buf, make([]byte, l)...)
			if _, err := io.ReadFull(rc.c, buf[start:]); err != nil {
				return buf, err
			}
			if fin {
				return buf, nil
			}
		case opPing, opPong, opClose:
			var ctl [125]byte
			if l > 125 {
				return buf, errors.New("websocket: control frame too long")
			}
			if _, err := io.ReadFull(rc.c, ctl[:l]); err != nil {
				return buf, err
			}
			switch op {
			case opPing:
				if err := rc.write(opPong, ctl[:l]); err != nil {
					return buf, err
				}
			case opClose:
				code := 1005
				if l >= 2 {
					code = int(binary.BigEndian.Uint16(ctl[:2]))
				}
				_ = rc.write(opClose, ctl[:min(l, 2)])
				return buf, errClosed{code}
			}
		default:
			return buf, fmt.Errorf("websocket: opcode %d", op)
		}
	}
}

// close sends a normal close frame and closes the connection; the reader
// then ends.
func (rc *rawConn) close() {
	_ = rc.write(opClose, []byte{0x03, 0xE8}) // 1000
	_ = rc.c.Close()
}

// closeNow closes the connection without the handshake.
func (rc *rawConn) closeNow() { _ = rc.c.Close() }

// closeCode is the WebSocket close code of a read error: the server's
// status for a close frame, 1006 for a connection that just ended.
func closeCode(err error) int {
	var ec errClosed
	if errors.As(err, &ec) {
		return ec.code
	}
	return 1006
}
