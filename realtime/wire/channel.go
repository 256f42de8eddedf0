package wire

import (
	"strings"

	"github.com/partyline/partyline"
)

// Channel namespaces of protocol v1. The gateway owns user, status and
// broadcast; the others belong to the extension that registers them.
const (
	NSRoom      = "room"
	NSDM        = "dm"
	NSUser      = "user"
	NSStatus    = "status"
	NSClip      = "clip"
	NSVoice     = "voice"
	NSBroadcast = "broadcast"
)

// ParseChannel splits a channel name into namespace and name by the
// protocol's syntax: at most 128 bytes of [A-Za-z0-9_.:-], namespace:name
// with a non-empty name. It does not check that a namespace is served;
// the gateway does. Failures wrap partyline.ErrInvalid.
func ParseChannel(ch string) (ns, name string, err error) {
	if ch == "" {
		return "", "", partyline.Errorf(partyline.ErrInvalid, "channel is required")
	}
	if len(ch) > MaxChannelBytes {
		return "", "", partyline.Errorf(partyline.ErrInvalid, "channel is over %d bytes", MaxChannelBytes)
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
	return ns, name, nil
}

func channelByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == ':' || c == '-'
}

// ValidID reports whether s is a valid user, room, clip or message id:
// [A-Za-z0-9_-]{1,64}.
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
