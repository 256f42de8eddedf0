package realtime

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
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

func TestFrameConnWriteText(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	fc := &frameConn{Conn: server}
	sizes := []int{0, 1, 125, 126, 127, 0xffff, 0x10000, 70000}
	go func() {
		defer server.Close()
		for _, n := range sizes {
			b := make([]byte, frameHeaderMax, frameHeaderMax+n)
			for i := range n {
				b = append(b, byte('a'+i%26))
			}
			if err := fc.writeText(b); err != nil {
				t.Errorf("writeText(%d bytes): %v", n, err)
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
func TestFrameConnNoDataAfterClose(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	defer server.Close()
	fc := &frameConn{Conn: server}
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
		done <- fc.writeText(append(make([]byte, frameHeaderMax), "late"...))
	}()
	got := make([]byte, len(pong)+len(closeFrame))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(append([]byte{}, pong...), closeFrame...)) {
		t.Fatalf("control frames = %x", got)
	}
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("writeText after a close frame: %v, want net.ErrClosed", err)
	}
}
