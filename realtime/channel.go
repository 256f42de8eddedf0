package realtime

import (
	"strings"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime/wire"
)

// Channel namespaces.
const (
	NSRoom      = "room"
	NSDM        = "dm"
	NSUser      = "user"
	NSStatus    = "status"
	NSClip      = "clip"
	NSVoice     = "voice"
	NSBroadcast = "broadcast"
)

// knownNamespaces are the namespaces of protocol v1.
var knownNamespaces = map[string]bool{
	NSRoom: true, NSDM: true, NSUser: true, NSStatus: true, NSClip: true, NSVoice: true, NSBroadcast: true,
}

// ParseChannel splits a channel name into namespace and name, checking the
// protocol's rules: at most 128 bytes of [A-Za-z0-9_.:-], a known namespace
// and a non-empty name. Failures wrap partyline.ErrInvalid.
func ParseChannel(ch string) (ns, name string, err error) {
	if ch == "" {
		return "", "", partyline.Errorf(partyline.ErrInvalid, "channel is required")
	}
	if len(ch) > wire.MaxChannelBytes {
		return "", "", partyline.Errorf(partyline.ErrInvalid, "channel is over %d bytes", wire.MaxChannelBytes)
	}
	for i := 0; i < len(ch); i++ {
		if !channelByte(ch[i]) {
			return "", "", partyline.Errorf(partyline.ErrInvalid, "channel has a character outside [A-Za-z0-9_.:-]")
		}
	}
	ns, name, ok := strings.Cut(ch, ":")
	if !ok || name == "" {
		return "", "", partyline.Errorf(partyline.ErrInvalid, "channel must be namespace:name")
	}
	if !knownNamespaces[ns] {
		return "", "", partyline.Errorf(partyline.ErrInvalid, "unknown channel namespace %q", ns)
	}
	return ns, name, nil
}

func channelByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == ':' || c == '-'
}

// ValidID reports whether s is a valid user or room id: [A-Za-z0-9_-]{1,64}.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
