package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/store/internal/keyset"
	"github.com/partyline/partyline/store/internal/record"
)

const clipCols = `id, owner, title, game, tags, visibility, status, fail_reason, size_bytes, content_type,
	sha256, duration_ms, width, height, media_key, thumbnail_key, likes, views, comments, created_at, updated_at`

func scanClip(row pgx.Row) (clips.Clip, error) {
	var c clips.Clip
	err := row.Scan(&c.ID, &c.Owner, &c.Title, &c.Game, &c.Tags, &c.Visibility, &c.Status, &c.FailReason,
		&c.SizeBytes, &c.ContentType, &c.SHA256, &c.DurationMS, &c.Width, &c.Height, &c.MediaKey,
		&c.ThumbnailKey, &c.Likes, &c.Views, &c.Comments, &c.CreatedAt, &c.UpdatedAt)
	if err != nil {
		return clips.Clip{}, err
	}
	c.Tags = record.Tags(c.Tags)
	c.CreatedAt = c.CreatedAt.UTC()
	c.UpdatedAt = c.UpdatedAt.UTC()
	return c, nil
}

// CreateClip stores c with zero counters; the counters in c are ignored. A
// zero CreatedAt is now, and a zero UpdatedAt is CreatedAt.
func (db *DB) CreateClip(ctx context.Context, c clips.Clip) error {
	c, err := record.Clip(c)
	if err != nil {
		return fmt.Errorf("postgres: create clip: %w", err)
	}
	_, err = db.pool.Exec(ctx,
		`INSERT INTO clips (id, owner, title, game, tags, visibility, status, fail_reason, size_bytes, content_type,
		   sha256, duration_ms, width, height, media_key, thumbnail_key, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		c.ID, c.Owner, c.Title, c.Game, c.Tags, c.Visibility, c.Status, c.FailReason, c.SizeBytes, c.ContentType,
		c.SHA256, c.DurationMS, c.Width, c.Height, c.MediaKey, c.ThumbnailKey, c.CreatedAt, c.UpdatedAt)
	if err != nil {
		return fmt.Errorf("postgres: create clip %s: %w", c.ID, classify(err))
	}
	return nil
}

// GetClip returns the clip, or ErrNotFound.
func (db *DB) GetClip(ctx context.Context, id string) (clips.Clip, error) {
	c, err := scanClip(db.pool.QueryRow(ctx, `SELECT `+clipCols+` FROM clips WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return clips.Clip{}, notFound("get clip", id)
	}
	if err != nil {
		return clips.Clip{}, fmt.Errorf("postgres: get clip %s: %w", id, err)
	}
	return c, nil
}

// UpdateClip replaces the mutable fields of c and sets UpdatedAt to
// c.UpdatedAt, or to now when that is zero. Owner, counters and CreatedAt are
// left alone.
func (db *DB) UpdateClip(ctx context.Context, c clips.Clip) error {
	if err := record.ClipFields(c); err != nil {
		return fmt.Errorf("postgres: update clip: %w", err)
	}
	tag, err := db.pool.Exec(ctx,
		`UPDATE clips SET title = $2, game = $3, tags = $4, visibility = $5, status = $6, fail_reason = $7,
		   size_bytes = $8, content_type = $9, sha256 = $10, duration_ms = $11, width = $12, height = $13,
		   media_key = $14, thumbnail_key = $15, updated_at = $16
		 WHERE id = $1`,
		c.ID, c.Title, c.Game, record.Tags(c.Tags), c.Visibility, c.Status, c.FailReason, c.SizeBytes, c.ContentType,
		c.SHA256, c.DurationMS, c.Width, c.Height, c.MediaKey, c.ThumbnailKey, record.TimeOrNow(c.UpdatedAt))
	if err != nil {
		return fmt.Errorf("postgres: update clip %s: %w", c.ID, classify(err))
	}
	if tag.RowsAffected() == 0 {
		return notFound("update clip", c.ID)
	}
	return nil
}

// DeleteClip removes the clip; its likes, comments and events go with it
// through ON DELETE CASCADE, in the same statement.
func (db *DB) DeleteClip(ctx context.Context, id string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM clips WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("postgres: delete clip %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("delete clip", id)
	}
	return nil
}

// UserClips lists the owner's clips newest first.
func (db *DB) UserClips(ctx context.Context, owner, cursor string, limit int) ([]clips.Clip, string, error) {
	limit = keyset.Limit(limit)
	var (
		rows pgx.Rows
		err  error
	)
	if cursor == "" {
		rows, err = db.pool.Query(ctx,
			`SELECT `+clipCols+` FROM clips WHERE owner = $1 ORDER BY id DESC LIMIT $2`, owner, limit+1)
	} else {
		after, derr := keyset.DecodeID(cursor)
		if derr != nil {
			return nil, "", fmt.Errorf("postgres: clips of %s: %w", owner, derr)
		}
		rows, err = db.pool.Query(ctx,
			`SELECT `+clipCols+` FROM clips WHERE owner = $1 AND id < $2 ORDER BY id DESC LIMIT $3`,
			owner, after, limit+1)
	}
	if err != nil {
		return nil, "", fmt.Errorf("postgres: clips of %s: %w", owner, err)
	}
	cs, err := collect(rows, scanClip)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: clips of %s: %w", owner, err)
	}
	cs, next := keyset.Page(cs, limit, func(c clips.Clip) string { return keyset.EncodeID(c.ID) })
	return cs, next, nil
}

// Like records a like and counts it, once per user and clip.
func (db *DB) Like(ctx context.Context, clipID, userID string) (bool, error) {
	var created bool
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx,
			`INSERT INTO clip_likes (clip_id, user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			clipID, userID, record.Now())
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		created = true
		_, err = tx.Exec(ctx, `UPDATE clips SET likes = likes + 1 WHERE id = $1`, clipID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres: like clip %s by %s: %w", clipID, userID, classify(err))
	}
	return created, nil
}

// Unlike removes a like and uncounts it.
func (db *DB) Unlike(ctx context.Context, clipID, userID string) (bool, error) {
	var removed bool
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM clip_likes WHERE clip_id = $1 AND user_id = $2`, clipID, userID)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		removed = true
		_, err = tx.Exec(ctx, `UPDATE clips SET likes = likes - 1 WHERE id = $1`, clipID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres: unlike clip %s by %s: %w", clipID, userID, err)
	}
	return removed, nil
}

// AddComment stores a comment and counts it. c.ID is required; a zero
// CreatedAt is now.
func (db *DB) AddComment(ctx context.Context, c clips.Comment) error {
	if err := record.ID("comment", c.ID); err != nil {
		return fmt.Errorf("postgres: add comment: %w", err)
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx,
			`INSERT INTO comments (id, clip_id, author, body, created_at) VALUES ($1, $2, $3, $4, $5)`,
			c.ID, c.ClipID, c.Author, c.Body, record.TimeOrNow(c.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE clips SET comments = comments + 1 WHERE id = $1`, c.ClipID)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: add comment %s on clip %s: %w", c.ID, c.ClipID, classify(err))
	}
	return nil
}

func scanComment(row pgx.Row) (clips.Comment, error) {
	var c clips.Comment
	if err := row.Scan(&c.ID, &c.ClipID, &c.Author, &c.Body, &c.CreatedAt); err != nil {
		return clips.Comment{}, err
	}
	c.CreatedAt = c.CreatedAt.UTC()
	return c, nil
}

// ClipComments lists a clip's comments oldest first.
func (db *DB) ClipComments(ctx context.Context, clipID, cursor string, limit int) ([]clips.Comment, string, error) {
	limit = keyset.Limit(limit)
	after := ""
	if cursor != "" {
		var err error
		if after, err = keyset.DecodeID(cursor); err != nil {
			return nil, "", fmt.Errorf("postgres: comments of clip %s: %w", clipID, err)
		}
	}
	// Every id is above "", so one statement serves the first page too.
	rows, err := db.pool.Query(ctx,
		`SELECT id, clip_id, author, body, created_at FROM comments WHERE clip_id = $1 AND id > $2
		 ORDER BY id LIMIT $3`, clipID, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: comments of clip %s: %w", clipID, err)
	}
	cs, err := collect(rows, scanComment)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: comments of clip %s: %w", clipID, err)
	}
	cs, next := keyset.Page(cs, limit, func(c clips.Comment) string { return keyset.EncodeID(c.ID) })
	return cs, next, nil
}

// RecordEvent stores an engagement event and counts views. A zero At is now.
func (db *DB) RecordEvent(ctx context.Context, e clips.Event) error {
	if err := record.EventKind(e.Kind); err != nil {
		return fmt.Errorf("postgres: record event: %w", err)
	}
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx,
			`INSERT INTO clip_events (clip_id, user_id, kind, watched_ms, at) VALUES ($1, $2, $3, $4, $5)`,
			e.ClipID, e.UserID, e.Kind, e.WatchedMS, record.TimeOrNow(e.At)); err != nil {
			return err
		}
		if e.Kind != clips.EventView {
			return nil
		}
		_, err := tx.Exec(ctx, `UPDATE clips SET views = views + 1 WHERE id = $1`, e.ClipID)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: record %s event on clip %s: %w", e.Kind, e.ClipID, classify(err))
	}
	return nil
}

// EditClip replaces the clip's title, game, tags and visibility.
func (db *DB) EditClip(ctx context.Context, c clips.Clip) error {
	check := c
	check.Status = clips.StatusReady // only the visibility is the caller's here
	if err := record.ClipFields(check); err != nil {
		return fmt.Errorf("postgres: edit clip: %w", err)
	}
	tag, err := db.pool.Exec(ctx,
		`UPDATE clips SET title = $2, game = $3, tags = $4, visibility = $5, updated_at = $6 WHERE id = $1`,
		c.ID, c.Title, c.Game, record.Tags(c.Tags), c.Visibility, record.TimeOrNow(c.UpdatedAt))
	if err != nil {
		return fmt.Errorf("postgres: edit clip %s: %w", c.ID, classify(err))
	}
	if tag.RowsAffected() == 0 {
		return notFound("edit clip", c.ID)
	}
	return nil
}

// TransitionClip moves the clip from status from to c.Status with its media
// fields, in one conditional UPDATE.
func (db *DB) TransitionClip(ctx context.Context, c clips.Clip, from string) error {
	check := c
	check.Visibility = clips.Public // only the status is the caller's here
	if err := record.ClipFields(check); err != nil {
		return fmt.Errorf("postgres: transition clip: %w", err)
	}
	tag, err := db.pool.Exec(ctx,
		`UPDATE clips SET status = $3, fail_reason = $4, size_bytes = $5, content_type = $6, sha256 = $7,
		   duration_ms = $8, width = $9, height = $10, media_key = $11, thumbnail_key = $12, updated_at = $13
		 WHERE id = $1 AND status = $2`,
		c.ID, from, c.Status, c.FailReason, c.SizeBytes, c.ContentType, c.SHA256, c.DurationMS, c.Width, c.Height,
		c.MediaKey, c.ThumbnailKey, record.TimeOrNow(c.UpdatedAt))
	if err != nil {
		return fmt.Errorf("postgres: transition clip %s: %w", c.ID, classify(err))
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var status string
	err = db.pool.QueryRow(ctx, `SELECT status FROM clips WHERE id = $1`, c.ID).Scan(&status)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return notFound("transition clip", c.ID)
	case err != nil:
		return fmt.Errorf("postgres: transition clip %s: %w", c.ID, err)
	}
	return fmt.Errorf("postgres: transition clip %s from %s: it is %s: %w", c.ID, from, status, partyline.ErrConflict)
}

// PublicUserClips lists the owner's public ready clips newest first.
func (db *DB) PublicUserClips(ctx context.Context, owner, cursor string, limit int) ([]clips.Clip, string, error) {
	limit = keyset.Limit(limit)
	before := "\U0010FFFF" // above every id, so one statement serves the first page
	if cursor != "" {
		var err error
		if before, err = keyset.DecodeID(cursor); err != nil {
			return nil, "", fmt.Errorf("postgres: public clips of %s: %w", owner, err)
		}
	}
	rows, err := db.pool.Query(ctx,
		`SELECT `+clipCols+` FROM clips
		 WHERE owner = $1 AND visibility = 'public' AND status = 'ready' AND id < $2
		 ORDER BY id DESC LIMIT $3`, owner, before, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: public clips of %s: %w", owner, err)
	}
	cs, err := collect(rows, scanClip)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: public clips of %s: %w", owner, err)
	}
	cs, next := keyset.Page(cs, limit, func(c clips.Clip) string { return keyset.EncodeID(c.ID) })
	return cs, next, nil
}

// ClipsWithStatus returns up to limit clips in the status, oldest first.
func (db *DB) ClipsWithStatus(ctx context.Context, status string, limit int) ([]clips.Clip, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT `+clipCols+` FROM clips WHERE status = $1 ORDER BY id LIMIT $2`, status, keyset.Limit(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: clips with status %s: %w", status, err)
	}
	cs, err := collect(rows, scanClip)
	if err != nil {
		return nil, fmt.Errorf("postgres: clips with status %s: %w", status, err)
	}
	return cs, nil
}

// GetComment returns the comment, or ErrNotFound.
func (db *DB) GetComment(ctx context.Context, id string) (clips.Comment, error) {
	c, err := scanComment(db.pool.QueryRow(ctx,
		`SELECT id, clip_id, author, body, created_at FROM comments WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return clips.Comment{}, notFound("get comment", id)
	}
	if err != nil {
		return clips.Comment{}, fmt.Errorf("postgres: get comment %s: %w", id, err)
	}
	return c, nil
}

// DeleteComment removes the comment and uncounts it in one transaction.
func (db *DB) DeleteComment(ctx context.Context, id string) error {
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var clipID string
		err := tx.QueryRow(ctx, `DELETE FROM comments WHERE id = $1 RETURNING clip_id`, id).Scan(&clipID)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound("delete comment", id)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE clips SET comments = comments - 1 WHERE id = $1`, clipID)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: delete comment %s: %w", id, err)
	}
	return nil
}
