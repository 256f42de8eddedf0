package signaling

import (
	"encoding/binary"
	"maps"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// The direct path. A subscriber whose selected ICE pair is UDP on the
// node's port, and whose DTLS keys the node learned (srtpkeys.go), gets
// its packets protected by the node and written straight to its address:
// one SRTP encryption and one sendto per packet, without Pion's SRTP
// session, DTLS mux, ICE connection and UDP mux in between. Pion still
// runs ICE (its keepalive checks keep the pair alive, since the direct
// path's packets never reach it), DTLS and RTCP for the session; the node
// sends the RTCP reports itself (reports.go).

// srtpTx is a subscriber's outbound SRTP state on the direct path. Every
// publisher's reader writes through it, so mu orders them.
type srtpTx struct {
	conn *net.UDPConn

	mu   sync.Mutex
	addr netip.AddrPort // the selected pair's remote address
	ctx  *srtp.Context
	hdr  rtp.Header // scratch for the encryption, reused
}

// txState is what a participant knows towards its direct path, guarded
// by its own mutex: the callbacks that learn it run on Pion's goroutines.
type txState struct {
	mu     sync.Mutex
	keys   *dtlsKeys
	conn   *net.UDPConn // the node's UDP socket; nil: no direct path
	dtlsUp bool
	// cryptex: the client's first answer declared RFC 9335 header
	// extension encryption, so what the node sends uses it, as Pion does.
	cryptex  bool
	answered bool
	derived  bool
	ctx      *srtp.Context // derived once the DTLS transport connected
	in       *srtp.Context // the same, for what the node receives
	pair     netip.AddrPort
	tx       *srtpTx

	dc      *directConn // nil: no direct receive
	uplink  *srtpRx     // set once the uplink track is known
	rxAt    netip.AddrPort
	stopped bool
}

// pairAddr is the remote address of a selected pair whose local side is a
// UDP candidate, which on a media node is always its one UDP socket (the
// ICE UDP mux); any other pair has none.
func pairAddr(pair *webrtc.ICECandidatePair) netip.AddrPort {
	if pair == nil || pair.Local == nil || pair.Remote == nil || pair.Local.Protocol != webrtc.ICEProtocolUDP {
		return netip.AddrPort{}
	}
	ip, err := netip.ParseAddr(pair.Remote.Address)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ip.Unmap(), pair.Remote.Port)
}

// selectedPair records a new selected pair and updates the direct path.
func (p *participant) selectedPair(pair *webrtc.ICECandidatePair) {
	addr := pairAddr(pair)
	p.direct.Store(addr.IsValid())
	s := &p.txs
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pair = addr
	s.update(p)
}

// dtlsState learns that the session's DTLS is up.
func (p *participant) dtlsState(st webrtc.DTLSTransportState) {
	if st != webrtc.DTLSTransportStateConnected {
		return
	}
	s := &p.txs
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dtlsUp = true
	s.derive(p)
}

// answered learns from the client's first accepted answer whether it
// takes encrypted header extensions (a=cryptex).
func (p *participant) answered(d *sdp.SessionDescription) {
	s := &p.txs
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.answered {
		s.answered, s.cryptex = true, answersCryptex(d)
		s.derive(p)
	}
}

// derive makes the session's SRTP contexts once its DTLS is up and its
// first answer is in. The caller holds s.mu.
func (s *txState) derive(p *participant) {
	if !s.dtlsUp || !s.answered || s.derived || s.conn == nil {
		return
	}
	s.derived = true
	out, in, err := s.keys.contexts(s.cryptex)
	if err != nil {
		p.room.v.log.Debug("voice: direct path off for a session", "room", p.room.id, "session", p.session, "err", err)
		return
	}
	s.ctx, s.in = out, in
	s.update(p)
}

// answersCryptex reports whether d declares cryptex for the session or
// for every RTP m-line (RFC 9335 section 6.2).
func answersCryptex(d *sdp.SessionDescription) bool {
	if _, ok := d.Attribute("cryptex"); ok {
		return true
	}
	n := 0
	for _, md := range d.MediaDescriptions {
		if md.MediaName.Media == "application" {
			continue
		}
		if _, ok := md.Attribute("cryptex"); !ok {
			return false
		}
		n++
	}
	return n > 0
}

// uplinkKnown learns the uplink track's SSRC and audio level extension,
// so the direct path can take its packets once the keys are known.
func (p *participant) uplinkKnown(ssrc uint32, levelID int) {
	s := &p.txs
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uplink = &srtpRx{p: p, ssrc: ssrc, levelID: levelID}
	s.update(p)
}

// stopDirect takes the participant off the direct path for good.
func (p *participant) stopDirect() {
	s := &p.txs
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	s.update(p)
}

// update publishes the direct path once both the keys and a UDP pair are
// known, moves it when the pair moves, and withdraws it while the pair is
// not UDP. The caller holds s.mu. One srtpTx serves the session for its
// life, so its context is never used by two mutexes.
func (s *txState) update(p *participant) {
	s.updateRx()
	if s.ctx == nil {
		return
	}
	if s.tx == nil {
		s.tx = &srtpTx{conn: s.conn, ctx: s.ctx}
	}
	if !s.pair.IsValid() {
		p.tx.Store(nil)
		return
	}
	s.tx.mu.Lock()
	s.tx.addr = s.pair
	s.tx.mu.Unlock()
	p.tx.Store(s.tx)
}

// updateRx registers the uplink with the socket's reader at the pair's
// address once everything is known, moves it with the pair, and removes
// it when the pair is not UDP or the participant is gone. The caller
// holds s.mu.
func (s *txState) updateRx() {
	at := s.pair
	if s.stopped || s.in == nil || s.uplink == nil || s.dc == nil {
		at = netip.AddrPort{}
	}
	if at == s.rxAt {
		return
	}
	if s.rxAt.IsValid() {
		s.dc.setRx(s.rxAt, nil)
	}
	s.rxAt = at
	if at.IsValid() {
		if s.uplink.ctx == nil {
			s.uplink.ctx = s.in
		}
		s.dc.setRx(at, s.uplink)
	}
}

// send protects pkt (a plaintext RTP packet, whose SSRC and payload type
// it rewrites for dl) into buf and writes it to the subscriber.
func (t *srtpTx) send(dl *downlink, pkt, buf []byte, now time.Time) error {
	pkt[1] = pkt[1]&0x80 | opusPayloadType
	binary.BigEndian.PutUint32(pkt[8:12], dl.ssrc)
	t.mu.Lock()
	out, err := t.ctx.EncryptRTP(buf[:0], pkt, &t.hdr)
	addr, ts, payload := t.addr, t.hdr.Timestamp, len(pkt)-t.hdr.MarshalSize()
	t.mu.Unlock()
	if err != nil {
		return err
	}
	dl.stats.sent(ts, payload, now)
	_, err = t.conn.WriteToUDPAddrPort(out, addr)
	return err
}

// The receive side of the direct path. The ICE mux reads the node's UDP
// port through a directConn, which takes the RTP of a publisher whose keys
// and address it knows, unprotects it and forwards it on the spot, on the
// goroutine that read it. Everything else (STUN, DTLS, RTCP, and RTP of a
// stream the node has not learned yet) goes on to Pion. A publisher's
// first packets go through Pion, which announces the track; from then on,
// its packets never leave the reader of its socket.

// srtpRx is a publisher's inbound SRTP state on the direct path.
type srtpRx struct {
	p       *participant
	ssrc    uint32 // the uplink's SSRC
	levelID int    // the audio level extension's id; 0 if none
	ctx     *srtp.Context
	hdr     rtp.Header
}

// directConn is the node's UDP socket as its ICE mux sees it. On Linux,
// with more than one P, the port has one socket per P (SO_REUSEPORT, up
// to maxReaders), each with a reader goroutine of its own: the kernel
// spreads remote addresses over them, so the direct path forwards on
// several cores, each publisher always on one. Those readers hand what is
// not theirs to the mux through pass. With one socket the mux's own
// reader does the direct path's work inline.
type directConn struct {
	*net.UDPConn                                            // the first socket: every write, and the inline reads
	m            *metrics                                   // for the readers' forwarders
	rx           atomic.Pointer[map[netip.AddrPort]*srtpRx] // the publishers on the direct path, by address; copied on write
	rxMu         sync.Mutex                                 // orders the writers of rx
	fw           forwarder                                  // the inline reader's
	socks        []*net.UDPConn                             // every socket on the port, when they have readers
	pass         chan *passed                               // their packets for Pion
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

// newDirectConn wraps the port's sockets; with more than one, it starts
// their readers.
func newDirectConn(socks []*net.UDPConn, m *metrics) *directConn {
	d := &directConn{UDPConn: socks[0], m: m, fw: forwarder{m: m}, closed: make(chan struct{})}
	d.rx.Store(&map[netip.AddrPort]*srtpRx{})
	if len(socks) > 1 {
		d.socks = socks
		d.pass = make(chan *passed, 256)
		for _, s := range socks {
			d.readers.Add(1)
			go d.read(s)
		}
	}
	return d
}

// read serves one of several sockets until it fails or is closed; a
// failure closes them all, as it ends the mux's single reader.
func (c *directConn) read(s *net.UDPConn) {
	defer c.readers.Done()
	f := &forwarder{m: c.m}
	pk := passPool.Get().(*passed)
	defer func() { passPool.Put(pk) }()
	for {
		n, from, err := s.ReadFromUDPAddrPort(pk.buf[:])
		if err != nil {
			c.shut()
			return
		}
		if c.take(pk.buf[:n], from, f) {
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
func (c *directConn) shut() {
	c.closeOnce.Do(func() {
		close(c.closed)
		_ = c.UDPConn.Close()
		for _, s := range c.socks[min(1, len(c.socks)):] {
			_ = s.Close()
		}
	})
}

// Close closes the sockets and waits for their readers.
func (c *directConn) Close() error {
	c.shut()
	c.readers.Wait()
	return nil
}

// setRx makes rx the publisher at addr, or removes whatever is at addr
// when rx is nil.
func (c *directConn) setRx(addr netip.AddrPort, rx *srtpRx) {
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
func (c *directConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	if c.pass == nil {
		for {
			n, addr, err := c.UDPConn.ReadFromUDPAddrPort(b)
			if err != nil || !c.take(b[:n], addr, &c.fw) {
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
func (c *directConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.UDPConn.WriteToUDPAddrPort(b, addr)
}

// ReadFrom is ReadFromAddrPort for a reader that wants a net.Addr.
func (c *directConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(addr), nil
}

// take forwards b if it is RTP of a known publisher's uplink from its
// address, and reports whether it did. A packet that fails to unprotect
// (forged, replayed) is dropped here, as Pion would drop it.
func (c *directConn) take(b []byte, from netip.AddrPort, f *forwarder) bool {
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
	pk := packetPool.Get().(*packet)
	p := rx.p
	p.fwdMu.Lock()
	defer p.fwdMu.Unlock()
	plain, err := rx.ctx.DecryptRTP(pk.buf[:0], b, &rx.hdr)
	if err != nil || len(plain) == 0 || &plain[0] != &pk.buf[0] {
		packetPool.Put(pk)
		return true
	}
	f.m.directIn.Inc()
	pk.n = len(plain)
	p.forwardLocked(pk, rx.levelID, f)
	return true
}
