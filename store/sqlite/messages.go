package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/store/internal/keyset"
	"github.com/partyline/partyline/store/internal/record"
)

const messageCols = `id, channel, author, body, idem_key, created_at, edited_at, deleted_at, stream_epoch, stream_offset`

func scanMessage(row scanner) (chat.Message, error) {
	var (
		m               chat.Message
		body            string
		idem            sql.NullString
		created         int64
		edited, deleted sql.NullInt64
		offset          int64
	)
	if err := row.Scan(&m.ID, &m.Channel, &m.Author, &body, &idem, &created, &edited, &deleted, &m.Epoch, &offset); err != nil {
		return chat.Message{}, err
	}
	m.Data = json.RawMessage(body)
	m.IdemKey = idem.String
	m.CreatedAt = fromMS(created)
	m.EditedAt = fromNullMS(edited)
	m.DeletedAt = fromNullMS(deleted)
	m.Offset = uint64(offset)
	return m, nil
}

// InsertMessage stores m, or returns the message an idempotent retry repeats.
// An empty m.ID is filled with a new ULID and a zero CreatedAt with now. The
// lookup and the insert share one IMMEDIATE transaction on the single
// writer, so racing retries with one key are serialized and only the first
// inserts.
func (db *DB) InsertMessage(ctx context.Context, m chat.Message) (chat.Message, bool, error) {
	m, err := record.Message(m)
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("sqlite: insert message: %w", err)
	}
	var (
		stored  chat.Message
		created bool
	)
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		var idem any
		if m.IdemKey != "" {
			idem = m.IdemKey
			prev, err := scanMessage(tx.QueryRowContext(ctx,
				`SELECT `+messageCols+` FROM messages WHERE author = ? AND idem_key = ?`, m.Author, m.IdemKey))
			switch {
			case err == nil && m.CreatedAt.Sub(prev.CreatedAt) < chat.IdemWindow:
				stored = prev
				return nil
			case err == nil:
				// The earlier use is outside the window: forget it.
				if _, err := tx.ExecContext(ctx, `UPDATE messages SET idem_key = NULL WHERE id = ?`, prev.ID); err != nil {
					return err
				}
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		var roomID any
		if id, ok := record.RoomOf(m.Channel); ok {
			roomID = id
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO messages (id, channel, room_id, author, body, idem_key, created_at, edited_at, deleted_at, stream_epoch, stream_offset)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			m.ID, m.Channel, roomID, m.Author, string(m.Data), idem, ms(m.CreatedAt),
			nullMS(m.EditedAt), nullMS(m.DeletedAt), m.Epoch, int64(m.Offset))
		if err != nil {
			return err
		}
		stored, created = m, true
		return nil
	})
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("sqlite: insert message %s: %w", m.ID, classify(err))
	}
	return stored, created, nil
}

// SetMessagePosition records the stream position of a message's publication.
func (db *DB) SetMessagePosition(ctx context.Context, id, epoch string, offset uint64) error {
	res, err := db.w.ExecContext(ctx,
		`UPDATE messages SET stream_epoch = ?, stream_offset = ? WHERE id = ?`, epoch, int64(offset), id)
	if err != nil {
		return fmt.Errorf("sqlite: set position of message %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errors.Join(err, notFound("set position of message", id))
	}
	return nil
}

// GetMessage returns the message, deleted or not.
func (db *DB) GetMessage(ctx context.Context, id string) (chat.Message, error) {
	m, err := scanMessage(db.r.QueryRowContext(ctx, `SELECT `+messageCols+` FROM messages WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Message{}, notFound("get message", id)
	}
	if err != nil {
		return chat.Message{}, fmt.Errorf("sqlite: get message %s: %w", id, err)
	}
	return m, nil
}

// EditMessage replaces the data of a message that is not deleted.
func (db *DB) EditMessage(ctx context.Context, id string, data json.RawMessage, at time.Time) (chat.Message, error) {
	if err := record.Data(data); err != nil {
		return chat.Message{}, fmt.Errorf("sqlite: edit message %s: %w", id, err)
	}
	m, err := scanMessage(db.w.QueryRowContext(ctx,
		`UPDATE messages SET body = ?, edited_at = ? WHERE id = ? AND deleted_at IS NULL RETURNING `+messageCols,
		string(data), ms(record.TimeOrNow(at)), id))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Message{}, notFound("edit message", id)
	}
	if err != nil {
		return chat.Message{}, fmt.Errorf("sqlite: edit message %s: %w", id, classify(err))
	}
	return m, nil
}

// DeleteMessage marks a message deleted; its data is kept for moderation.
func (db *DB) DeleteMessage(ctx context.Context, id string, at time.Time) (chat.Message, error) {
	m, err := scanMessage(db.w.QueryRowContext(ctx,
		`UPDATE messages SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL RETURNING `+messageCols,
		ms(record.TimeOrNow(at)), id))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Message{}, notFound("delete message", id)
	}
	if err != nil {
		return chat.Message{}, fmt.Errorf("sqlite: delete message %s: %w", id, err)
	}
	return m, nil
}

// History returns up to limit messages of the channel below before, newest
// first, leaving deleted ones out. limit is clamped to [1, 200].
func (db *DB) History(ctx context.Context, channel, before string, limit int) ([]chat.Message, bool, error) {
	limit = keyset.HistoryLimit(limit)
	var (
		rows *sql.Rows
		err  error
	)
	if before == "" {
		rows, err = db.r.QueryContext(ctx,
			`SELECT `+messageCols+` FROM messages WHERE channel = ? AND deleted_at IS NULL
			 ORDER BY id DESC LIMIT ?`, channel, limit+1)
	} else {
		rows, err = db.r.QueryContext(ctx,
			`SELECT `+messageCols+` FROM messages WHERE channel = ? AND id < ? AND deleted_at IS NULL
			 ORDER BY id DESC LIMIT ?`, channel, before, limit+1)
	}
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: history of %s: %w", channel, err)
	}
	msgs, err := collect(rows, scanMessage)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: history of %s: %w", channel, err)
	}
	if len(msgs) > limit {
		return msgs[:limit], true, nil
	}
	return msgs, false, nil
}
