package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/store/internal/keyset"
	"github.com/partyline/partyline/store/internal/record"
)

const messageCols = `id, channel, author, body, idem_key, created_at, edited_at, deleted_at, stream_epoch, stream_offset`

func scanMessage(row pgx.Row) (chat.Message, error) {
	var (
		m               chat.Message
		body            []byte
		idem            *string
		edited, deleted *time.Time
		offset          int64
	)
	if err := row.Scan(&m.ID, &m.Channel, &m.Author, &body, &idem, &m.CreatedAt, &edited, &deleted, &m.Epoch, &offset); err != nil {
		return chat.Message{}, err
	}
	m.Data = json.RawMessage(body)
	m.IdemKey = deref(idem)
	m.CreatedAt = m.CreatedAt.UTC()
	m.EditedAt = utc(edited)
	m.DeletedAt = utc(deleted)
	m.Offset = uint64(offset)
	return m, nil
}

// idemIndex is the unique index that holds one live idempotency key per author.
const idemIndex = "messages_author_idem_key_idx"

// InsertMessage stores m, or returns the message an idempotent retry repeats.
// An empty m.ID is filled with a new ULID and a zero CreatedAt with now.
//
// Two retries racing with one key both miss the lookup and both insert; the
// unique index on (author, idem_key) makes the later insert wait for the
// earlier one and then fail, and the loser runs again, now finding the
// winner's message.
func (db *DB) InsertMessage(ctx context.Context, m chat.Message) (chat.Message, bool, error) {
	m, err := record.Message(m)
	if err != nil {
		return chat.Message{}, false, fmt.Errorf("postgres: insert message: %w", err)
	}
	const attempts = 3
	for i := 1; ; i++ {
		stored, created, err := db.insertMessage(ctx, m)
		if err == nil {
			return stored, created, nil
		}
		var retry bool
		if m.IdemKey != "" && i < attempts {
			retry = uniqueViolation(err, idemIndex) || uniqueViolation(err, "messages_pkey")
		}
		if !retry {
			return chat.Message{}, false, fmt.Errorf("postgres: insert message %s: %w", m.ID, classify(err))
		}
	}
}

func (db *DB) insertMessage(ctx context.Context, m chat.Message) (stored chat.Message, created bool, err error) {
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		var idem *string
		if m.IdemKey != "" {
			idem = &m.IdemKey
			prev, err := scanMessage(tx.QueryRow(ctx,
				`SELECT `+messageCols+` FROM messages WHERE author = $1 AND idem_key = $2 FOR UPDATE`,
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
			case !errors.Is(err, pgx.ErrNoRows):
				return err
			}
		}
		var roomID *string
		if id, ok := record.RoomOf(m.Channel); ok {
			roomID = &id
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

// SetMessagePosition records the stream position of a message's publication.
func (db *DB) SetMessagePosition(ctx context.Context, id, epoch string, offset uint64) error {
	tag, err := db.pool.Exec(ctx,
		`UPDATE messages SET stream_epoch = $2, stream_offset = $3 WHERE id = $1`, id, epoch, int64(offset))
	if err != nil {
		return fmt.Errorf("postgres: set position of message %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("set position of message", id)
	}
	return nil
}

// GetMessage returns the message, deleted or not.
func (db *DB) GetMessage(ctx context.Context, id string) (chat.Message, error) {
	m, err := scanMessage(db.pool.QueryRow(ctx, `SELECT `+messageCols+` FROM messages WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Message{}, notFound("get message", id)
	}
	if err != nil {
		return chat.Message{}, fmt.Errorf("postgres: get message %s: %w", id, err)
	}
	return m, nil
}

// EditMessage replaces the data of a message that is not deleted.
func (db *DB) EditMessage(ctx context.Context, id string, data json.RawMessage, at time.Time) (chat.Message, error) {
	if err := record.Data(data); err != nil {
		return chat.Message{}, fmt.Errorf("postgres: edit message %s: %w", id, err)
	}
	m, err := scanMessage(db.pool.QueryRow(ctx,
		`UPDATE messages SET body = $2, edited_at = $3 WHERE id = $1 AND deleted_at IS NULL RETURNING `+messageCols,
		id, string(data), record.TimeOrNow(at)))
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Message{}, notFound("edit message", id)
	}
	if err != nil {
		return chat.Message{}, fmt.Errorf("postgres: edit message %s: %w", id, classify(err))
	}
	return m, nil
}

// DeleteMessage marks a message deleted; its data is kept for moderation.
func (db *DB) DeleteMessage(ctx context.Context, id string, at time.Time) (chat.Message, error) {
	m, err := scanMessage(db.pool.QueryRow(ctx,
		`UPDATE messages SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING `+messageCols,
		id, record.TimeOrNow(at)))
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Message{}, notFound("delete message", id)
	}
	if err != nil {
		return chat.Message{}, fmt.Errorf("postgres: delete message %s: %w", id, err)
	}
	return m, nil
}

// History returns up to limit messages of the channel below before, newest
// first, leaving deleted ones out. limit is clamped to [1, 200].
func (db *DB) History(ctx context.Context, channel, before string, limit int) ([]chat.Message, bool, error) {
	limit = keyset.HistoryLimit(limit)
	var (
		rows pgx.Rows
		err  error
	)
	// Two statements rather than "$2 = '' OR id < $2", so both plan as a
	// range scan of the (channel, id) index.
	if before == "" {
		rows, err = db.pool.Query(ctx,
			`SELECT `+messageCols+` FROM messages WHERE channel = $1 AND deleted_at IS NULL
			 ORDER BY id DESC LIMIT $2`, channel, limit+1)
	} else {
		rows, err = db.pool.Query(ctx,
			`SELECT `+messageCols+` FROM messages WHERE channel = $1 AND id < $2 AND deleted_at IS NULL
			 ORDER BY id DESC LIMIT $3`, channel, before, limit+1)
	}
	if err != nil {
		return nil, false, fmt.Errorf("postgres: history of %s: %w", channel, err)
	}
	msgs, err := collect(rows, scanMessage)
	if err != nil {
		return nil, false, fmt.Errorf("postgres: history of %s: %w", channel, err)
	}
	if len(msgs) > limit {
		return msgs[:limit], true, nil
	}
	return msgs, false, nil
}
