package signaling

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"

	"github.com/partyline/partyline/signaling/internal/srtpdirect"
)

// The negotiated media: Opus only, with in-band FEC, and the RFC 6464
// audio level header extension the speaking indicator reads.
const (
	audioLevelURI   = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
	opusPayloadType = 111
	opusFmtp        = "minptime=10;useinbandfec=1"
)

// udpBufferBytes is the socket buffer asked for each ICE UDP socket:
// every participant's packets share the port, so it needs room for
// bursts (the kernel caps it at net.core.[rw]mem_max).
const udpBufferBytes = 4 << 20

var opusCodec = webrtc.RTPCodecCapability{
	MimeType:    webrtc.MimeTypeOpus,
	ClockRate:   48000,
	Channels:    2,
	SDPFmtpLine: opusFmtp,
}

// media is what Run opens: the UDP port and its ICE mux, the optional
// ICE-TCP listener and mux, and the WebRTC API built on them.
type media struct {
	se       webrtc.SettingEngine
	me       *webrtc.MediaEngine
	udp      net.PacketConn   // what the ICE mux reads: dc, or a plain socket without the direct path
	dc       *srtpdirect.Conn // nil with Options.DisableDirectPath
	fws      []forwarder      // the direct path's scratch, one per reader of dc
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
	addr := net.JoinHostPort(hostString(host), strconv.Itoa(port))
	if o.DisableDirectPath {
		// Pion's path alone: one socket, which the ICE mux reads.
		var uc *net.UDPConn
		uc, err = net.ListenUDP(udpNet, net.UDPAddrFromAddrPort(netip.AddrPortFrom(host, uint16(port))))
		if err == nil {
			_ = uc.SetReadBuffer(udpBufferBytes)
			_ = uc.SetWriteBuffer(udpBufferBytes)
			m.udp = uc
		}
	} else {
		m.dc, err = srtpdirect.Listen(udpNet, addr, udpBufferBytes)
		if err == nil {
			m.udp = m.dc
			m.fws = make([]forwarder, m.dc.Readers())
			for i := range m.fws {
				m.fws[i].m = mt
			}
		}
	}
	if err != nil {
		return fmt.Errorf("signaling: voice UDP socket: %w", err)
	}
	bound := m.udp.LocalAddr().(*net.UDPAddr)

	// Pion's own logs go to stderr and report routine events of closing
	// connections as errors; partyline logs what matters itself.
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	m.udpMux = &advertisedMux{UDPMux: webrtc.NewICEUDPMux(lf.NewLogger("udpmux"), m.udp), loopback: m.loopback}

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
// own whose DTLS handshake reports the session's keys to its direct path.
func (m *media) newPeerConnection(direct *srtpdirect.Session) (*webrtc.PeerConnection, error) {
	se := m.se
	direct.Configure(&se)
	// An empty registry: without one, NewAPI would add Pion's defaults.
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m.me), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	return api.NewPeerConnection(webrtc.Configuration{})
}

func (m *media) close() {
	if m.udpMux != nil {
		_ = m.udpMux.Close() // closes the sockets too
	} else if m.udp != nil {
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
