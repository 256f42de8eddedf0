package signaling

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// The negotiated media: Opus only, with in-band FEC, and the RFC 6464
// audio level header extension the speaking indicator reads.
const (
	audioLevelURI   = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
	opusPayloadType = 111
	opusFmtp        = "minptime=10;useinbandfec=1"
)

// udpBufferBytes is the socket buffer asked for each ICE UDP socket.
const udpBufferBytes = 4 << 20

// maxReaders bounds the sockets, each with a reader, that share the UDP
// port.
const maxReaders = 8

var opusCodec = webrtc.RTPCodecCapability{
	MimeType:    webrtc.MimeTypeOpus,
	ClockRate:   48000,
	Channels:    2,
	SDPFmtpLine: opusFmtp,
}

// media is what Run opens: the UDP socket and its ICE mux, the optional
// ICE-TCP listener and mux, and the WebRTC API built on them.
type media struct {
	se       webrtc.SettingEngine
	me       *webrtc.MediaEngine
	udp      net.PacketConn
	udpConn  *net.UDPConn   // udp, for the direct path; nil if it is not one
	socks    []*net.UDPConn // udp and the other sockets on its port
	dc       *directConn    // udpConn as the ICE mux reads it
	udpMux   ice.UDPMux
	tcp      net.Listener // nil when ICE-TCP is off
	tcpMux   ice.TCPMux
	loopback bool
}

// SelfCheck is what the node will advertise for voice, as Run logs it at
// startup: operators compare it with their firewall and NAT.
type SelfCheck struct {
	// UDP is the bound address of the ICE UDP socket.
	UDP string `json:"udp"`
	// TCP is the bound address of the ICE-TCP listener; empty when off.
	TCP string `json:"tcp,omitempty"`
	// Advertised are the host candidate addresses clients are given.
	Advertised []string `json:"advertised"`
	// Loopback says voice is confined to loopback (local demo, tests).
	Loopback bool `json:"loopback"`
}

// openMedia binds the sockets and builds the WebRTC API. On error nothing
// stays open.
func openMedia(o *Options, mt *metrics) (*media, error) {
	m := &media{}
	if err := m.open(o, mt); err != nil {
		m.close()
		return nil, err
	}
	return m, nil
}

func (m *media) open(o *Options, mt *metrics) error {
	host, port, err := splitHostPort(o.UDPAddr)
	if err != nil {
		return err
	}
	m.loopback = host.IsLoopback()
	udpNet := "udp4"
	if host.Is6() {
		udpNet = "udp"
	}
	// One socket per P shares the port where the kernel spreads a port's
	// traffic over its sockets (directConn); one socket elsewhere.
	readers := 1
	if sharePortSupported {
		readers = min(runtime.GOMAXPROCS(0), maxReaders)
	}
	addr := net.JoinHostPort(hostString(host), strconv.Itoa(port))
	var lc net.ListenConfig
	if readers > 1 {
		lc.Control = sharePort
		// Sharing the port must not let a second node on this host (a
		// port given twice) join it and take half of its traffic: a bind
		// without sharing fails on a port that anyone holds, shared or
		// not, so each node binds so first and starts only on a free port.
		probe, err := net.ListenPacket(udpNet, addr)
		if err != nil {
			return fmt.Errorf("signaling: voice UDP socket: %w", err)
		}
		addr = probe.LocalAddr().String()
		_ = probe.Close()
	}
	m.udp, err = lc.ListenPacket(context.Background(), udpNet, addr)
	if err != nil {
		return fmt.Errorf("signaling: voice UDP socket: %w", err)
	}
	bound := m.udp.LocalAddr().(*net.UDPAddr)
	if uc, ok := m.udp.(*net.UDPConn); ok {
		m.socks = []*net.UDPConn{uc}
		for len(m.socks) < readers {
			c, err := lc.ListenPacket(context.Background(), udpNet, bound.String())
			if err != nil {
				break // fewer readers, the same service
			}
			m.socks = append(m.socks, c.(*net.UDPConn))
		}
		for _, c := range m.socks {
			// Every participant's packets share the port: give it room
			// for bursts (the kernel caps these at net.core.[rw]mem_max).
			_ = c.SetReadBuffer(udpBufferBytes)
			_ = c.SetWriteBuffer(udpBufferBytes)
		}
		m.udpConn = uc
	}

	// Pion's own logs go to stderr and report routine events of closing
	// connections as errors; partyline logs what matters itself.
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	muxed := m.udp
	if m.udpConn != nil {
		m.dc = newDirectConn(m.socks, mt)
		muxed = m.dc
	}
	m.udpMux = &advertisedMux{UDPMux: webrtc.NewICEUDPMux(lf.NewLogger("udpmux"), muxed), loopback: m.loopback}

	if o.TCPAddr != TCPOff {
		addr := o.TCPAddr
		if addr == "" {
			addr = net.JoinHostPort(hostString(host), strconv.Itoa(bound.Port))
		}
		tcpNet := "tcp4"
		if host.Is6() {
			tcpNet = "tcp"
		}
		m.tcp, err = net.Listen(tcpNet, addr)
		if err != nil && o.TCPAddr == "" && port == 0 {
			// A free UDP port need not be free for TCP; any port will do.
			m.tcp, err = net.Listen(tcpNet, net.JoinHostPort(hostString(host), "0"))
		}
		if err != nil {
			return fmt.Errorf("signaling: voice ICE-TCP listener: %w", err)
		}
		m.tcpMux = webrtc.NewICETCPMux(lf.NewLogger("tcpmux"), m.tcp, 8)
	}

	se := webrtc.SettingEngine{LoggerFactory: lf}
	se.SetICEUDPMux(m.udpMux)
	if m.tcpMux != nil {
		se.SetICETCPMux(m.tcpMux)
	}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes(networkTypes(host, m.tcpMux != nil))
	se.SetICETimeouts(o.ICEDisconnectedTimeout, o.ICEDisconnectedTimeout+o.DisconnectTimeout, o.ICEKeepalive)
	if m.loopback {
		se.SetIncludeLoopbackCandidate(true)
		se.SetInterfaceFilter(func(name string) bool { return strings.HasPrefix(name, "lo") })
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	} else {
		se.SetIPFilter(advertisable)
	}
	if o.PublicIP != "" {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        []string{o.PublicIP},
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return fmt.Errorf("signaling: public IP rewrite: %w", err)
		}
	}

	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: opusCodec, PayloadType: opusPayloadType}, webrtc.RTPCodecTypeAudio); err != nil {
		return fmt.Errorf("signaling: register Opus: %w", err)
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: audioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return fmt.Errorf("signaling: register the audio level extension: %w", err)
	}
	// No interceptors: Opus carries its own loss concealment and FEC, so
	// there is no NACK or congestion control to run, and the node sends
	// the RTCP reports itself (reports.go).
	m.se, m.me = se, me
	return nil
}

// newPeerConnection builds a session's PeerConnection, on an API of its
// own whose DTLS handshake reports the session's keys to keys.
func (m *media) newPeerConnection(keys *dtlsKeys) (*webrtc.PeerConnection, error) {
	se := m.se
	se.SetDTLSKeyLogWriter(keys)
	se.SetDTLSServerHelloMessageHook(keys.serverHello)
	// An empty registry: without one, NewAPI would add Pion's defaults.
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m.me), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	return api.NewPeerConnection(webrtc.Configuration{})
}

func (m *media) close() {
	switch {
	case m.udpMux != nil:
		_ = m.udpMux.Close() // closes the sockets too
	case len(m.socks) > 0:
		for _, c := range m.socks {
			_ = c.Close()
		}
	case m.udp != nil:
		_ = m.udp.Close()
	}
	if m.tcpMux != nil {
		_ = m.tcpMux.Close() // closes the listener too
	} else if m.tcp != nil {
		_ = m.tcp.Close()
	}
}

// selfCheck describes what the node advertises.
func (m *media) selfCheck(o *Options) SelfCheck {
	c := SelfCheck{UDP: m.udp.LocalAddr().String(), Loopback: m.loopback}
	if m.tcp != nil {
		c.TCP = m.tcp.Addr().String()
	}
	if o.PublicIP != "" {
		c.Advertised = []string{o.PublicIP}
		return c
	}
	for _, a := range m.udpMux.GetListenAddresses() {
		if ua, ok := a.(*net.UDPAddr); ok {
			c.Advertised = append(c.Advertised, ua.IP.String())
		}
	}
	return c
}

func hostString(ip netip.Addr) string {
	if ip.Is4() && ip.IsUnspecified() {
		return "0.0.0.0"
	}
	return ip.String()
}

// networkTypes are the candidate networks for a socket bound to host.
func networkTypes(host netip.Addr, tcp bool) []webrtc.NetworkType {
	var out []webrtc.NetworkType
	v4 := host.Is4()
	v6 := host.Is6()
	if host.Is6() && host.IsUnspecified() {
		v4 = true // a dual-stack socket
	}
	if v4 {
		out = append(out, webrtc.NetworkTypeUDP4)
		if tcp {
			out = append(out, webrtc.NetworkTypeTCP4)
		}
	}
	if v6 {
		out = append(out, webrtc.NetworkTypeUDP6)
		if tcp {
			out = append(out, webrtc.NetworkTypeTCP6)
		}
	}
	return out
}

// advertisable reports whether ip may appear in a candidate of a node
// that is not in loopback mode.
func advertisable(ip net.IP) bool {
	return !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && !ip.IsUnspecified() && !ip.IsMulticast()
}

// advertisedMux narrows the addresses the ICE agent advertises for the UDP
// mux. A socket bound to an unspecified address would otherwise offer
// every interface's address, link-local ones included; in loopback mode
// only loopback addresses are offered, and otherwise none.
type advertisedMux struct {
	ice.UDPMux
	loopback bool
}

func (m *advertisedMux) GetListenAddresses() []net.Addr {
	all := m.UDPMux.GetListenAddresses()
	out := make([]net.Addr, 0, len(all))
	for _, a := range all {
		ua, ok := a.(*net.UDPAddr)
		if !ok {
			continue
		}
		if m.loopback == ua.IP.IsLoopback() && (m.loopback || advertisable(ua.IP)) {
			out = append(out, a)
		}
	}
	return out
}
