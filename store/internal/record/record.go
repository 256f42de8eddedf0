package record

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/partyline/partyline"
	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/clips"
)

// Time returns t in UTC cut to whole milliseconds, the precision both stores
// keep, so a value read back equals the value written.
func Time(t time.Time) time.Time {
	return t.UTC().Truncate(time.Millisecond)
}

// TimeOrNow is Time(t), or the current time when t is zero.
func TimeOrNow(t time.Time) time.Time {
	if t.IsZero() {
		return Time(time.Now())
	}
	return Time(t)
}

// Now returns the current time cut to milliseconds.
func Now() time.Time { return Time(time.Now()) }

// messageID returns a new ULID whose time part is at.
func messageID(at time.Time) string {
	return ulid.MustNew(ulid.Timestamp(at), ulid.DefaultEntropy()).String()
}

// RoomOf returns the room id a "room:<id>" channel names, and false for any
// other channel.
func RoomOf(channel string) (string, bool) {
	id, ok := strings.CutPrefix(channel, "room:")
	return id, ok && id != ""
}

// ReadChannel splits a read-marker channel: a room channel gives its room id,
// a "dm:<a>:<b>" channel gives isDM. Anything else wraps partyline.ErrInvalid.
func ReadChannel(channel string) (roomID string, isDM bool, err error) {
	if id, ok := RoomOf(channel); ok {
		return id, false, nil
	}
	if rest, ok := strings.CutPrefix(channel, "dm:"); ok {
		a, b, ok := strings.Cut(rest, ":")
		if ok && a != "" && b != "" {
			return "", true, nil
		}
	}
	return "", false, fmt.Errorf("channel %q is neither room:<id> nor dm:<a>:<b>: %w", channel, partyline.ErrInvalid)
}

// Message checks m and fills what the store assigns: an id when m.ID is
// empty, and the creation time when it is zero. Times are cut to
// milliseconds.
func Message(m chat.Message) (chat.Message, error) {
	if m.Channel == "" || m.Author == "" {
		return m, fmt.Errorf("message needs a channel and an author: %w", partyline.ErrInvalid)
	}
	if err := Data(m.Data); err != nil {
		return m, err
	}
	m.CreatedAt = TimeOrNow(m.CreatedAt)
	if !m.EditedAt.IsZero() {
		m.EditedAt = Time(m.EditedAt)
	}
	if !m.DeletedAt.IsZero() {
		m.DeletedAt = Time(m.DeletedAt)
	}
	if m.ID == "" {
		m.ID = messageID(m.CreatedAt)
	}
	return m, nil
}

// Data checks that a message's data is one JSON value.
func Data(data json.RawMessage) error {
	if len(data) == 0 || !json.Valid(data) {
		return fmt.Errorf("message data is not a JSON value: %w", partyline.ErrInvalid)
	}
	return nil
}

// EventKind checks an engagement event kind.
func EventKind(kind string) error {
	switch kind {
	case clips.EventView, clips.EventLike, clips.EventShare, clips.EventSkip:
		return nil
	}
	return fmt.Errorf("unknown event kind %q: %w", kind, partyline.ErrInvalid)
}

// Tags returns tags, never nil, so a clip without tags reads back as an empty
// list in both stores.
func Tags(tags []string) []string {
	if tags == nil {
		return []string{}
	}
	return tags
}

// ID checks that an id the caller must supply is not empty.
func ID(what, id string) error {
	if id == "" {
		return fmt.Errorf("empty %s id: %w", what, partyline.ErrInvalid)
	}
	return nil
}

// owned checks that a record of kind what names its id and its owner.
func owned(what, id, owner string) error {
	if err := ID(what, id); err != nil {
		return err
	}
	return ID("owner", owner)
}

// Clip checks the fields of c that a store keeps constrained, cuts its times
// to milliseconds (CreatedAt defaults to now, UpdatedAt to CreatedAt) and
// makes Tags non-nil.
func Clip(c clips.Clip) (clips.Clip, error) {
	if err := owned("clip", c.ID, c.Owner); err != nil {
		return c, err
	}
	if err := ClipFields(c); err != nil {
		return c, err
	}
	c.CreatedAt = TimeOrNow(c.CreatedAt)
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	c.UpdatedAt = Time(c.UpdatedAt)
	c.Tags = Tags(c.Tags)
	return c, nil
}

// ClipFields checks a clip's visibility and status.
func ClipFields(c clips.Clip) error {
	switch c.Visibility {
	case clips.Public, clips.Unlisted, clips.Private:
	default:
		return fmt.Errorf("clip %s: unknown visibility %q: %w", c.ID, c.Visibility, partyline.ErrInvalid)
	}
	switch c.Status {
	case clips.StatusUploading, clips.StatusProcessing, clips.StatusReady, clips.StatusFailed:
	default:
		return fmt.Errorf("clip %s: unknown status %q: %w", c.ID, c.Status, partyline.ErrInvalid)
	}
	return nil
}

// Room checks r and cuts its creation time, which defaults to now.
func Room(r chat.Room) (chat.Room, error) {
	if err := owned("room", r.ID, r.Owner); err != nil {
		return r, err
	}
	switch r.Visibility {
	case chat.Public, chat.Private:
	default:
		return r, fmt.Errorf("room %s: unknown visibility %q: %w", r.ID, r.Visibility, partyline.ErrInvalid)
	}
	r.CreatedAt = TimeOrNow(r.CreatedAt)
	return r, nil
}

// Role checks a member role.
func Role(role chat.Role) error {
	switch role {
	case chat.RoleOwner, chat.RoleMember:
		return nil
	}
	return fmt.Errorf("unknown role %q: %w", role, partyline.ErrInvalid)
}
