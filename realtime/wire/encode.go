package wire

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// AppendPayload appends the stream payload of a publication: the fields of a
// msg other than type, channel, offset and epoch, without braces. The stream
// stores this fragment, and AppendMsg wraps it for delivery. data must be
// valid JSON or empty (a delete carries none).
func AppendPayload(b []byte, id, kind, from string, ts int64, data json.RawMessage) []byte {
	b = append(b, `"id":`...)
	b = AppendString(b, id)
	b = append(b, `,"kind":`...)
	b = AppendString(b, kind)
	if from != "" {
		b = append(b, `,"from":`...)
		b = AppendString(b, from)
	}
	b = append(b, `,"ts":`...)
	b = strconv.AppendInt(b, ts, 10)
	if len(data) > 0 {
		b = append(b, `,"data":`...)
		b = append(b, data...)
	}
	return b
}

// AppendMsg appends a complete msg notification for a publication on
// channel at pos with the given payload fragment.
func AppendMsg(b []byte, channel string, pos Position, payload []byte) []byte {
	b = append(b, `{"type":"msg","channel":`...)
	b = AppendString(b, channel)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, pos.Offset, 10)
	b = append(b, `,"epoch":`...)
	b = AppendString(b, pos.Epoch)
	if len(payload) > 0 {
		b = append(b, ',')
		b = append(b, payload...)
	}
	return append(b, '}')
}

// AppendEvent appends an ephemeral event on channel. from, user and users
// are written when set.
func AppendEvent(b []byte, channel, event, from, user string, users []string) []byte {
	b = append(b, `{"type":"event","channel":`...)
	b = AppendString(b, channel)
	b = append(b, `,"event":`...)
	b = AppendString(b, event)
	if from != "" {
		b = append(b, `,"from":`...)
		b = AppendString(b, from)
	}
	if user != "" {
		b = append(b, `,"user":`...)
		b = AppendString(b, user)
	}
	if users != nil {
		b = append(b, `,"users":[`...)
		for i, u := range users {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendString(b, u)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// AppendGap appends a gap notification.
func AppendGap(b []byte, channel string, pos Position) []byte {
	b = append(b, `{"type":"gap","channel":`...)
	b = AppendString(b, channel)
	b = append(b, `,"epoch":`...)
	b = AppendString(b, pos.Epoch)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, pos.Offset, 10)
	return append(b, '}')
}

// AppendUnsubscribed appends an unsubscribed notification: the server
// ended the connection's subscription to channel, for reason (such as
// "removed" from a room). It is an addition to protocol v1 that clients
// which do not know it ignore.
func AppendUnsubscribed(b []byte, channel, reason string) []byte {
	b = append(b, `{"type":"unsubscribed","channel":`...)
	b = AppendString(b, channel)
	b = append(b, `,"reason":`...)
	b = AppendString(b, reason)
	return append(b, '}')
}

// AppendReconnect appends a reconnect notice.
func AppendReconnect(b []byte, afterMS int64, reason string) []byte {
	b = append(b, `{"type":"reconnect","after_ms":`...)
	b = strconv.AppendInt(b, afterMS, 10)
	b = append(b, `,"reason":`...)
	b = AppendString(b, reason)
	return append(b, '}')
}

// ErrorReply is an error reply.
type ErrorReply struct {
	Type    string `json:"type"`
	ID      uint64 `json:"id"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// AppendError appends an error reply.
func AppendError(b []byte, id uint64, code, message string) []byte {
	b = append(b, `{"type":"error","id":`...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `,"code":`...)
	b = AppendString(b, code)
	b = append(b, `,"message":`...)
	b = AppendString(b, message)
	return append(b, '}')
}

// AppendOK appends an ok reply whose result fields are those of result, a
// struct or map that encodes to a JSON object (nil for none). Result fields
// named type or id are the caller's bug.
func AppendOK(b []byte, id uint64, result any) ([]byte, error) {
	b = append(b, `{"type":"ok","id":`...)
	b = strconv.AppendUint(b, id, 10)
	if result == nil {
		return append(b, '}'), nil
	}
	enc, err := json.Marshal(result)
	if err != nil {
		return b, err
	}
	if len(enc) > 2 && enc[0] == '{' {
		b = append(b, ',')
		b = append(b, enc[1:]...)
		return b, nil
	}
	return append(b, '}'), nil
}

// AppendString appends s as a JSON string. Plain ASCII, which ids, channel
// names and kinds always are, is copied as is; anything else is escaped as
// encoding/json would.
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
