package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Position is a place in a channel's offset stream.
type Position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// Request is any message a client sends. Fields a type does not use are
// left empty; unknown fields are ignored, as the protocol asks.
type Request struct {
	Type string `json:"type"`
	// ID is the request id: a positive integer, 0 for notifications.
	ID uint64 `json:"-"`

	Token   string          `json:"token,omitempty"`
	Client  string          `json:"client,omitempty"`
	Channel string          `json:"channel,omitempty"`
	Since   *Position       `json:"since,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
	Idem    string          `json:"idem,omitempty"`
	MsgID   string          `json:"msg_id,omitempty"`
	Before  string          `json:"before,omitempty"`
	Limit   int             `json:"limit,omitempty"`
	Status  string          `json:"status,omitempty"`
	Game    string          `json:"game,omitempty"`
	Text    string          `json:"text,omitempty"`

	Room      string          `json:"room,omitempty"`
	User      string          `json:"user,omitempty"`
	SDP       string          `json:"sdp,omitempty"`
	Candidate json.RawMessage `json:"candidate,omitempty"`
	Muted     *bool           `json:"muted,omitempty"`
}

// ErrProtocol marks a message that breaks the protocol itself: not JSON, no
// type, or a request without a valid id. The server closes with 4000.
var ErrProtocol = errors.New("protocol violation")

// BadRequestError is a request whose envelope is sound (it has a type and an
// id to reply to) but whose fields are malformed. The server answers it with
// a bad_request error and keeps the connection.
type BadRequestError struct {
	ID     uint64
	Type   string
	Reason string
}

func (e *BadRequestError) Error() string { return e.Reason }

// envelope is the part of a message decoded before anything else.
type envelope struct {
	Type *string         `json:"type"`
	ID   json.RawMessage `json:"id"`
}

// notifications are client messages that carry no id.
var notifications = map[string]bool{
	TypeTyping:      true,
	TypeVoiceAnswer: true,
	TypeVoiceICE:    true,
}

// IsNotification reports whether a client message type takes no id.
func IsNotification(typ string) bool { return notifications[typ] }

// DecodeRequest decodes one client message. It returns an error wrapping
// ErrProtocol when the message breaks the protocol, or a *BadRequestError
// when only its fields are malformed.
func DecodeRequest(msg []byte) (Request, error) {
	var env envelope
	if err := json.Unmarshal(msg, &env); err != nil {
		return Request{}, fmt.Errorf("not a JSON object: %w", ErrProtocol)
	}
	if env.Type == nil || *env.Type == "" {
		return Request{}, fmt.Errorf("message has no type: %w", ErrProtocol)
	}
	typ := *env.Type
	var id uint64
	if len(env.ID) > 0 && !bytes.Equal(env.ID, []byte("null")) {
		n, err := strconv.ParseUint(string(env.ID), 10, 64)
		if err != nil || n == 0 {
			return Request{}, fmt.Errorf("%s: id must be a positive integer: %w", typ, ErrProtocol)
		}
		id = n
	}
	if id == 0 && !IsNotification(typ) {
		return Request{}, fmt.Errorf("%s: a request needs an id: %w", typ, ErrProtocol)
	}
	var r Request
	if err := json.Unmarshal(msg, &r); err != nil {
		return Request{}, &BadRequestError{ID: id, Type: typ, Reason: "malformed fields: " + fieldError(err)}
	}
	r.ID = id
	return r, nil
}

func fieldError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return te.Field + " has the wrong type"
	}
	return err.Error()
}

// Split calls fn with each message of a frame. Messages are separated by
// '\n'; empty lines are skipped. It stops at the first error fn returns.
func Split(frame []byte, fn func(msg []byte) error) error {
	for len(frame) > 0 {
		i := bytes.IndexByte(frame, '\n')
		var msg []byte
		if i < 0 {
			msg, frame = frame, nil
		} else {
			msg, frame = frame[:i], frame[i+1:]
		}
		msg = bytes.TrimSpace(msg)
		if len(msg) == 0 {
			continue
		}
		if err := fn(msg); err != nil {
			return err
		}
	}
	return nil
}
