package signaling

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime"
)

// The defaults of the Options fields.
const (
	DefaultUDPAddr           = "127.0.0.1:7882"
	DefaultCapacity          = 25
	DefaultDisconnectTimeout = 15 * time.Second
	DefaultConnectTimeout    = 30 * time.Second
	DefaultTURNTTL           = time.Hour
	DefaultSpeakingInterval  = 400 * time.Millisecond
	DefaultSpeakingLevel     = 50
	DefaultSpeakingHold      = 600 * time.Millisecond
	DefaultQueuePackets      = 64
	DefaultRefreshInterval   = 5 * time.Second
	DefaultRelayTimeout      = 5 * time.Second
)

// TCPOff as Options.TCPAddr turns ICE-TCP off.
const TCPOff = "off"

// maxTURNTTL caps the lifetime of TURN credentials.
const maxTURNTTL = time.Hour

// Options configures a Service. Every field's comment gives its zero value.
type Options struct {
	// Members says who belongs to which room and who owns it. Required.
	// ChatMembers adapts a chat.Store.
	Members Members
	// Node is the gateway node the Service plugs into: it publishes, relays
	// node-to-node messages and lists the live nodes. Required.
	Node Node
	// Placement records which node hosts each voice room. Nil means
	// realtime.MemoryLeases, which are right for one node only.
	Placement Placement

	// UDPAddr is the host:port of the one UDP socket every ICE exchange of
	// this node goes through (an ICE UDP mux). Empty means
	// "127.0.0.1:7882". Port 0 picks a free port (tests). A loopback host
	// keeps voice on loopback: only that address is advertised, which is
	// the local demo and test mode. Otherwise loopback and link-local
	// addresses are never advertised; an unspecified host (0.0.0.0)
	// advertises every other address of the machine.
	UDPAddr string
	// TCPAddr is the host:port of the ICE-TCP listener, the fallback for
	// networks that block UDP. Empty means the host and port the UDP
	// socket got; TCPOff turns ICE-TCP off.
	TCPAddr string
	// PublicIP, when set, is advertised in place of the bound address
	// (1:1 NAT, as on a cloud VM with a public address mapped to a
	// private one). Empty means the bound addresses are advertised.
	PublicIP string
	// DisableDirectPath turns off the direct path (internal/srtpdirect),
	// where the node protects, unprotects and forwards SRTP itself on the
	// UDP port underneath Pion: every session then takes Pion's own SRTP
	// path both ways, with one UDP socket, at a higher cost per packet.
	// It is the way back when a Pion upgrade breaks what the direct path
	// relies on. False (the zero value) means the direct path is on.
	DisableDirectPath bool

	// STUNURLs are handed to clients in the join reply's ice_servers, such
	// as "stun:stun.example.org:3478". Empty means none. The server itself
	// uses none: it is reachable at its advertised address.
	STUNURLs []string
	// TURNURLs are the TURN servers handed to clients, such as
	// "turn:turn.example.org:3478?transport=udp". They are sent only when
	// TURNSecret is set. Empty means none.
	TURNURLs []string
	// TURNSecret is the secret shared with the TURN server for time-limited
	// credentials (the TURN REST API scheme, coturn's use-auth-secret):
	// username "<expiry-unix>:<user>", credential
	// base64(HMAC-SHA1(secret, username)). Empty means no TURN.
	TURNSecret string
	// TURNTTL is how long TURN credentials stay valid. Zero means one
	// hour, which is also the most allowed.
	TURNTTL time.Duration

	// Capacity is the most participants a voice room holds. Zero means 25.
	Capacity int
	// DisconnectTimeout is how long a participant whose ICE connection is
	// disconnected or failed stays in the room before it is removed. Zero
	// means 15 seconds.
	DisconnectTimeout time.Duration
	// ConnectTimeout is how long a participant has, from its join, to
	// connect at all before it is removed. Zero means 30 seconds.
	ConnectTimeout time.Duration
	// ICEDisconnectedTimeout is how long without traffic the ICE agent
	// waits before it calls a connection disconnected, and
	// ICEKeepalive how often it sends keepalives. Zero means 5 seconds
	// and 2 seconds.
	ICEDisconnectedTimeout time.Duration
	ICEKeepalive           time.Duration

	// SpeakingInterval is the period of the speaking check: a speaking
	// event goes out at most once per interval, and only when the set of
	// speakers changed. Zero means 400 ms (2.5 per second). Values below
	// that are raised to it.
	SpeakingInterval time.Duration
	// SpeakingLevel is the loudness threshold in -dBov (RFC 6464: 0 is
	// the loudest, 127 silence): a participant whose smoothed level is at
	// or below it is speaking. Zero means 50.
	SpeakingLevel int
	// SpeakingHold is how long a speaker stays in the set after their
	// level last crossed the threshold, so pauses between words do not
	// flap the indicator. Zero means 600 ms.
	SpeakingHold time.Duration

	// QueuePackets bounds each subscriber's queue of packets waiting to be
	// written; past it packets for that subscriber are dropped and
	// counted, so a slow subscriber never stalls the others. Zero means 64
	// packets, about 1.3 s of one speaker's 20 ms frames.
	QueuePackets int
	// RefreshInterval is how often Run refreshes this node's room
	// placements and checks that the nodes its participants depend on are
	// alive. It must be well under the Placement's TTL. Zero means 5
	// seconds.
	RefreshInterval time.Duration
	// RelayTimeout bounds a voice request relayed to the room's media node.
	// Zero means 5 seconds.
	RelayTimeout time.Duration

	// Registerer receives the partyline_voice_* collectors. Nil means none
	// are registered.
	Registerer prometheus.Registerer
	// Logger receives the self-check and failures. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// setDefaults fills in zero values and validates.
func (o *Options) setDefaults() error {
	if o.Members == nil {
		return errors.New("signaling: Options.Members is required")
	}
	if o.Node == nil {
		return errors.New("signaling: Options.Node is required")
	}
	if o.Placement == nil {
		o.Placement = realtime.NewMemoryLeases(realtime.MemoryLeasesOptions{})
	}
	if o.UDPAddr == "" {
		o.UDPAddr = DefaultUDPAddr
	}
	if _, _, err := splitHostPort(o.UDPAddr); err != nil {
		return fmt.Errorf("signaling: Options.UDPAddr: %w", err)
	}
	if o.TCPAddr != "" && o.TCPAddr != TCPOff {
		if _, _, err := splitHostPort(o.TCPAddr); err != nil {
			return fmt.Errorf("signaling: Options.TCPAddr: %w", err)
		}
	}
	if o.PublicIP != "" {
		ip, err := netip.ParseAddr(o.PublicIP)
		if err != nil {
			return fmt.Errorf("signaling: Options.PublicIP %q is not an IP address: %w", o.PublicIP, partyline.ErrInvalid)
		}
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
			return fmt.Errorf("signaling: Options.PublicIP %s cannot be advertised: %w", ip, partyline.ErrInvalid)
		}
	}
	for _, u := range append(append([]string(nil), o.STUNURLs...), o.TURNURLs...) {
		if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "stuns:") &&
			!strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
			return fmt.Errorf("signaling: ICE server URL %q: want stun:, stuns:, turn: or turns: %w", u, partyline.ErrInvalid)
		}
	}
	if o.TURNTTL <= 0 {
		o.TURNTTL = DefaultTURNTTL
	}
	if o.TURNTTL > maxTURNTTL {
		return fmt.Errorf("signaling: Options.TURNTTL %v is over %v: %w", o.TURNTTL, maxTURNTTL, partyline.ErrInvalid)
	}
	if o.Capacity < 0 {
		return fmt.Errorf("signaling: Options.Capacity must not be negative: %w", partyline.ErrInvalid)
	}
	if o.Capacity == 0 {
		o.Capacity = DefaultCapacity
	}
	setDur(&o.DisconnectTimeout, DefaultDisconnectTimeout)
	setDur(&o.ConnectTimeout, DefaultConnectTimeout)
	setDur(&o.ICEDisconnectedTimeout, 5*time.Second)
	setDur(&o.ICEKeepalive, 2*time.Second)
	setDur(&o.SpeakingInterval, DefaultSpeakingInterval)
	if o.SpeakingInterval < DefaultSpeakingInterval {
		o.SpeakingInterval = DefaultSpeakingInterval
	}
	if o.SpeakingLevel <= 0 || o.SpeakingLevel > 127 {
		o.SpeakingLevel = DefaultSpeakingLevel
	}
	setDur(&o.SpeakingHold, DefaultSpeakingHold)
	if o.QueuePackets <= 0 {
		o.QueuePackets = DefaultQueuePackets
	}
	setDur(&o.RefreshInterval, DefaultRefreshInterval)
	setDur(&o.RelayTimeout, DefaultRelayTimeout)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

func setDur(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// splitHostPort parses host:port where host is an IP address (or empty,
// meaning every address).
func splitHostPort(addr string) (netip.Addr, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("%q: %w", addr, errors.Join(err, partyline.ErrInvalid))
	}
	var p int
	if _, err := fmt.Sscanf(port, "%d", &p); err != nil || p < 0 || p > 65535 {
		return netip.Addr{}, 0, fmt.Errorf("%q: bad port: %w", addr, partyline.ErrInvalid)
	}
	if host == "" {
		return netip.IPv4Unspecified(), p, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("%q: the host must be an IP address: %w", addr, partyline.ErrInvalid)
	}
	return ip.Unmap(), p, nil
}
