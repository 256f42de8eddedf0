package signaling

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
	dto "github.com/prometheus/client_model/go"
)

// TestSharedPortReaders opens the media sockets with four Ps: on Linux
// the port gets four sockets, each with a reader. Datagrams from many
// remote addresses, none of them the direct path's, all reach the ICE
// mux's side with their source addresses, whichever socket the kernel
// gave them to; closing ends every reader (goleak checks).
func TestSharedPortReaders(t *testing.T) {
	if !sharePortSupported {
		t.Skip("shared port readers: this OS gives a port one socket")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	o := Options{UDPAddr: "127.0.0.1:0", TCPAddr: TCPOff,
		ICEDisconnectedTimeout: 5 * time.Second, DisconnectTimeout: 15 * time.Second, ICEKeepalive: 2 * time.Second}
	mt, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := openMedia(&o, mt)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.socks) != 4 {
		t.Errorf("%d sockets on the port, want 4 (one per P)", len(m.socks))
	}
	port := m.udpConn.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, s := range m.socks {
		if got := s.LocalAddr().(*net.UDPAddr).AddrPort(); got != port {
			t.Errorf("a socket is on %v, want %v", got, port)
		}
	}
	// A second node given the same port does not join it.
	o2 := o
	o2.UDPAddr = port.String()
	if m2, err := openMedia(&o2, mt); err == nil {
		m2.close()
		t.Errorf("a second node opened the port %v the first one holds", port)
	}
	m.close()

	// The same sockets without the ICE mux, whose reader would take the
	// datagrams: the test reads as the mux would.
	lc := net.ListenConfig{Control: sharePort}
	var socks []*net.UDPConn
	for range 4 {
		addr := "127.0.0.1:0"
		if len(socks) > 0 {
			addr = socks[0].LocalAddr().String()
		}
		c, err := lc.ListenPacket(t.Context(), "udp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		socks = append(socks, c.(*net.UDPConn))
	}
	dc := newDirectConn(socks, mt)
	port = socks[0].LocalAddr().(*net.UDPAddr).AddrPort()

	const clients = 32
	sent := map[netip.AddrPort]string{}
	for i := range clients {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		msg := fmt.Sprintf("not rtp %d", i)
		if _, err := c.WriteToUDPAddrPort([]byte(msg), port); err != nil {
			t.Fatal(err)
		}
		sent[c.LocalAddr().(*net.UDPAddr).AddrPort()] = msg
	}
	buf := make([]byte, 1500)
	for range clients {
		got := make(chan struct{})
		var n int
		var from netip.AddrPort
		go func() {
			n, from, err = dc.ReadFromAddrPort(buf)
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
	_ = dc.Close()
	if _, _, err := dc.ReadFromAddrPort(buf); err == nil {
		t.Error("read after close: no error")
	}
}

// directRig is a publisher with three subscribers, all on the direct
// path of one socket, with the SRTP contexts of both ends.
type directRig struct {
	dc      *directConn
	from    netip.AddrPort // the publisher's address
	client  *srtp.Context  // the publisher's sending context
	sinks   []*net.UDPConn // the subscribers' sockets
	opens   []*srtp.Context
	ssrc    uint32
	metrics *metrics
}

func newDirectRig(t testing.TB) *directRig {
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
	mt, _ := newMetrics(nil)
	sock, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &directRig{dc: newDirectConn([]*net.UDPConn{sock}, mt), client: ctx(), ssrc: 0x1234, metrics: mt}
	t.Cleanup(func() { _ = r.dc.Close() })
	pub := &participant{}
	pub.level.init(40)
	var subs []*downlink
	for i := range 3 {
		sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		_ = sink.SetReadBuffer(4 << 20)
		t.Cleanup(func() { _ = sink.Close() })
		r.sinks = append(r.sinks, sink)
		r.opens = append(r.opens, ctx())
		sub := &participant{}
		sub.tx.Store(&srtpTx{conn: sock, ctx: ctx(), addr: sink.LocalAddr().(*net.UDPAddr).AddrPort()})
		dl := &downlink{sub: sub, ssrc: uint32(0x100 + i)}
		dl.ready.Store(true)
		subs = append(subs, dl)
	}
	pub.fanout.Store(&subs)
	r.from = netip.MustParseAddrPort("127.0.0.1:40000")
	r.dc.setRx(r.from, &srtpRx{p: pub, ssrc: r.ssrc, ctx: ctx(srtp.SRTPReplayProtection(64))}) // as dtlsKeys.contexts makes it
	return r
}

// packet is the publisher's packet seq, protected.
func (r *directRig) packet(t testing.TB, seq uint16) []byte {
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
// its own SSRC and the payload type, and the path allocates nothing per
// packet. A forged packet and a replayed one go nowhere.
func TestDirectPathForwards(t *testing.T) {
	r := newDirectRig(t)
	const n = 200
	base := uint16(65500) // the packets cross a sequence number wrap
	pkts := make([][]byte, n)
	for i := range pkts {
		pkts[i] = r.packet(t, base+uint16(i))
	}
	i := 0
	allocs := testing.AllocsPerRun(n-1, func() {
		if !r.dc.take(pkts[i], r.from, &r.dc.fw) {
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
		if !r.dc.take(b, r.from, &r.dc.fw) {
			t.Error("a bad packet from a direct publisher went on to Pion")
		}
	}
	// Another stream from the same address, or the same stream from
	// elsewhere, is Pion's.
	if r.dc.take(r.packet(t, 1), netip.MustParseAddrPort("127.0.0.1:40001"), &r.dc.fw) {
		t.Error("a packet from an unknown address was taken")
	}
	var fw dto.Metric
	if err := r.metrics.forwarded.Write(&fw); err != nil || fw.GetCounter().GetValue() != 3*n {
		t.Errorf("forwarded %v (%v), want %d", fw.GetCounter().GetValue(), err, 3*n)
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
			if h.SSRC != uint32(0x100+s) || h.PayloadType != opusPayloadType || h.SequenceNumber != base+uint16(k) || string(plain[len(plain)-len(want):]) != want {
				t.Fatalf("subscriber %d: packet %d is ssrc %#x pt %d seq %d %q", s, k, h.SSRC, h.PayloadType, h.SequenceNumber, plain)
			}
		}
	}
}

// BenchmarkDirectPath is one publisher's packet through the direct path
// to three subscribers: unprotect, then three protections and sendtos
// on loopback.
func BenchmarkDirectPath(b *testing.B) {
	r := newDirectRig(b)
	pkts := make([][]byte, b.N)
	for i := range pkts {
		pkts[i] = r.packet(b, uint16(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r.dc.take(pkts[i], r.from, &r.dc.fw)
	}
}

// FuzzDirectTake feeds the direct path's reader arbitrary datagrams from
// a publisher's address, most with its SSRC so they reach the SRTP
// check: none may panic, and none that fails the check is forwarded.
func FuzzDirectTake(f *testing.F) {
	r := newDirectRig(f)
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
		var before, after dto.Metric
		_ = r.metrics.forwarded.Write(&before)
		r.dc.take(b, r.from, &r.dc.fw)
		_ = r.metrics.forwarded.Write(&after)
		if got := after.GetCounter().GetValue() - before.GetCounter().GetValue(); got != 0 && !bytes.Equal(b, valid) {
			t.Fatalf("a datagram that is not the publisher's packet was forwarded %v times: %x", got, b)
		}
	})
}
