package srtpdirect

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// TestSharedPortReaders listens with four Ps: on Linux the port gets four
// sockets, each with a reader, and a second Listen on the same port
// fails. Datagrams from many remote addresses, none of them the direct
// path's, all reach the ICE mux's side with their source addresses,
// whichever socket the kernel gave them to; closing ends every reader.
func TestSharedPortReaders(t *testing.T) {
	if !sharePortSupported {
		t.Skip("shared port readers: this OS gives a port one socket")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	c, err := Listen("udp4", "127.0.0.1:0", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Readers(); got != 4 {
		t.Errorf("%d sockets on the port, want 4 (one per P)", got)
	}
	port := c.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, s := range c.socks {
		if got := s.LocalAddr().(*net.UDPAddr).AddrPort(); got != port {
			t.Errorf("a socket is on %v, want %v", got, port)
		}
	}
	// A second node given the same port does not join it.
	if c2, err := Listen("udp4", port.String(), 1<<20); err == nil {
		_ = c2.Close()
		t.Errorf("a second node opened the port %v the first one holds", port)
	}

	const clients = 32
	sent := map[netip.AddrPort]string{}
	for i := range clients {
		cl, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		msg := fmt.Sprintf("not rtp %d", i)
		if _, err := cl.WriteToUDPAddrPort([]byte(msg), port); err != nil {
			t.Fatal(err)
		}
		sent[cl.LocalAddr().(*net.UDPAddr).AddrPort()] = msg
	}
	buf := make([]byte, 1500)
	for range clients {
		got := make(chan struct{})
		var n int
		var from netip.AddrPort
		go func() {
			n, from, err = c.ReadFromAddrPort(buf)
			close(got)
		}()
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("a datagram never reached the mux's side")
		}
		if err != nil {
			t.Fatal(err)
		}
		if want, ok := sent[from]; !ok || want != string(buf[:n]) {
			t.Fatalf("read %q from %v, which sent %q", buf[:n], from, want)
		}
		delete(sent, from)
	}
	_ = c.Close()
	if _, _, err := c.ReadFromAddrPort(buf); err == nil {
		t.Error("read after close: no error")
	}
}

// forwardTo is an Uplink that forwards, as the node does, to Senders:
// each copy of the packet gets the subscriber's SSRC and is protected
// with the subscriber's context.
type forwardTo struct {
	subs      []*Sender
	ssrcs     []uint32
	plain     [receiveMTU]byte
	copied    [receiveMTU]byte
	crypted   [receiveMTU + 64]byte
	forwarded int
}

func (f *forwardTo) ForwardRTP(reader int, rx *Receiver, b []byte) {
	n, ok := rx.Open(f.plain[:], b)
	if !ok {
		return
	}
	for i, s := range f.subs {
		pkt := f.copied[:copy(f.copied[:], f.plain[:n])]
		binary.BigEndian.PutUint32(pkt[8:12], f.ssrcs[i])
		if _, payload, err := s.Send(pkt, f.crypted[:]); err == nil && payload >= 0 {
			f.forwarded++
		}
	}
}

// rig is a publisher with three subscribers, all on the direct path of
// one socket, with the SRTP contexts of both ends.
type rig struct {
	c      *Conn
	from   netip.AddrPort // the publisher's address
	client *srtp.Context  // the publisher's sending context
	sinks  []*net.UDPConn // the subscribers' sockets
	opens  []*srtp.Context
	ssrc   uint32
	fw     *forwardTo
}

func newRig(t testing.TB) *rig {
	t.Helper()
	profile := srtp.ProtectionProfileAeadAes128Gcm
	key, salt := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 12)
	ctx := func(opts ...srtp.ContextOption) *srtp.Context {
		c, err := srtp.CreateContext(key, salt, profile, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{c: newConn([]*net.UDPConn{sock}), client: ctx(), ssrc: 0x1234, fw: &forwardTo{}}
	t.Cleanup(func() { _ = r.c.Close() })
	for i := range 3 {
		sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		_ = sink.SetReadBuffer(4 << 20)
		t.Cleanup(func() { _ = sink.Close() })
		r.sinks = append(r.sinks, sink)
		r.opens = append(r.opens, ctx())
		r.fw.subs = append(r.fw.subs, &Sender{conn: r.c, ctx: ctx(), addr: sink.LocalAddr().(*net.UDPAddr).AddrPort()})
		r.fw.ssrcs = append(r.fw.ssrcs, uint32(0x100+i))
	}
	r.from = netip.MustParseAddrPort("127.0.0.1:40000")
	// The receiving context as keys.contexts makes it.
	r.c.setRx(r.from, &Receiver{up: r.fw, ssrc: r.ssrc, ctx: ctx(srtp.SRTPReplayProtection(64))})
	return r
}

// packet is the publisher's packet seq, protected.
func (r *rig) packet(t testing.TB, seq uint16) []byte {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(seq) * 960, SSRC: r.ssrc},
		Payload: []byte(fmt.Sprintf("opus %05d", seq))}
	plain, _ := p.Marshal()
	b, err := r.client.EncryptRTP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDirectPathForwards sends a publisher's packets through the direct
// path: each subscriber gets every one, protected with its keys, under
// its own SSRC, and the path allocates nothing per packet. A forged
// packet and a replayed one go nowhere.
func TestDirectPathForwards(t *testing.T) {
	r := newRig(t)
	const n = 200
	base := uint16(65500) // the packets cross a sequence number wrap
	pkts := make([][]byte, n)
	for i := range pkts {
		pkts[i] = r.packet(t, base+uint16(i))
	}
	i := 0
	allocs := testing.AllocsPerRun(n-1, func() {
		if !r.c.take(pkts[i], r.from, 0) {
			t.Fatalf("packet %d was not taken", i)
		}
		i++
	})
	if allocs > 0 {
		t.Errorf("%.2f allocations per packet, want 0", allocs)
	}
	// A forged packet (a flipped payload bit) and a replay are taken off
	// the socket but not forwarded.
	forged := r.packet(t, base+n)
	forged[len(forged)-20] ^= 1
	for _, b := range [][]byte{forged, pkts[3]} {
		if !r.c.take(b, r.from, 0) {
			t.Error("a bad packet from a direct publisher went on to Pion")
		}
	}
	// Another stream from the same address, or the same stream from
	// elsewhere, is Pion's.
	if r.c.take(r.packet(t, 1), netip.MustParseAddrPort("127.0.0.1:40001"), 0) {
		t.Error("a packet from an unknown address was taken")
	}
	if got := r.fw.forwarded; got != 3*n {
		t.Errorf("forwarded %d, want %d", got, 3*n)
	}

	buf := make([]byte, 1500)
	for s, sink := range r.sinks {
		_ = sink.SetReadDeadline(time.Now().Add(5 * time.Second))
		for k := range n {
			m, err := sink.Read(buf)
			if err != nil {
				t.Fatalf("subscriber %d: packet %d: %v", s, k, err)
			}
			var h rtp.Header
			plain, err := r.opens[s].DecryptRTP(nil, buf[:m], &h)
			if err != nil {
				t.Fatalf("subscriber %d: packet %d does not unprotect: %v", s, k, err)
			}
			want := fmt.Sprintf("opus %05d", base+uint16(k))
			if h.SSRC != uint32(0x100+s) || h.SequenceNumber != base+uint16(k) || string(plain[len(plain)-len(want):]) != want {
				t.Fatalf("subscriber %d: packet %d is ssrc %#x seq %d %q", s, k, h.SSRC, h.SequenceNumber, plain)
			}
		}
	}
}

// BenchmarkDirectPath is one publisher's packet through the direct path
// to three subscribers: unprotect, then three protections and sendtos
// on loopback.
func BenchmarkDirectPath(b *testing.B) {
	r := newRig(b)
	pkts := make([][]byte, b.N)
	for i := range pkts {
		pkts[i] = r.packet(b, uint16(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r.c.take(pkts[i], r.from, 0)
	}
}

// FuzzDirectTake feeds the direct path's reader arbitrary datagrams from
// a publisher's address, most with its SSRC so they reach the SRTP
// check: none may panic, and none that fails the check is forwarded.
func FuzzDirectTake(f *testing.F) {
	r := newRig(f)
	valid := r.packet(f, 1)
	f.Add(valid)
	f.Add(valid[:12])
	f.Add(valid[:len(valid)-1])
	ext := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SSRC: r.ssrc}, Payload: []byte("x")}
	_ = ext.SetExtension(1, []byte{0x7f})
	b, _ := ext.Marshal()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= 12 {
			b[0] = 0x80 | b[0]&0x3f
			binary.BigEndian.PutUint32(b[8:12], r.ssrc)
		}
		before := r.fw.forwarded
		r.c.take(b, r.from, 0)
		if got := r.fw.forwarded - before; got != 0 && !bytes.Equal(b, valid) {
			t.Fatalf("a datagram that is not the publisher's packet was forwarded %d times: %x", got, b)
		}
	})
}
