package srtpdirect

import (
	"context"
	"encoding/binary"
	"maps"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// The receive side of the direct path. Pion's ICE mux reads the node's
// UDP port through a Conn, which takes the RTP of a publisher whose keys
// and address it knows and hands it, still protected, to the publisher's
// Uplink on the goroutine that read it. Everything else (STUN, DTLS,
// RTCP, and RTP of a stream the node has not learned yet) goes on to
// Pion. A publisher's first packets go through Pion, which announces the
// track; from then on, its packets never leave the reader of its socket.

// receiveMTU is the largest datagram a reader takes.
const receiveMTU = 1460

// maxReaders bounds the sockets, each with a reader, that share the port.
const maxReaders = 8

// Uplink receives one publisher's RTP from the direct path.
type Uplink interface {
	// ForwardRTP is called on the goroutine that read b, a protected
	// packet from the publisher's address with its SSRC; reader (0 to
	// Conn.Readers()-1) names that goroutine, so scratch space kept per
	// reader needs no lock. It unprotects b with rx.Open and forwards the
	// result, and keeps no reference to b.
	ForwardRTP(reader int, rx *Receiver, b []byte)
}

// Receiver is a publisher's inbound SRTP state on the direct path.
type Receiver struct {
	ssrc uint32 // the uplink's SSRC
	up   Uplink
	ctx  *srtp.Context
	hdr  rtp.Header
}

// Open unprotects b into dst[:cap(dst)] and returns the length of the
// plaintext; ok is false for a packet that fails to unprotect (forged,
// replayed) or does not fit, which is to be dropped, as Pion would drop
// it. Calls for one Receiver must not overlap: the Uplink orders them.
func (r *Receiver) Open(dst, b []byte) (n int, ok bool) {
	plain, err := r.ctx.DecryptRTP(dst[:0], b, &r.hdr)
	if err != nil || len(plain) == 0 || &plain[0] != &dst[0] {
		return 0, false
	}
	return len(plain), true
}

// Conn is the node's UDP port as Pion's ICE mux reads it. On Linux, with
// more than one P, the port has one socket per P (SO_REUSEPORT, up to
// maxReaders), each with a reader goroutine of its own: the kernel
// spreads remote addresses over them, so the direct path forwards on
// several cores, each publisher always on one. Those readers hand what is
// not theirs to the mux through pass. With one socket the mux's own
// reader does the direct path's work inline.
type Conn struct {
	*net.UDPConn                                              // the first socket: every write, and the inline reads
	rx           atomic.Pointer[map[netip.AddrPort]*Receiver] // the publishers on the direct path, by address; copied on write
	rxMu         sync.Mutex                                   // orders the writers of rx
	socks        []*net.UDPConn                               // every socket on the port
	pass         chan *passed                                 // the readers' packets for Pion; nil with one socket
	closed       chan struct{}
	closeOnce    sync.Once
	readers      sync.WaitGroup
}

// passed is a packet a reader hands to the mux.
type passed struct {
	n    int
	from netip.AddrPort
	buf  [receiveMTU]byte
}

var passPool = sync.Pool{New: func() any { return new(passed) }}

// Listen binds the node's UDP port at addr (network "udp4" or "udp") and
// returns it as the ICE mux is to read it, each socket with a buffer of
// the given size in each direction. Where the OS spreads a port's
// datagrams over the sockets that share it (Linux), the port gets one
// socket per P, up to 8, and a reader for each; elsewhere, one socket.
// Close ends the readers. Its errors are the net package's.
func Listen(network, addr string, buffer int) (*Conn, error) {
	readers := 1
	if sharePortSupported {
		readers = min(runtime.GOMAXPROCS(0), maxReaders)
	}
	var lc net.ListenConfig
	if readers > 1 {
		lc.Control = sharePort
		// Sharing the port must not let a second node on this host (a
		// port given twice) join it and take half of its traffic: a bind
		// without sharing fails on a port that anyone holds, shared or
		// not, so each node binds so first and starts only on a free port.
		probe, err := net.ListenPacket(network, addr)
		if err != nil {
			return nil, err
		}
		addr = probe.LocalAddr().String()
		_ = probe.Close()
	}
	first, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, err
	}
	socks := []*net.UDPConn{first.(*net.UDPConn)}
	for len(socks) < readers {
		c, err := lc.ListenPacket(context.Background(), network, first.LocalAddr().String())
		if err != nil {
			break // fewer readers, the same service
		}
		socks = append(socks, c.(*net.UDPConn))
	}
	for _, c := range socks {
		_ = c.SetReadBuffer(buffer)
		_ = c.SetWriteBuffer(buffer)
	}
	return newConn(socks), nil
}

// newConn wraps the port's sockets; with more than one, it starts their
// readers.
func newConn(socks []*net.UDPConn) *Conn {
	c := &Conn{UDPConn: socks[0], socks: socks, closed: make(chan struct{})}
	c.rx.Store(&map[netip.AddrPort]*Receiver{})
	if len(socks) > 1 {
		c.pass = make(chan *passed, 256)
		for i, s := range socks {
			c.readers.Add(1)
			go c.read(s, i)
		}
	}
	return c
}

// Readers is the number of goroutines that may call an Uplink: one per
// socket.
func (c *Conn) Readers() int { return len(c.socks) }

// read serves one of several sockets until it fails or is closed; a
// failure closes them all, as it ends the mux's single reader.
func (c *Conn) read(s *net.UDPConn, reader int) {
	defer c.readers.Done()
	pk := passPool.Get().(*passed)
	defer func() { passPool.Put(pk) }()
	for {
		n, from, err := s.ReadFromUDPAddrPort(pk.buf[:])
		if err != nil {
			c.shut()
			return
		}
		if c.take(pk.buf[:n], from, reader) {
			continue
		}
		pk.n, pk.from = n, from
		select {
		case c.pass <- pk:
			pk = passPool.Get().(*passed)
		case <-c.closed:
			return
		}
	}
}

// shut closes every socket once.
func (c *Conn) shut() {
	c.closeOnce.Do(func() {
		close(c.closed)
		for _, s := range c.socks {
			_ = s.Close()
		}
	})
}

// Close closes the sockets and waits for their readers.
func (c *Conn) Close() error {
	c.shut()
	c.readers.Wait()
	return nil
}

// setRx makes rx the publisher at addr, or removes whatever is at addr
// when rx is nil.
func (c *Conn) setRx(addr netip.AddrPort, rx *Receiver) {
	c.rxMu.Lock()
	defer c.rxMu.Unlock()
	m := maps.Clone(*c.rx.Load())
	if rx == nil {
		delete(m, addr)
	} else {
		m[addr] = rx
	}
	c.rx.Store(&m)
}

// ReadFromAddrPort returns the next packet that is not the direct path's.
func (c *Conn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	if c.pass == nil {
		for {
			n, addr, err := c.UDPConn.ReadFromUDPAddrPort(b)
			if err != nil || !c.take(b[:n], addr, 0) {
				return n, addr, err
			}
		}
	}
	select {
	case pk := <-c.pass:
		n, from := copy(b, pk.buf[:pk.n]), pk.from
		passPool.Put(pk)
		return n, from, nil
	case <-c.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

// WriteToAddrPort writes b to addr (the mux's allocation-free write).
func (c *Conn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.UDPConn.WriteToUDPAddrPort(b, addr)
}

// ReadFrom is ReadFromAddrPort for a reader that wants a net.Addr.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(addr), nil
}

// take hands b to its publisher's Uplink if it is RTP of a known
// publisher's uplink from its address, and reports whether it did.
func (c *Conn) take(b []byte, from netip.AddrPort, reader int) bool {
	// RTP version 2, and not RTCP (payload types 192-223, RFC 5761).
	if len(b) < 12 || b[0]>>6 != 2 || (b[1] >= 192 && b[1] <= 223) {
		return false
	}
	rx := (*c.rx.Load())[netip.AddrPortFrom(from.Addr().Unmap(), from.Port())]
	if rx == nil {
		return false
	}
	if binary.BigEndian.Uint32(b[8:12]) != rx.ssrc {
		return false
	}
	rx.up.ForwardRTP(reader, rx, b)
	return true
}
