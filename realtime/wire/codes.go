package wire

// Subprotocol is the WebSocket subprotocol of protocol v1.
const Subprotocol = "partyline.v1"

// Message types. Requests go from client to server and carry an id;
// notifications carry none and get no reply.
const (
	TypeHello    = "hello"
	TypePing     = "ping"
	TypeSub      = "sub"
	TypeUnsub    = "unsub"
	TypePub      = "pub"
	TypeEdit     = "edit"
	TypeDelete   = "delete"
	TypeHistory  = "history"
	TypeRead     = "read"
	TypeTyping   = "typing" // a notification: no id, no reply
	TypePresence = "presence"
	TypeStatus   = "status"

	TypeVoiceJoin   = "voice.join"
	TypeVoiceOffer  = "voice.offer"
	TypeVoiceAnswer = "voice.answer"
	TypeVoiceICE    = "voice.ice"
	TypeVoiceMute   = "voice.mute"
	TypeVoiceKick   = "voice.kick"
	TypeVoiceLeave  = "voice.leave"

	TypeOK        = "ok"
	TypeError     = "error"
	TypeMsg       = "msg"
	TypeEvent     = "event"
	TypeGap       = "gap"
	TypeReconnect = "reconnect"
	// TypeUnsubscribed tells a client the server ended one of its
	// subscriptions, as when it was removed from a private room.
	TypeUnsubscribed = "unsubscribed"
)

// Publication kinds in room and dm channels, and the server's own kinds.
const (
	KindMessage = "message"
	KindEdit    = "edit"
	KindDelete  = "delete"
	KindStatus  = "status"
)

// Ephemeral event names.
const (
	EventTyping   = "typing"
	EventJoin     = "join"
	EventLeave    = "leave"
	EventSpeaking = "speaking"
)

// Error codes of an error reply.
const (
	CodeBadRequest    = "bad_request"
	CodeUnauthorized  = "unauthorized"
	CodeForbidden     = "forbidden"
	CodeNotFound      = "not_found"
	CodeConflict      = "conflict"
	CodeRateLimited   = "rate_limited"
	CodeTooLarge      = "too_large"
	CodeLimitExceeded = "limit_exceeded"
	CodeUnavailable   = "unavailable"
	CodeInternal      = "internal"
)

// Close codes.
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseTooBig          = 1009
	CloseInternal        = 1011
	CloseServiceRestart  = 1012 // drain: reconnect after the reconnect notice
	CloseTryAgainLater   = 1013 // overloaded or over the per-user connection cap
	CloseProtocol        = 4000
	CloseHelloTimeout    = 4001
	CloseUnauthorized    = 4003
	CloseRateLimitAbused = 4008
	CloseSlowConsumer    = 4009
)

// Statuses of a user.
const (
	StatusOnline  = "online"
	StatusIdle    = "idle"
	StatusDND     = "dnd"
	StatusInGame  = "in_game"
	StatusOffline = "offline"
)

// ValidStatus reports whether s is a status a client may set.
func ValidStatus(s string) bool {
	switch s {
	case StatusOnline, StatusIdle, StatusDND, StatusInGame, StatusOffline:
		return true
	}
	return false
}

// Protocol limits and defaults.
const (
	MaxChannelBytes     = 128
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 200
	DefaultFrameBytes   = 64 << 10
)
