package loadtest

import (
	"bytes"
)

// The server writes every notification with "type" first (realtime/wire), so
// a prefix tells the kind without decoding the JSON. Only the fields a
// measurement needs are pulled out, by searching for their keys: a full
// decode of every delivered message would cost the load client more than the
// server spends sending it.
var (
	prefixMsg   = []byte(`{"type":"msg"`)
	prefixGap   = []byte(`{"type":"gap"`)
	prefixEvent = []byte(`{"type":"event"`)
	keySent     = []byte(`"sent":`)
	keyOffset   = []byte(`"offset":`)
)

type messageKind uint8

const (
	kindOther messageKind = iota
	kindMsg
	kindGap
	kindEvent
)

// scanned is what scanMessage finds in one message.
type scanned struct {
	kind      messageKind
	offset    uint64
	hasOffset bool
	sent      int64 // Unix ns, from data.sent
	hasSent   bool
}

// nextMessage splits the first message off a frame: messages are joined by
// '\n'. Surrounding spaces are trimmed; an empty msg means a blank line.
func nextMessage(frame []byte) (msg, rest []byte) {
	i := bytes.IndexByte(frame, '\n')
	if i < 0 {
		return bytes.TrimSpace(frame), nil
	}
	return bytes.TrimSpace(frame[:i]), frame[i+1:]
}

// scanMessage classifies msg and, for a msg notification, reads its offset
// and the "sent" time its publisher put into data. The offset comes before
// the payload on the wire, so the first "offset": is the envelope's; "sent"
// is searched after it.
func scanMessage(msg []byte) scanned {
	var s scanned
	switch {
	case bytes.HasPrefix(msg, prefixMsg):
		s.kind = kindMsg
	case bytes.HasPrefix(msg, prefixGap):
		s.kind = kindGap
		return s
	case bytes.HasPrefix(msg, prefixEvent):
		s.kind = kindEvent
		return s
	default:
		return s
	}
	rest := msg[len(prefixMsg):]
	if i := bytes.Index(rest, keyOffset); i >= 0 {
		v, n, ok := parseUint(rest[i+len(keyOffset):])
		if ok {
			s.offset, s.hasOffset = v, true
			rest = rest[i+len(keyOffset)+n:]
		}
	}
	if i := bytes.Index(rest, keySent); i >= 0 {
		v, _, ok := parseUint(rest[i+len(keySent):])
		if ok && v <= 1<<63-1 {
			s.sent, s.hasSent = int64(v), true
		}
	}
	return s
}

// parseUint parses the decimal digits at the start of b, and returns the
// value and how many bytes it used. It fails on no digits or overflow.
func parseUint(b []byte) (v uint64, n int, ok bool) {
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		d := uint64(b[n] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, 0, false
		}
		v = v*10 + d
		n++
	}
	return v, n, n > 0
}
