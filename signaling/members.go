package signaling

import (
	"context"
	"errors"
	"fmt"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/chat"
)

// Members answers who belongs to a room, which is who may use its voice
// room. It is safe for concurrent use and may block on a store.
type Members interface {
	// Member reports whether user is a member of room, and whether they
	// are its owner. A room that does not exist is an error wrapping
	// partyline.ErrNotFound; a non-member is (false, false, nil). Other
	// errors are failures of the store.
	Member(ctx context.Context, room, user string) (member, owner bool, err error)
}

// ChatMembers adapts a chat.Store to Members: a room's members are its
// member rows, so a public room's members are those who joined it by
// subscribing, and its owner is the member with chat.RoleOwner.
type ChatMembers struct {
	Store chat.Store
}

var _ Members = ChatMembers{}

// Member implements Members.
func (m ChatMembers) Member(ctx context.Context, room, user string) (bool, bool, error) {
	if _, err := m.Store.GetRoom(ctx, room); err != nil {
		if errors.Is(err, partyline.ErrNotFound) {
			return false, false, partyline.Errorf(partyline.ErrNotFound, "no such room %s", room)
		}
		return false, false, fmt.Errorf("signaling: get room %s: %w", room, err)
	}
	mem, err := m.Store.GetMember(ctx, room, user)
	if errors.Is(err, partyline.ErrNotFound) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("signaling: get member of room %s: %w", room, err)
	}
	return true, mem.Role == chat.RoleOwner, nil
}
