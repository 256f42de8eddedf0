package wsframe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// readFrame decodes one server frame (unmasked) as RFC 6455 section 5.2
// lays it out.
func readFrame(t *testing.T, r io.Reader) (fin bool, opcode byte, payload []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatalf("read header: %v", err)
	}
	if h[1]&0x80 != 0 {
		t.Fatalf("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			t.Fatal(err)
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
		if n < 126 {
			t.Fatalf("length %d in a 16-bit field: not minimal", n)
		}
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			t.Fatal(err)
		}
		n = binary.BigEndian.Uint64(ext[:])
		if n <= 0xffff {
			t.Fatalf("length %d in a 64-bit field: not minimal", n)
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	return h[0]&0x80 != 0, h[0] & 0x0f, payload
}

func TestConnWriteText(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	fc := newConn(server)
	sizes := []int{0, 1, 125, 126, 127, 0xffff, 0x10000, 70000}
	go func() {
		defer server.Close()
		for _, n := range sizes {
			b := make([]byte, HeaderMax, HeaderMax+n)
			for i := range n {
				b = append(b, byte('a'+i%26))
			}
			if err := fc.WriteText(b); err != nil {
				t.Errorf("WriteText(%d bytes): %v", n, err)
				return
			}
		}
	}()
	for _, n := range sizes {
		fin, op, p := readFrame(t, client)
		if !fin || op != 0x1 {
			t.Errorf("%d bytes: fin=%v opcode=%#x, want a final text frame", n, fin, op)
		}
		if len(p) != n {
			t.Fatalf("payload is %d bytes, want %d", len(p), n)
		}
		for i := range p {
			if p[i] != byte('a'+i%26) {
				t.Fatalf("%d bytes: payload differs at %d", n, i)
			}
		}
	}
}

// A data frame never follows a close frame that the WebSocket library has
// written, and the library's control frames pass through whole.
func TestConnNoDataAfterClose(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	defer server.Close()
	fc := newConn(server)
	pong := []byte{0x8a, 0x02, 'h', 'i'}
	closeFrame := []byte{0x88, 0x02, 0x03, 0xe8}
	done := make(chan error, 1)
	go func() {
		if _, err := fc.Write(pong); err != nil {
			done <- err
			return
		}
		if _, err := fc.Write(closeFrame); err != nil {
			done <- err
			return
		}
		done <- fc.WriteText(append(make([]byte, HeaderMax), "late"...))
	}()
	got := make([]byte, len(pong)+len(closeFrame))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(append([]byte{}, pong...), closeFrame...)) {
		t.Fatalf("control frames = %x", got)
	}
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteText after a close frame: %v, want net.ErrClosed", err)
	}
}

// tcpPair is a connected loopback TCP pair with small socket buffers, so
// that a writer fills them quickly.
func tcpPair(t *testing.T) (server *net.TCPConn, client *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc := <-accepted
	if sc == nil {
		t.Fatal("accept failed")
	}
	server, client = sc.(*net.TCPConn), cc.(*net.TCPConn)
	_ = server.SetWriteBuffer(8 << 10)
	_ = client.SetReadBuffer(8 << 10)
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// TryWriteText never blocks: once the socket is full it hands back the
// unsent part of the frame, and FinishText completes it before any other
// frame, so the stream stays whole.
func TestConnTryWriteText(t *testing.T) {
	server, client := tcpPair(t)
	fc := newConn(server)
	if fc.raw == nil {
		t.Fatal("a TCP connection has no raw connection")
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1024) // 16 KiB
	frame := func() []byte { return append(make([]byte, HeaderMax), payload...) }

	sent := 0
	var rest []byte
	var held bool
	var err error
	for ; sent < 10000; sent++ {
		rest, held, err = fc.TryWriteText(NewNBWrite(), frame())
		if err != nil {
			break
		}
	}
	if !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("after %d frames: %v, want ErrWouldBlock once the socket is full", sent, err)
	}
	// A control frame written meanwhile must wait for the partial frame.
	pong := []byte{0x8a, 0x00}
	done := make(chan error, 2)
	go func() { done <- fc.FinishText(rest, held) }()
	go func() {
		if held { // only then is there a partial frame to wait for
			time.Sleep(10 * time.Millisecond)
		}
		_, err := fc.Write(pong)
		done <- err
	}()

	total := sent + 1
	for i := 0; i < total+1; i++ {
		fin, op, p := readFrame(t, client)
		switch {
		case op == 0xa:
			continue
		case !fin || op != 0x1 || !bytes.Equal(p, payload):
			t.Fatalf("frame %d: fin=%v opcode=%#x, %d bytes: not the text frame written", i, fin, op, len(p))
		}
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// While another write holds the connection, TryWriteText sends nothing.
func TestConnTryWriteTextBusy(t *testing.T) {
	server, _ := tcpPair(t)
	fc := newConn(server)
	fc.mu.Lock()
	b := append(make([]byte, HeaderMax), "hi"...)
	rest, held, err := fc.TryWriteText(NewNBWrite(), b)
	fc.mu.Unlock()
	if !errors.Is(err, ErrWouldBlock) || held || len(rest) != 4 {
		t.Fatalf("TryWriteText on a busy connection = %d bytes left, held %v, %v; want the whole frame back", len(rest), held, err)
	}
}
