package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/store/internal/keyset"
	"github.com/partyline/partyline/store/internal/record"
)

const messageCols = `id, channel, author, body, idem_key, created_at, edited_at, deleted_at, stream_epoch, stream_offset`

func scanMessage(row Row) (chat.Message, error) {
	var (
		m      chat.Message
		body   []byte
		idem   sql.NullString
		offset int64
	)
	err := row.Scan(&m.ID, &m.Channel, &m.Author, &body, &idem, &m.CreatedAt, &m.EditedAt, &m.DeletedAt,
		&m.Epoch, &offset)
	if err != nil {
		return chat.Message{}, err
	}
	m.Data = json.RawMessage(body)
	m.IdemKey = idem.String
	m.Offset = uint64(offset)
	return m, nil
}

// InsertMessage stores m, or returns the message an idempotent retry repeats.
// An empty m.ID is filled with a new ULID and a zero CreatedAt with now.
// Racing retries with one key store one message: see Options.RetryInsert.
func (s *Store) InsertMessage(ctx context.Context, m chat.Message) (chat.Message, bool, error) {
	m, err := record.Message(m)
	if err != nil {
		return chat.Message{}, false, s.errorf("insert message: %w", err)
	}
	const attempts = 3
	for i := 1; ; i++ {
		stored, created, err := s.insertMessage(ctx, m)
		if err == nil {
			return stored, created, nil
		}
		retry := m.IdemKey != "" && i < attempts && s.opts.RetryInsert != nil && s.opts.RetryInsert(err)
		if !retry {
			return chat.Message{}, false, s.errorf("insert message %s: %w", m.ID, s.opts.Classify(err))
		}
	}
}

func (s *Store) insertMessage(ctx context.Context, m chat.Message) (stored chat.Message, created bool, err error) {
	err = s.opts.InTx(ctx, func(tx Conn) error {
		var idem any
		if m.IdemKey != "" {
			idem = m.IdemKey
			prev, err := scanMessage(tx.QueryRow(ctx,
				`SELECT `+messageCols+` FROM messages WHERE author = $1 AND idem_key = $2`+s.opts.SQL.RowLock,
				m.Author, m.IdemKey))
			switch {
			case err == nil && m.CreatedAt.Sub(prev.CreatedAt) < chat.IdemWindow:
				stored = prev
				return nil
			case err == nil:
				// The earlier use is outside the window: forget it.
				if _, err := tx.Exec(ctx, `UPDATE messages SET idem_key = NULL WHERE id = $1`, prev.ID); err != nil {
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
		_, err := tx.Exec(ctx,
			`INSERT INTO messages (id, channel, room_id, author, body, idem_key, created_at, edited_at, deleted_at, stream_epoch, stream_offset)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			m.ID, m.Channel, roomID, m.Author, string(m.Data), idem, m.CreatedAt,
			nullTime(m.EditedAt), nullTime(m.DeletedAt), m.Epoch, int64(m.Offset))
		if err != nil {
			return err
		}
		stored, created = m, true
		return nil
	})
	return stored, created, err
}

// nullTime is t cut to milliseconds, or nil, stored as NULL, for the zero
// time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return record.Time(t)
}

// SetMessagePosition records the stream position of a message's publication.
func (s *Store) SetMessagePosition(ctx context.Context, id, epoch string, offset uint64) error {
	n, err := s.w.Exec(ctx,
		`UPDATE messages SET stream_epoch = $2, stream_offset = $3 WHERE id = $1`, id, epoch, int64(offset))
	return s.affected(n, err, "set position of message", id)
}

// GetMessage returns the message, deleted or not.
func (s *Store) GetMessage(ctx context.Context, id string) (chat.Message, error) {
	m, err := scanMessage(s.r.QueryRow(ctx, `SELECT `+messageCols+` FROM messages WHERE id = $1`, id))
	return found(s, m, err, "get message", id)
}

// EditMessage replaces the data of a message that is not deleted.
func (s *Store) EditMessage(ctx context.Context, id string, data json.RawMessage, at time.Time) (chat.Message, error) {
	if err := record.Data(data); err != nil {
		return chat.Message{}, s.errorf("edit message %s: %w", id, err)
	}
	m, err := scanMessage(s.w.QueryRow(ctx,
		`UPDATE messages SET body = $2, edited_at = $3 WHERE id = $1 AND deleted_at IS NULL RETURNING `+messageCols,
		id, string(data), record.TimeOrNow(at)))
	return found(s, m, s.opts.Classify(err), "edit message", id)
}

// DeleteMessage marks a message deleted; its data is kept for moderation.
func (s *Store) DeleteMessage(ctx context.Context, id string, at time.Time) (chat.Message, error) {
	m, err := scanMessage(s.w.QueryRow(ctx,
		`UPDATE messages SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING `+messageCols,
		id, record.TimeOrNow(at)))
	return found(s, m, err, "delete message", id)
}

// History returns up to limit messages of the channel below before, newest
// first, leaving deleted ones out. limit is clamped to [1, 200].
func (s *Store) History(ctx context.Context, channel, before string, limit int) ([]chat.Message, bool, error) {
	limit = keyset.HistoryLimit(limit)
	var (
		msgs []chat.Message
		err  error
	)
	// Two statements rather than "$2 = '' OR id < $2", so both plan as a
	// range scan of the (channel, id) index.
	if before == "" {
		msgs, err = List(ctx, s.r, scanMessage,
			`SELECT `+messageCols+` FROM messages WHERE channel = $1 AND deleted_at IS NULL
			 ORDER BY id DESC LIMIT $2`, channel, limit+1)
	} else {
		msgs, err = List(ctx, s.r, scanMessage,
			`SELECT `+messageCols+` FROM messages WHERE channel = $1 AND id < $2 AND deleted_at IS NULL
			 ORDER BY id DESC LIMIT $3`, channel, before, limit+1)
	}
	if err != nil {
		return nil, false, s.errorf("history of %s: %w", channel, err)
	}
	if len(msgs) > limit {
		return msgs[:limit], true, nil
	}
	return msgs, false, nil
}
