package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/store/internal/record"
)

// CreateRoom stores r and makes its owner a member with RoleOwner.
func (db *DB) CreateRoom(ctx context.Context, r chat.Room) error {
	r, err := record.Room(r)
	if err != nil {
		return fmt.Errorf("postgres: create room: %w", err)
	}
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx,
			`INSERT INTO rooms (id, name, visibility, owner, created_at) VALUES ($1, $2, $3, $4, $5)`,
			r.ID, r.Name, string(r.Visibility), r.Owner, r.CreatedAt); err != nil {
			return err
		}
		_, err := tx.Exec(ctx,
			`INSERT INTO room_members (room_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)`,
			r.ID, r.Owner, string(chat.RoleOwner), r.CreatedAt)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: create room %s: %w", r.ID, classify(err))
	}
	return nil
}

// GetRoom returns the room, or ErrNotFound.
func (db *DB) GetRoom(ctx context.Context, id string) (chat.Room, error) {
	var r chat.Room
	err := db.pool.QueryRow(ctx,
		`SELECT id, name, visibility, owner, created_at FROM rooms WHERE id = $1`, id).
		Scan(&r.ID, &r.Name, &r.Visibility, &r.Owner, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Room{}, notFound("get room", id)
	}
	if err != nil {
		return chat.Room{}, fmt.Errorf("postgres: get room %s: %w", id, err)
	}
	r.CreatedAt = r.CreatedAt.UTC()
	return r, nil
}

// PutMember adds a member or changes an existing member's role, keeping the
// read marker and join time.
func (db *DB) PutMember(ctx context.Context, roomID, userID string, role chat.Role) error {
	if err := record.Role(role); err != nil {
		return fmt.Errorf("postgres: put member: %w", err)
	}
	if err := record.ID("user", userID); err != nil {
		return fmt.Errorf("postgres: put member: %w", err)
	}
	_, err := db.pool.Exec(ctx,
		`INSERT INTO room_members (room_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (room_id, user_id) DO UPDATE SET role = excluded.role`,
		roomID, userID, string(role), record.Now())
	if err != nil {
		return fmt.Errorf("postgres: put member %s in room %s: %w", userID, roomID, classify(err))
	}
	return nil
}

// RemoveMember removes a member, or returns ErrNotFound.
func (db *DB) RemoveMember(ctx context.Context, roomID, userID string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM room_members WHERE room_id = $1 AND user_id = $2`, roomID, userID)
	if err != nil {
		return fmt.Errorf("postgres: remove member %s from room %s: %w", userID, roomID, err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("remove member of room "+roomID, userID)
	}
	return nil
}

const memberCols = `room_id, user_id, role, last_read_id, joined_at`

func scanMember(row pgx.Row) (chat.Member, error) {
	var m chat.Member
	if err := row.Scan(&m.RoomID, &m.UserID, &m.Role, &m.LastReadID, &m.JoinedAt); err != nil {
		return chat.Member{}, err
	}
	m.JoinedAt = m.JoinedAt.UTC()
	return m, nil
}

// GetMember returns the membership, or ErrNotFound.
func (db *DB) GetMember(ctx context.Context, roomID, userID string) (chat.Member, error) {
	m, err := scanMember(db.pool.QueryRow(ctx,
		`SELECT `+memberCols+` FROM room_members WHERE room_id = $1 AND user_id = $2`, roomID, userID))
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Member{}, notFound("get member of room "+roomID, userID)
	}
	if err != nil {
		return chat.Member{}, fmt.Errorf("postgres: get member %s of room %s: %w", userID, roomID, err)
	}
	return m, nil
}

// Members lists a room's members in join order; a missing room has none.
func (db *DB) Members(ctx context.Context, roomID string) ([]chat.Member, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT `+memberCols+` FROM room_members WHERE room_id = $1 ORDER BY joined_at, seq`, roomID)
	if err != nil {
		return nil, fmt.Errorf("postgres: members of room %s: %w", roomID, err)
	}
	ms, err := collect(rows, scanMember)
	if err != nil {
		return nil, fmt.Errorf("postgres: members of room %s: %w", roomID, err)
	}
	return ms, nil
}

// UserRooms lists the user's rooms, newest activity first. A room's activity
// is its newest message that is not deleted, or its creation when it has
// none.
func (db *DB) UserRooms(ctx context.Context, userID string) ([]chat.RoomSummary, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT r.id, r.name, r.visibility, r.owner, r.created_at, m.role,
		       (SELECT count(*) FROM messages u
		         WHERE u.channel = 'room:' || r.id AND u.id > m.last_read_id
		           AND u.deleted_at IS NULL AND u.author <> m.user_id),
		       l.id, l.channel, l.author, l.body, l.idem_key, l.created_at, l.edited_at,
		       l.stream_epoch, l.stream_offset
		  FROM room_members m
		  JOIN rooms r ON r.id = m.room_id
		  LEFT JOIN LATERAL (
		       SELECT * FROM messages x
		        WHERE x.channel = 'room:' || r.id AND x.deleted_at IS NULL
		        ORDER BY x.id DESC LIMIT 1) l ON true
		 WHERE m.user_id = $1
		 ORDER BY GREATEST(l.created_at, r.created_at) DESC, r.id DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: rooms of user %s: %w", userID, err)
	}
	out, err := collect(rows, func(row pgx.Row) (chat.RoomSummary, error) {
		var (
			s                          chat.RoomSummary
			id, channel, author, epoch *string
			idem                       *string
			body                       []byte
			created, edited            *time.Time
			offset                     *int64
		)
		if err := row.Scan(&s.ID, &s.Name, &s.Visibility, &s.Owner, &s.CreatedAt, &s.Role, &s.Unread,
			&id, &channel, &author, &body, &idem, &created, &edited, &epoch, &offset); err != nil {
			return s, err
		}
		s.CreatedAt = s.CreatedAt.UTC()
		if id != nil {
			s.LastMessage = &chat.Message{
				ID: *id, Channel: *channel, Author: *author, Data: body, IdemKey: deref(idem),
				CreatedAt: utc(created), EditedAt: utc(edited), Epoch: *epoch, Offset: uint64(*offset),
			}
		}
		return s, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: rooms of user %s: %w", userID, err)
	}
	return out, nil
}

// SetReadMarker moves the user's read marker on a room or dm channel forward
// to msgID; an older msgID leaves it where it is.
func (db *DB) SetReadMarker(ctx context.Context, channel, userID, msgID string) error {
	roomID, isDM, err := record.ReadChannel(channel)
	if err != nil {
		return fmt.Errorf("postgres: set read marker: %w", err)
	}
	if isDM {
		_, err := db.pool.Exec(ctx,
			`INSERT INTO dm_read_markers (channel, user_id, last_read_id, updated_at) VALUES ($1, $2, $3, $4)
			 ON CONFLICT (channel, user_id) DO UPDATE
			   SET last_read_id = excluded.last_read_id, updated_at = excluded.updated_at
			 WHERE dm_read_markers.last_read_id < excluded.last_read_id`,
			channel, userID, msgID, record.Now())
		if err != nil {
			return fmt.Errorf("postgres: set read marker of %s on %s: %w", userID, channel, err)
		}
		return nil
	}
	tag, err := db.pool.Exec(ctx,
		`UPDATE room_members SET last_read_id = GREATEST(last_read_id, $3) WHERE room_id = $1 AND user_id = $2`,
		roomID, userID, msgID)
	if err != nil {
		return fmt.Errorf("postgres: set read marker of %s on %s: %w", userID, channel, err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("set read marker on "+channel+": member", userID)
	}
	return nil
}

// ReadMarker returns the user's read marker on a room or dm channel, "" when
// none is set. On a room the user must be a member (ErrNotFound otherwise).
func (db *DB) ReadMarker(ctx context.Context, channel, userID string) (string, error) {
	roomID, isDM, err := record.ReadChannel(channel)
	if err != nil {
		return "", fmt.Errorf("postgres: read marker: %w", err)
	}
	if !isDM {
		m, err := db.GetMember(ctx, roomID, userID)
		return m.LastReadID, err
	}
	var id string
	err = db.pool.QueryRow(ctx,
		`SELECT last_read_id FROM dm_read_markers WHERE channel = $1 AND user_id = $2`, channel, userID).Scan(&id)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("postgres: read marker of %s on %s: %w", userID, channel, err)
	}
	return id, nil
}

// collect scans every row with scan into a slice that is never nil.
func collect[T any](rows pgx.Rows, scan func(pgx.Row) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
