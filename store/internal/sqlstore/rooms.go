package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/store/internal/record"
)

// CreateRoom stores r and makes its owner a member with RoleOwner.
func (s *Store) CreateRoom(ctx context.Context, r chat.Room) error {
	r, err := record.Room(r)
	if err != nil {
		return s.errorf("create room: %w", err)
	}
	err = s.opts.InTx(ctx, func(tx Conn) error {
		if _, err := tx.Exec(ctx,
			`INSERT INTO rooms (id, name, visibility, owner, created_at) VALUES ($1, $2, $3, $4, $5)`,
			r.ID, r.Name, string(r.Visibility), r.Owner, r.CreatedAt); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, s.opts.SQL.AddOwner, r.ID, r.Owner, string(chat.RoleOwner), r.CreatedAt)
		return err
	})
	if err != nil {
		return s.errorf("create room %s: %w", r.ID, s.opts.Classify(err))
	}
	return nil
}

// GetRoom returns the room, or ErrNotFound.
func (s *Store) GetRoom(ctx context.Context, id string) (chat.Room, error) {
	var r chat.Room
	err := s.r.QueryRow(ctx, `SELECT id, name, visibility, owner, created_at FROM rooms WHERE id = $1`, id).
		Scan(&r.ID, &r.Name, &r.Visibility, &r.Owner, &r.CreatedAt)
	return found(s, r, err, "get room", id)
}

// PutMember adds a member or changes an existing member's role, keeping the
// read marker and join time.
func (s *Store) PutMember(ctx context.Context, roomID, userID string, role chat.Role) error {
	if err := record.Role(role); err != nil {
		return s.errorf("put member: %w", err)
	}
	if err := record.ID("user", userID); err != nil {
		return s.errorf("put member: %w", err)
	}
	if _, err := s.w.Exec(ctx, s.opts.SQL.PutMember, roomID, userID, string(role), record.Now()); err != nil {
		return s.errorf("put member %s in room %s: %w", userID, roomID, s.opts.Classify(err))
	}
	return nil
}

// RemoveMember removes a member, or returns ErrNotFound.
func (s *Store) RemoveMember(ctx context.Context, roomID, userID string) error {
	n, err := s.w.Exec(ctx, `DELETE FROM room_members WHERE room_id = $1 AND user_id = $2`, roomID, userID)
	return s.affected(n, err, "remove member of room "+roomID, userID)
}

const memberCols = `room_id, user_id, role, last_read_id, joined_at`

func scanMember(row Row) (chat.Member, error) {
	var m chat.Member
	err := row.Scan(&m.RoomID, &m.UserID, &m.Role, &m.LastReadID, &m.JoinedAt)
	return m, err
}

// GetMember returns the membership, or ErrNotFound.
func (s *Store) GetMember(ctx context.Context, roomID, userID string) (chat.Member, error) {
	m, err := scanMember(s.r.QueryRow(ctx,
		`SELECT `+memberCols+` FROM room_members WHERE room_id = $1 AND user_id = $2`, roomID, userID))
	return found(s, m, err, "get member of room "+roomID, userID)
}

// Members lists a room's members in join order; a missing room has none.
func (s *Store) Members(ctx context.Context, roomID string) ([]chat.Member, error) {
	ms, err := List(ctx, s.r, scanMember,
		`SELECT `+memberCols+` FROM room_members WHERE room_id = $1 ORDER BY joined_at, seq`, roomID)
	if err != nil {
		return nil, s.errorf("members of room %s: %w", roomID, err)
	}
	return ms, nil
}

// scanRoomSummary reads a row of Statements.UserRooms: the room's id, name,
// visibility, owner and created_at, the member's role, the unread count,
// and the last message's messageCols but deleted_at, all NULL when the room
// has none.
func scanRoomSummary(row Row) (chat.RoomSummary, error) {
	var (
		s                                chat.RoomSummary
		id, channel, author, body, epoch sql.NullString
		idem                             sql.NullString
		offset                           sql.NullInt64
		m                                chat.Message
	)
	if err := row.Scan(&s.ID, &s.Name, &s.Visibility, &s.Owner, &s.CreatedAt, &s.Role, &s.Unread,
		&id, &channel, &author, &body, &idem, &m.CreatedAt, &m.EditedAt, &epoch, &offset); err != nil {
		return s, err
	}
	if id.Valid {
		m.ID, m.Channel, m.Author, m.Data = id.String, channel.String, author.String, []byte(body.String)
		m.IdemKey, m.Epoch, m.Offset = idem.String, epoch.String, uint64(offset.Int64)
		s.LastMessage = &m
	}
	return s, nil
}

// UserRooms lists the user's rooms, newest activity first. A room's activity
// is its newest message that is not deleted, or its creation when it has
// none.
func (s *Store) UserRooms(ctx context.Context, userID string) ([]chat.RoomSummary, error) {
	out, err := List(ctx, s.r, scanRoomSummary, s.opts.SQL.UserRooms, userID)
	if err != nil {
		return nil, s.errorf("rooms of user %s: %w", userID, err)
	}
	return out, nil
}

// SetReadMarker moves the user's read marker on a room or dm channel forward
// to msgID; an older msgID leaves it where it is.
func (s *Store) SetReadMarker(ctx context.Context, channel, userID, msgID string) error {
	roomID, isDM, err := record.ReadChannel(channel)
	if err != nil {
		return s.errorf("set read marker: %w", err)
	}
	if isDM {
		_, err := s.w.Exec(ctx,
			`INSERT INTO dm_read_markers (channel, user_id, last_read_id, updated_at) VALUES ($1, $2, $3, $4)
			 ON CONFLICT (channel, user_id) DO UPDATE
			   SET last_read_id = excluded.last_read_id, updated_at = excluded.updated_at
			 WHERE dm_read_markers.last_read_id < excluded.last_read_id`,
			channel, userID, msgID, record.Now())
		if err != nil {
			return s.errorf("set read marker of %s on %s: %w", userID, channel, err)
		}
		return nil
	}
	n, err := s.w.Exec(ctx, s.opts.SQL.AdvanceRoomMarker, roomID, userID, msgID)
	if err != nil {
		return s.errorf("set read marker of %s on %s: %w", userID, channel, err)
	}
	if n == 0 {
		return s.notFound("set read marker on "+channel+": member", userID)
	}
	return nil
}

// ReadMarker returns the user's read marker on a room or dm channel, "" when
// none is set. On a room the user must be a member (ErrNotFound otherwise).
func (s *Store) ReadMarker(ctx context.Context, channel, userID string) (string, error) {
	roomID, isDM, err := record.ReadChannel(channel)
	if err != nil {
		return "", s.errorf("read marker: %w", err)
	}
	if !isDM {
		m, err := s.GetMember(ctx, roomID, userID)
		return m.LastReadID, err
	}
	var id string
	err = s.r.QueryRow(ctx,
		`SELECT last_read_id FROM dm_read_markers WHERE channel = $1 AND user_id = $2`, channel, userID).Scan(&id)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", s.errorf("read marker of %s on %s: %w", userID, channel, err)
	}
	return id, nil
}
