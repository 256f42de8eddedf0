package srtpdirect

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// Session is one PeerConnection's direct path: it learns the session's
// keys, its selected pair and its uplink from Pion's callbacks, and once
// all are known, publishes a Sender for what the node sends and registers
// the uplink with the Conn for what it receives. Its methods may be
// called from any goroutine.
type Session struct {
	conn *Conn // nil: the session has no direct path
	log  *slog.Logger
	keys keys
	tx   atomic.Pointer[Sender]

	mu     sync.Mutex
	dtlsUp bool
	// cryptex: the client's first answer declared RFC 9335 header
	// extension encryption, so what the node sends uses it, as Pion does.
	cryptex  bool
	answered bool
	derived  bool
	out      *srtp.Context // derived once the DTLS transport connected
	in       *srtp.Context // the same, for what the node receives
	pair     netip.AddrPort
	sender   *Sender
	uplink   *Receiver // set once the uplink track is known
	rxAt     netip.AddrPort
	stopped  bool
}

// NewSession returns the direct path of a session on conn, logging to log
// why a session stays on Pion's path. A nil conn makes a session that
// never takes the direct path: it only tells whether the pair is UDP.
func NewSession(conn *Conn, log *slog.Logger) *Session {
	return &Session{conn: conn, log: log}
}

// Configure installs, in the settings of the session's PeerConnection, the
// DTLS hooks through which the session learns its keys: the key log and
// the server hello hook. It does nothing for a session without a Conn.
func (s *Session) Configure(se *webrtc.SettingEngine) {
	if s.conn == nil {
		return
	}
	se.SetDTLSKeyLogWriter(&s.keys)
	se.SetDTLSServerHelloMessageHook(s.keys.serverHello)
}

// Sender is the direct path for what the node sends to the session; nil
// while it is not usable.
func (s *Session) Sender() *Sender { return s.tx.Load() }

// pairAddr is the remote address of a selected pair whose local side is a
// UDP candidate, which on a media node is always its one UDP port (the
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

// SelectedPair records a new selected ICE pair, moves the direct path to
// it, and reports whether it is UDP on the node's port.
func (s *Session) SelectedPair(pair *webrtc.ICECandidatePair) (udp bool) {
	addr := pairAddr(pair)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pair = addr
	s.update()
	return addr.IsValid()
}

// DTLSState learns that the session's DTLS is up.
func (s *Session) DTLSState(st webrtc.DTLSTransportState) {
	if st != webrtc.DTLSTransportStateConnected {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dtlsUp = true
	s.derive()
}

// Answered learns from the client's answer whether it takes encrypted
// header extensions (a=cryptex); only the first answer counts.
func (s *Session) Answered(d *sdp.SessionDescription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.answered {
		s.answered, s.cryptex = true, answersCryptex(d)
		s.derive()
	}
}

// UplinkKnown learns the SSRC of the session's uplink, so the Conn can
// take its packets, for up, once the keys are known.
func (s *Session) UplinkKnown(ssrc uint32, up Uplink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uplink = &Receiver{ssrc: ssrc, up: up}
	s.update()
}

// Stop takes the session off the direct path for good.
func (s *Session) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	s.update()
}

// derive makes the session's SRTP contexts once its DTLS is up and its
// first answer is in. The caller holds s.mu.
func (s *Session) derive() {
	if !s.dtlsUp || !s.answered || s.derived || s.conn == nil {
		return
	}
	s.derived = true
	out, in, err := s.keys.contexts(s.cryptex)
	if err != nil {
		s.log.Debug("voice: direct path off for a session", "err", err)
		return
	}
	s.out, s.in = out, in
	s.update()
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

// update publishes the Sender once both the keys and a UDP pair are
// known, moves it when the pair moves, and withdraws it while the pair is
// not UDP. The caller holds s.mu. One Sender serves the session for its
// life, so its context is never used by two mutexes.
func (s *Session) update() {
	s.updateRx()
	if s.out == nil {
		return
	}
	if s.sender == nil {
		s.sender = &Sender{conn: s.conn, ctx: s.out}
	}
	if !s.pair.IsValid() {
		s.tx.Store(nil)
		return
	}
	s.sender.mu.Lock()
	s.sender.addr = s.pair
	s.sender.mu.Unlock()
	s.tx.Store(s.sender)
}

// updateRx registers the uplink with the Conn at the pair's address once
// everything is known, moves it with the pair, and removes it when the
// pair is not UDP or the session stopped. The caller holds s.mu.
func (s *Session) updateRx() {
	at := s.pair
	if s.stopped || s.in == nil || s.uplink == nil || s.conn == nil {
		at = netip.AddrPort{}
	}
	if at == s.rxAt {
		return
	}
	if s.rxAt.IsValid() {
		s.conn.setRx(s.rxAt, nil)
	}
	s.rxAt = at
	if at.IsValid() {
		if s.uplink.ctx == nil {
			s.uplink.ctx = s.in
		}
		s.conn.setRx(at, s.uplink)
	}
}

// Sender is a session's outbound SRTP state on the direct path. Every
// publisher's forwarder writes through it, so mu orders them.
type Sender struct {
	conn *Conn

	mu   sync.Mutex
	addr netip.AddrPort // the selected pair's remote address
	ctx  *srtp.Context
	hdr  rtp.Header // scratch for the encryption, reused
}

// Send protects pkt, a plaintext RTP packet, into buf and writes it to
// the session's address, from the node's port. It returns the RTP
// timestamp and the payload size of the packet it protected; payload is
// -1 when pkt could not be protected, and then nothing was written.
func (t *Sender) Send(pkt, buf []byte) (ts uint32, payload int, err error) {
	t.mu.Lock()
	out, err := t.ctx.EncryptRTP(buf[:0], pkt, &t.hdr)
	addr, ts, payload := t.addr, t.hdr.Timestamp, len(pkt)-t.hdr.MarshalSize()
	t.mu.Unlock()
	if err != nil {
		return 0, -1, err
	}
	_, err = t.conn.UDPConn.WriteToUDPAddrPort(out, addr)
	return ts, payload, err
}
