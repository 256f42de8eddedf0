package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/store/internal/record"
)

// CreateRoom stores r and makes its owner a member with RoleOwner.
func (db *DB) CreateRoom(ctx context.Context, r chat.Room) error {
	r, err := record.Room(r)
	if err != nil {
		return fmt.Errorf("sqlite: create room: %w", err)
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO rooms (id, name, visibility, owner, created_at) VALUES (?, ?, ?, ?, ?)`,
			r.ID, r.Name, string(r.Visibility), r.Owner, ms(r.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO room_members (room_id, user_id, role, joined_at, seq) VALUES (?, ?, ?, ?, 1)`,
			r.ID, r.Owner, string(chat.RoleOwner), ms(r.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create room %s: %w", r.ID, classify(err))
	}
	return nil
}

// GetRoom returns the room, or ErrNotFound.
func (db *DB) GetRoom(ctx context.Context, id string) (chat.Room, error) {
	var (
		r       chat.Room
		created int64
	)
	err := db.r.QueryRowContext(ctx,
		`SELECT id, name, visibility, owner, created_at FROM rooms WHERE id = ?`, id).
		Scan(&r.ID, &r.Name, &r.Visibility, &r.Owner, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Room{}, notFound("get room", id)
	}
	if err != nil {
		return chat.Room{}, fmt.Errorf("sqlite: get room %s: %w", id, err)
	}
	r.CreatedAt = fromMS(created)
	return r, nil
}

// PutMember adds a member or changes an existing member's role, keeping the
// read marker and join time.
func (db *DB) PutMember(ctx context.Context, roomID, userID string, role chat.Role) error {
	if err := record.Role(role); err != nil {
		return fmt.Errorf("sqlite: put member: %w", err)
	}
	if err := record.ID("user", userID); err != nil {
		return fmt.Errorf("sqlite: put member: %w", err)
	}
	// The single writer makes max(seq) + 1 race-free.
	_, err := db.w.ExecContext(ctx,
		`INSERT INTO room_members (room_id, user_id, role, joined_at, seq)
		 VALUES (?1, ?2, ?3, ?4, (SELECT coalesce(max(seq), 0) + 1 FROM room_members WHERE room_id = ?1))
		 ON CONFLICT (room_id, user_id) DO UPDATE SET role = excluded.role`,
		roomID, userID, string(role), ms(record.Now()))
	if err != nil {
		return fmt.Errorf("sqlite: put member %s in room %s: %w", userID, roomID, classify(err))
	}
	return nil
}

// RemoveMember removes a member, or returns ErrNotFound.
func (db *DB) RemoveMember(ctx context.Context, roomID, userID string) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM room_members WHERE room_id = ? AND user_id = ?`, roomID, userID)
	if err != nil {
		return fmt.Errorf("sqlite: remove member %s from room %s: %w", userID, roomID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errors.Join(err, notFound("remove member of room "+roomID, userID))
	}
	return nil
}

const memberCols = `room_id, user_id, role, last_read_id, joined_at`

func scanMember(row scanner) (chat.Member, error) {
	var (
		m      chat.Member
		joined int64
	)
	if err := row.Scan(&m.RoomID, &m.UserID, &m.Role, &m.LastReadID, &joined); err != nil {
		return chat.Member{}, err
	}
	m.JoinedAt = fromMS(joined)
	return m, nil
}

// GetMember returns the membership, or ErrNotFound.
func (db *DB) GetMember(ctx context.Context, roomID, userID string) (chat.Member, error) {
	m, err := scanMember(db.r.QueryRowContext(ctx,
		`SELECT `+memberCols+` FROM room_members WHERE room_id = ? AND user_id = ?`, roomID, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Member{}, notFound("get member of room "+roomID, userID)
	}
	if err != nil {
		return chat.Member{}, fmt.Errorf("sqlite: get member %s of room %s: %w", userID, roomID, err)
	}
	return m, nil
}

// Members lists a room's members in join order; a missing room has none.
func (db *DB) Members(ctx context.Context, roomID string) ([]chat.Member, error) {
	rows, err := db.r.QueryContext(ctx,
		`SELECT `+memberCols+` FROM room_members WHERE room_id = ? ORDER BY joined_at, seq`, roomID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: members of room %s: %w", roomID, err)
	}
	ms, err := collect(rows, scanMember)
	if err != nil {
		return nil, fmt.Errorf("sqlite: members of room %s: %w", roomID, err)
	}
	return ms, nil
}

// UserRooms lists the user's rooms, newest activity first. A room's activity
// is its newest message that is not deleted, or its creation when it has
// none.
func (db *DB) UserRooms(ctx context.Context, userID string) ([]chat.RoomSummary, error) {
	rows, err := db.r.QueryContext(ctx, `
		WITH mine AS (
		  SELECT r.id, r.name, r.visibility, r.owner, r.created_at, m.role, m.user_id, m.last_read_id,
		         (SELECT x.id FROM messages x
		           WHERE x.channel = 'room:' || r.id AND x.deleted_at IS NULL
		           ORDER BY x.id DESC LIMIT 1) AS last_id
		    FROM room_members m JOIN rooms r ON r.id = m.room_id
		   WHERE m.user_id = ?)
		SELECT mine.id, mine.name, mine.visibility, mine.owner, mine.created_at, mine.role,
		       (SELECT count(*) FROM messages u
		         WHERE u.channel = 'room:' || mine.id AND u.id > mine.last_read_id
		           AND u.deleted_at IS NULL AND u.author <> mine.user_id),
		       l.id, l.channel, l.author, l.body, l.idem_key, l.created_at, l.edited_at,
		       l.stream_epoch, l.stream_offset
		  FROM mine LEFT JOIN messages l ON l.id = mine.last_id
		 ORDER BY max(coalesce(l.created_at, mine.created_at), mine.created_at) DESC, mine.id DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: rooms of user %s: %w", userID, err)
	}
	out, err := collect(rows, func(row scanner) (chat.RoomSummary, error) {
		var (
			s                                chat.RoomSummary
			roomCreated                      int64
			id, channel, author, body, epoch sql.NullString
			idem                             sql.NullString
			created, edited, offset          sql.NullInt64
		)
		if err := row.Scan(&s.ID, &s.Name, &s.Visibility, &s.Owner, &roomCreated, &s.Role, &s.Unread,
			&id, &channel, &author, &body, &idem, &created, &edited, &epoch, &offset); err != nil {
			return s, err
		}
		s.CreatedAt = fromMS(roomCreated)
		if id.Valid {
			s.LastMessage = &chat.Message{
				ID: id.String, Channel: channel.String, Author: author.String, Data: []byte(body.String),
				IdemKey: idem.String, CreatedAt: fromNullMS(created), EditedAt: fromNullMS(edited),
				Epoch: epoch.String, Offset: uint64(offset.Int64),
			}
		}
		return s, nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: rooms of user %s: %w", userID, err)
	}
	return out, nil
}

// SetReadMarker moves the user's read marker on a room or dm channel forward
// to msgID; an older msgID leaves it where it is.
func (db *DB) SetReadMarker(ctx context.Context, channel, userID, msgID string) error {
	roomID, isDM, err := record.ReadChannel(channel)
	if err != nil {
		return fmt.Errorf("sqlite: set read marker: %w", err)
	}
	if isDM {
		_, err := db.w.ExecContext(ctx,
			`INSERT INTO dm_read_markers (channel, user_id, last_read_id, updated_at) VALUES (?, ?, ?, ?)
			 ON CONFLICT (channel, user_id) DO UPDATE
			   SET last_read_id = excluded.last_read_id, updated_at = excluded.updated_at
			 WHERE dm_read_markers.last_read_id < excluded.last_read_id`,
			channel, userID, msgID, ms(record.Now()))
		if err != nil {
			return fmt.Errorf("sqlite: set read marker of %s on %s: %w", userID, channel, err)
		}
		return nil
	}
	res, err := db.w.ExecContext(ctx,
		`UPDATE room_members SET last_read_id = max(last_read_id, ?3) WHERE room_id = ?1 AND user_id = ?2`,
		roomID, userID, msgID)
	if err != nil {
		return fmt.Errorf("sqlite: set read marker of %s on %s: %w", userID, channel, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errors.Join(err, notFound("set read marker on "+channel+": member", userID))
	}
	return nil
}

// ReadMarker returns the user's read marker on a room or dm channel, "" when
// none is set. On a room the user must be a member (ErrNotFound otherwise).
func (db *DB) ReadMarker(ctx context.Context, channel, userID string) (string, error) {
	roomID, isDM, err := record.ReadChannel(channel)
	if err != nil {
		return "", fmt.Errorf("sqlite: read marker: %w", err)
	}
	if !isDM {
		m, err := db.GetMember(ctx, roomID, userID)
		return m.LastReadID, err
	}
	var id string
	err = db.r.QueryRowContext(ctx,
		`SELECT last_read_id FROM dm_read_markers WHERE channel = ? AND user_id = ?`, channel, userID).Scan(&id)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("sqlite: read marker of %s on %s: %w", userID, channel, err)
	}
	return id, nil
}
