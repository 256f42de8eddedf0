package signaling

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"
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
