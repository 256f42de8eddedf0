package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/store/internal/keyset"
	"github.com/partyline/partyline/store/internal/record"
)

const clipCols = `id, owner, title, game, tags, visibility, status, fail_reason, size_bytes, content_type,
	sha256, duration_ms, width, height, media_key, thumbnail_key, likes, views, comments, created_at, updated_at`

func scanClip(row scanner) (clips.Clip, error) {
	var (
		c                clips.Clip
		tags             string
		created, updated int64
	)
	err := row.Scan(&c.ID, &c.Owner, &c.Title, &c.Game, &tags, &c.Visibility, &c.Status, &c.FailReason,
		&c.SizeBytes, &c.ContentType, &c.SHA256, &c.DurationMS, &c.Width, &c.Height, &c.MediaKey,
		&c.ThumbnailKey, &c.Likes, &c.Views, &c.Comments, &created, &updated)
	if err != nil {
		return clips.Clip{}, err
	}
	if err := json.Unmarshal([]byte(tags), &c.Tags); err != nil {
		return clips.Clip{}, fmt.Errorf("tags of clip %s: %w", c.ID, err)
	}
	c.Tags = record.Tags(c.Tags)
	c.CreatedAt = fromMS(created)
	c.UpdatedAt = fromMS(updated)
	return c, nil
}

// tagsJSON is the stored form of tags: a JSON array, never null.
func tagsJSON(tags []string) string {
	b, err := json.Marshal(record.Tags(tags))
	if err != nil {
		panic(err) // a []string always marshals
	}
	return string(b)
}

// CreateClip stores c with zero counters; the counters in c are ignored. A
// zero CreatedAt is now, and a zero UpdatedAt is CreatedAt.
func (db *DB) CreateClip(ctx context.Context, c clips.Clip) error {
	c, err := record.Clip(c)
	if err != nil {
		return fmt.Errorf("sqlite: create clip: %w", err)
	}
	_, err = db.w.ExecContext(ctx,
		`INSERT INTO clips (id, owner, title, game, tags, visibility, status, fail_reason, size_bytes, content_type,
		   sha256, duration_ms, width, height, media_key, thumbnail_key, created_at, updated_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Owner, c.Title, c.Game, tagsJSON(c.Tags), c.Visibility, c.Status, c.FailReason, c.SizeBytes,
		c.ContentType, c.SHA256, c.DurationMS, c.Width, c.Height, c.MediaKey, c.ThumbnailKey,
		ms(c.CreatedAt), ms(c.UpdatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create clip %s: %w", c.ID, classify(err))
	}
	return nil
}

// GetClip returns the clip, or ErrNotFound.
func (db *DB) GetClip(ctx context.Context, id string) (clips.Clip, error) {
	c, err := scanClip(db.r.QueryRowContext(ctx, `SELECT `+clipCols+` FROM clips WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return clips.Clip{}, notFound("get clip", id)
	}
	if err != nil {
		return clips.Clip{}, fmt.Errorf("sqlite: get clip %s: %w", id, err)
	}
	return c, nil
}

// UpdateClip replaces the mutable fields of c and sets UpdatedAt to
// c.UpdatedAt, or to now when that is zero. Owner, counters and CreatedAt are
// left alone.
func (db *DB) UpdateClip(ctx context.Context, c clips.Clip) error {
	if err := record.ClipFields(c); err != nil {
		return fmt.Errorf("sqlite: update clip: %w", err)
	}
	res, err := db.w.ExecContext(ctx,
		`UPDATE clips SET title = ?, game = ?, tags = ?, visibility = ?, status = ?, fail_reason = ?,
		   size_bytes = ?, content_type = ?, sha256 = ?, duration_ms = ?, width = ?, height = ?,
		   media_key = ?, thumbnail_key = ?, updated_at = ?
		 WHERE id = ?`,
		c.Title, c.Game, tagsJSON(c.Tags), c.Visibility, c.Status, c.FailReason, c.SizeBytes, c.ContentType,
		c.SHA256, c.DurationMS, c.Width, c.Height, c.MediaKey, c.ThumbnailKey, ms(record.TimeOrNow(c.UpdatedAt)),
		c.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update clip %s: %w", c.ID, classify(err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errors.Join(err, notFound("update clip", c.ID))
	}
	return nil
}

// DeleteClip removes the clip; its likes, comments and events go with it
// through ON DELETE CASCADE, in the same statement.
func (db *DB) DeleteClip(ctx context.Context, id string) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM clips WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("sqlite: delete clip %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errors.Join(err, notFound("delete clip", id))
	}
	return nil
}

// UserClips lists the owner's clips newest first.
func (db *DB) UserClips(ctx context.Context, owner, cursor string, limit int) ([]clips.Clip, string, error) {
	limit = keyset.Limit(limit)
	var (
		rows *sql.Rows
		err  error
	)
	if cursor == "" {
		rows, err = db.r.QueryContext(ctx,
			`SELECT `+clipCols+` FROM clips WHERE owner = ? ORDER BY id DESC LIMIT ?`, owner, limit+1)
	} else {
		after, derr := keyset.DecodeID(cursor)
		if derr != nil {
			return nil, "", fmt.Errorf("sqlite: clips of %s: %w", owner, derr)
		}
		rows, err = db.r.QueryContext(ctx,
			`SELECT `+clipCols+` FROM clips WHERE owner = ? AND id < ? ORDER BY id DESC LIMIT ?`,
			owner, after, limit+1)
	}
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: clips of %s: %w", owner, err)
	}
	cs, err := collect(rows, scanClip)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: clips of %s: %w", owner, err)
	}
	cs, next := keyset.Page(cs, limit, func(c clips.Clip) string { return keyset.EncodeID(c.ID) })
	return cs, next, nil
}

// Like records a like and counts it, once per user and clip.
func (db *DB) Like(ctx context.Context, clipID, userID string) (bool, error) {
	var created bool
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO clip_likes (clip_id, user_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
			clipID, userID, ms(record.Now()))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		created = true
		_, err = tx.ExecContext(ctx, `UPDATE clips SET likes = likes + 1 WHERE id = ?`, clipID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: like clip %s by %s: %w", clipID, userID, classify(err))
	}
	return created, nil
}

// Unlike removes a like and uncounts it.
func (db *DB) Unlike(ctx context.Context, clipID, userID string) (bool, error) {
	var removed bool
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM clip_likes WHERE clip_id = ? AND user_id = ?`, clipID, userID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		removed = true
		_, err = tx.ExecContext(ctx, `UPDATE clips SET likes = likes - 1 WHERE id = ?`, clipID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: unlike clip %s by %s: %w", clipID, userID, err)
	}
	return removed, nil
}

// AddComment stores a comment and counts it. c.ID is required; a zero
// CreatedAt is now.
func (db *DB) AddComment(ctx context.Context, c clips.Comment) error {
	if err := record.ID("comment", c.ID); err != nil {
		return fmt.Errorf("sqlite: add comment: %w", err)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO comments (id, clip_id, author, body, created_at) VALUES (?, ?, ?, ?, ?)`,
			c.ID, c.ClipID, c.Author, c.Body, ms(record.TimeOrNow(c.CreatedAt))); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE clips SET comments = comments + 1 WHERE id = ?`, c.ClipID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: add comment %s on clip %s: %w", c.ID, c.ClipID, classify(err))
	}
	return nil
}

func scanComment(row scanner) (clips.Comment, error) {
	var (
		c       clips.Comment
		created int64
	)
	if err := row.Scan(&c.ID, &c.ClipID, &c.Author, &c.Body, &created); err != nil {
		return clips.Comment{}, err
	}
	c.CreatedAt = fromMS(created)
	return c, nil
}

// ClipComments lists a clip's comments oldest first.
func (db *DB) ClipComments(ctx context.Context, clipID, cursor string, limit int) ([]clips.Comment, string, error) {
	limit = keyset.Limit(limit)
	after := ""
	if cursor != "" {
		var err error
		if after, err = keyset.DecodeID(cursor); err != nil {
			return nil, "", fmt.Errorf("sqlite: comments of clip %s: %w", clipID, err)
		}
	}
	// Every id is above "", so one statement serves the first page too.
	rows, err := db.r.QueryContext(ctx,
		`SELECT id, clip_id, author, body, created_at FROM comments WHERE clip_id = ? AND id > ?
		 ORDER BY id LIMIT ?`, clipID, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: comments of clip %s: %w", clipID, err)
	}
	cs, err := collect(rows, scanComment)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: comments of clip %s: %w", clipID, err)
	}
	cs, next := keyset.Page(cs, limit, func(c clips.Comment) string { return keyset.EncodeID(c.ID) })
	return cs, next, nil
}

// RecordEvent stores an engagement event and counts views. A zero At is now.
func (db *DB) RecordEvent(ctx context.Context, e clips.Event) error {
	if err := record.EventKind(e.Kind); err != nil {
		return fmt.Errorf("sqlite: record event: %w", err)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO clip_events (clip_id, user_id, kind, watched_ms, at) VALUES (?, ?, ?, ?, ?)`,
			e.ClipID, e.UserID, e.Kind, e.WatchedMS, ms(record.TimeOrNow(e.At))); err != nil {
			return err
		}
		if e.Kind != clips.EventView {
			return nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE clips SET views = views + 1 WHERE id = ?`, e.ClipID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: record %s event on clip %s: %w", e.Kind, e.ClipID, classify(err))
	}
	return nil
}

// EditClip replaces the clip's title, game, tags and visibility.
func (db *DB) EditClip(ctx context.Context, c clips.Clip) error {
	check := c
	check.Status = clips.StatusReady // only the visibility is the caller's here
	if err := record.ClipFields(check); err != nil {
		return fmt.Errorf("sqlite: edit clip: %w", err)
	}
	res, err := db.w.ExecContext(ctx,
		`UPDATE clips SET title = ?, game = ?, tags = ?, visibility = ?, updated_at = ? WHERE id = ?`,
		c.Title, c.Game, tagsJSON(c.Tags), c.Visibility, ms(record.TimeOrNow(c.UpdatedAt)), c.ID)
	if err != nil {
		return fmt.Errorf("sqlite: edit clip %s: %w", c.ID, classify(err))
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errors.Join(err, notFound("edit clip", c.ID))
	}
	return nil
}

// TransitionClip moves the clip from status from to c.Status with its media
// fields, in one conditional UPDATE.
func (db *DB) TransitionClip(ctx context.Context, c clips.Clip, from string) error {
	check := c
	check.Visibility = clips.Public // only the status is the caller's here
	if err := record.ClipFields(check); err != nil {
		return fmt.Errorf("sqlite: transition clip: %w", err)
	}
	res, err := db.w.ExecContext(ctx,
		`UPDATE clips SET status = ?, fail_reason = ?, size_bytes = ?, content_type = ?, sha256 = ?,
		   duration_ms = ?, width = ?, height = ?, media_key = ?, thumbnail_key = ?, updated_at = ?
		 WHERE id = ? AND status = ?`,
		c.Status, c.FailReason, c.SizeBytes, c.ContentType, c.SHA256, c.DurationMS, c.Width, c.Height,
		c.MediaKey, c.ThumbnailKey, ms(record.TimeOrNow(c.UpdatedAt)), c.ID, from)
	if err != nil {
		return fmt.Errorf("sqlite: transition clip %s: %w", c.ID, classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: transition clip %s: %w", c.ID, err)
	}
	if n == 1 {
		return nil
	}
	var status string
	err = db.w.QueryRowContext(ctx, `SELECT status FROM clips WHERE id = ?`, c.ID).Scan(&status)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return notFound("transition clip", c.ID)
	case err != nil:
		return fmt.Errorf("sqlite: transition clip %s: %w", c.ID, err)
	}
	return fmt.Errorf("sqlite: transition clip %s from %s: it is %s: %w", c.ID, from, status, partyline.ErrConflict)
}

// PublicUserClips lists the owner's public ready clips newest first.
func (db *DB) PublicUserClips(ctx context.Context, owner, cursor string, limit int) ([]clips.Clip, string, error) {
	limit = keyset.Limit(limit)
	before := "\U0010FFFF" // above every id, so one statement serves the first page
	if cursor != "" {
		var err error
		if before, err = keyset.DecodeID(cursor); err != nil {
			return nil, "", fmt.Errorf("sqlite: public clips of %s: %w", owner, err)
		}
	}
	rows, err := db.r.QueryContext(ctx,
		`SELECT `+clipCols+` FROM clips
		 WHERE owner = ? AND visibility = 'public' AND status = 'ready' AND id < ?
		 ORDER BY id DESC LIMIT ?`, owner, before, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: public clips of %s: %w", owner, err)
	}
	cs, err := collect(rows, scanClip)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: public clips of %s: %w", owner, err)
	}
	cs, next := keyset.Page(cs, limit, func(c clips.Clip) string { return keyset.EncodeID(c.ID) })
	return cs, next, nil
}

// ClipsWithStatus returns up to limit clips in the status, oldest first.
func (db *DB) ClipsWithStatus(ctx context.Context, status string, limit int) ([]clips.Clip, error) {
	rows, err := db.r.QueryContext(ctx,
		`SELECT `+clipCols+` FROM clips WHERE status = ? ORDER BY id LIMIT ?`, status, keyset.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: clips with status %s: %w", status, err)
	}
	cs, err := collect(rows, scanClip)
	if err != nil {
		return nil, fmt.Errorf("sqlite: clips with status %s: %w", status, err)
	}
	return cs, nil
}

// GetComment returns the comment, or ErrNotFound.
func (db *DB) GetComment(ctx context.Context, id string) (clips.Comment, error) {
	c, err := scanComment(db.r.QueryRowContext(ctx,
		`SELECT id, clip_id, author, body, created_at FROM comments WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return clips.Comment{}, notFound("get comment", id)
	}
	if err != nil {
		return clips.Comment{}, fmt.Errorf("sqlite: get comment %s: %w", id, err)
	}
	return c, nil
}

// DeleteComment removes the comment and uncounts it in one transaction.
func (db *DB) DeleteComment(ctx context.Context, id string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var clipID string
		err := tx.QueryRowContext(ctx, `DELETE FROM comments WHERE id = ? RETURNING clip_id`, id).Scan(&clipID)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("delete comment", id)
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE clips SET comments = comments - 1 WHERE id = ?`, clipID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete comment %s: %w", id, err)
	}
	return nil
}
