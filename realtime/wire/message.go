package wire

import (
	"encoding/json"
	"strconv"
)

// Message is any message the server sends, decoded. Clients decode every
// message of a frame into it and switch on Type; fields a type does not use
// are empty, and result fields of ok replies that have no field here stay in
// Raw.
type Message struct {
	Type string `json:"type"`
	// ID is the request id of a reply; in a msg it is 0 and MsgID holds the
	// message id.
	ID    uint64          `json:"-"`
	RawID json.RawMessage `json:"id,omitempty"`

	// error replies
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`

	// msg, event, gap
	Channel string          `json:"channel,omitempty"`
	Offset  uint64          `json:"offset,omitempty"`
	Epoch   string          `json:"epoch,omitempty"`
	MsgID   string          `json:"-"`
	Kind    string          `json:"kind,omitempty"`
	From    string          `json:"from,omitempty"`
	TS      int64           `json:"ts,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
	Event   string          `json:"event,omitempty"`
	User    string          `json:"user,omitempty"`
	Users   []string        `json:"users,omitempty"`

	// reconnect
	AfterMS int64  `json:"after_ms,omitempty"`
	Reason  string `json:"reason,omitempty"`

	// voice signaling notifications
	Room      string          `json:"room,omitempty"`
	SDP       string          `json:"sdp,omitempty"`
	Candidate json.RawMessage `json:"candidate,omitempty"`

	// Raw is the whole message as received.
	Raw json.RawMessage `json:"-"`
}

// DecodeMessage decodes one server message.
func DecodeMessage(b []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		return Message{}, err
	}
	if len(m.RawID) > 0 {
		if m.RawID[0] == '"' {
			_ = json.Unmarshal(m.RawID, &m.MsgID)
		} else {
			m.ID, _ = strconv.ParseUint(string(m.RawID), 10, 64)
		}
	}
	m.Raw = b
	return m, nil
}
