package chat

import (
	"context"
	"encoding/json"
	"time"
)

// Visibility says who may join a room.
type Visibility string

// Room visibilities. A public room is joined by subscribing to it; a private
// one only by the owner adding members.
const (
	Public  Visibility = "public"
	Private Visibility = "private"
)

// Role is a member's role in a room.
type Role string

// Member roles.
const (
	RoleOwner  Role = "owner"
	RoleMember Role = "member"
)

// IdemWindow is how long a publish idempotency key is remembered per user.
const IdemWindow = 10 * time.Minute

// Room is a chat room.
type Room struct {
	ID         string
	Name       string
	Visibility Visibility
	Owner      string
	CreatedAt  time.Time
}

// Member is a user's membership of a room.
type Member struct {
	RoomID     string
	UserID     string
	Role       Role
	LastReadID string // the id of the last message read, "" when none
	JoinedAt   time.Time
}

// Message is a chat message in a room or a dm channel.
type Message struct {
	ID        string          // a ULID: sorts by creation time
	Channel   string          // "room:<id>" or "dm:<a>:<b>"
	Author    string          // a user id, or "system"
	Data      json.RawMessage // the client's data object, stored verbatim
	IdemKey   string          // "" when the publish was not idempotent
	CreatedAt time.Time
	EditedAt  time.Time // zero when never edited
	DeletedAt time.Time // zero when not deleted
	// Epoch and Offset are the stream position of the original publication,
	// recorded after it was published, so an idempotent retry can return it.
	Epoch  string
	Offset uint64
}

// RoomSummary is one entry of a user's room list.
type RoomSummary struct {
	Room
	Role        Role
	Unread      int      // messages after the user's read marker, not deleted, not by the user
	LastMessage *Message // the newest message that is not deleted; nil when none
}

// Store is the persistence chat needs. Implementations are safe for
// concurrent use. Errors wrap partyline.ErrNotFound, ErrConflict or ErrInvalid
// where the doc says so; anything else is an infrastructure failure.
type Store interface {
	// CreateRoom stores r and makes r.Owner its member with RoleOwner, in one
	// transaction. An existing r.ID is ErrConflict.
	CreateRoom(ctx context.Context, r Room) error
	// GetRoom returns the room, or ErrNotFound.
	GetRoom(ctx context.Context, id string) (Room, error)
	// PutMember adds the user to the room with role, or changes the role of an
	// existing member, keeping their read marker. A missing room is ErrNotFound.
	PutMember(ctx context.Context, roomID, userID string, role Role) error
	// RemoveMember removes the user from the room; a non-member is ErrNotFound.
	RemoveMember(ctx context.Context, roomID, userID string) error
	// GetMember returns the membership, or ErrNotFound.
	GetMember(ctx context.Context, roomID, userID string) (Member, error)
	// Members lists a room's members in join order.
	Members(ctx context.Context, roomID string) ([]Member, error)
	// UserRooms lists the rooms the user is a member of, newest activity first.
	UserRooms(ctx context.Context, userID string) ([]RoomSummary, error)

	// InsertMessage stores m. When m.IdemKey is set and the same author used it
	// for a message created less than IdemWindow before m.CreatedAt, nothing is
	// stored and that earlier message is returned with created false. An older
	// use of the key is forgotten. A duplicate m.ID is ErrConflict.
	InsertMessage(ctx context.Context, m Message) (stored Message, created bool, err error)
	// SetMessagePosition records the stream position of a message's publication.
	SetMessagePosition(ctx context.Context, id, epoch string, offset uint64) error
	// GetMessage returns the message, deleted or not, or ErrNotFound.
	GetMessage(ctx context.Context, id string) (Message, error)
	// EditMessage replaces the data of a message that is not deleted and sets
	// EditedAt. A missing or deleted message is ErrNotFound.
	EditMessage(ctx context.Context, id string, data json.RawMessage, at time.Time) (Message, error)
	// DeleteMessage marks a message deleted. A missing or already deleted
	// message is ErrNotFound.
	DeleteMessage(ctx context.Context, id string, at time.Time) (Message, error)
	// History returns up to limit messages of the channel with ids below
	// before ("" for the newest), newest first, leaving deleted ones out.
	// more says whether older messages remain.
	History(ctx context.Context, channel, before string, limit int) (msgs []Message, more bool, err error)
	// SetReadMarker stores the user's read marker on a room or dm channel. For
	// a room the user must be a member (ErrNotFound otherwise). A marker never
	// moves backwards: an older msgID leaves it unchanged.
	SetReadMarker(ctx context.Context, channel, userID, msgID string) error
}
