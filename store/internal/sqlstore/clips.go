package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/store/internal/keyset"
	"github.com/partyline/partyline/store/internal/record"
)

// ClipCols are the columns ScanClip reads, in its order.
const ClipCols = `id, owner, title, game, tags, visibility, status, fail_reason, size_bytes, content_type,
	sha256, duration_ms, width, height, media_key, thumbnail_key, likes, views, comments, created_at, updated_at`

// Listable is the condition on the clips table (aliased c) of a clip that
// may appear in a feed. It repeats the partial indexes' condition word for
// word, which is what lets SQLite use them.
const Listable = `c.visibility = 'public' AND c.status = 'ready'`

// Completed is the condition on an event e of clip c that counts as a
// completed view: 90% of a clip of known length, or 10 s of one of unknown
// length.
const Completed = `((c.duration_ms > 0 AND e.watched_ms * 10 >= c.duration_ms * 9) OR (c.duration_ms = 0 AND e.watched_ms >= 10000))`

// ScanClip reads the ClipCols of a row.
func ScanClip(row Row) (clips.Clip, error) {
	var c clips.Clip
	err := row.Scan(&c.ID, &c.Owner, &c.Title, &c.Game, &c.Tags, &c.Visibility, &c.Status, &c.FailReason,
		&c.SizeBytes, &c.ContentType, &c.SHA256, &c.DurationMS, &c.Width, &c.Height, &c.MediaKey,
		&c.ThumbnailKey, &c.Likes, &c.Views, &c.Comments, &c.CreatedAt, &c.UpdatedAt)
	if err != nil {
		return clips.Clip{}, err
	}
	c.Tags = record.Tags(c.Tags)
	return c, nil
}

// aboveEveryID sorts after every id, as "" sorts before every id.
const aboveEveryID = "\U0010FFFF"

// cursorOr returns the id in a cursor made by keyset.EncodeID, or bound for
// no cursor: a bound below or above every id, so that one statement serves
// the first page too.
func cursorOr(cursor, bound string) (string, error) {
	if cursor == "" {
		return bound, nil
	}
	return keyset.DecodeID(cursor)
}

// clipCursor is the cursor after c in a listing by id.
func clipCursor(c clips.Clip) string { return keyset.EncodeID(c.ID) }

// CreateClip stores c with zero counters; the counters in c are ignored. A
// zero CreatedAt is now, and a zero UpdatedAt is CreatedAt.
func (s *Store) CreateClip(ctx context.Context, c clips.Clip) error {
	c, err := record.Clip(c)
	if err != nil {
		return s.errorf("create clip: %w", err)
	}
	_, err = s.w.Exec(ctx,
		`INSERT INTO clips (id, owner, title, game, tags, visibility, status, fail_reason, size_bytes, content_type,
		   sha256, duration_ms, width, height, media_key, thumbnail_key, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		c.ID, c.Owner, c.Title, c.Game, c.Tags, c.Visibility, c.Status, c.FailReason, c.SizeBytes, c.ContentType,
		c.SHA256, c.DurationMS, c.Width, c.Height, c.MediaKey, c.ThumbnailKey, c.CreatedAt, c.UpdatedAt)
	if err != nil {
		return s.errorf("create clip %s: %w", c.ID, s.opts.Classify(err))
	}
	return nil
}

// GetClip returns the clip, or ErrNotFound.
func (s *Store) GetClip(ctx context.Context, id string) (clips.Clip, error) {
	c, err := ScanClip(s.r.QueryRow(ctx, `SELECT `+ClipCols+` FROM clips WHERE id = $1`, id))
	return found(s, c, err, "get clip", id)
}

// UpdateClip replaces the mutable fields of c and sets UpdatedAt to
// c.UpdatedAt, or to now when that is zero. Owner, counters and CreatedAt are
// left alone.
func (s *Store) UpdateClip(ctx context.Context, c clips.Clip) error {
	if err := record.ClipFields(c); err != nil {
		return s.errorf("update clip: %w", err)
	}
	n, err := s.w.Exec(ctx,
		`UPDATE clips SET title = $2, game = $3, tags = $4, visibility = $5, status = $6, fail_reason = $7,
		   size_bytes = $8, content_type = $9, sha256 = $10, duration_ms = $11, width = $12, height = $13,
		   media_key = $14, thumbnail_key = $15, updated_at = $16
		 WHERE id = $1`,
		c.ID, c.Title, c.Game, record.Tags(c.Tags), c.Visibility, c.Status, c.FailReason, c.SizeBytes, c.ContentType,
		c.SHA256, c.DurationMS, c.Width, c.Height, c.MediaKey, c.ThumbnailKey, record.TimeOrNow(c.UpdatedAt))
	return s.affected(n, s.opts.Classify(err), "update clip", c.ID)
}

// DeleteClip removes the clip; its likes, comments and events go with it
// through ON DELETE CASCADE, in the same statement.
func (s *Store) DeleteClip(ctx context.Context, id string) error {
	n, err := s.w.Exec(ctx, `DELETE FROM clips WHERE id = $1`, id)
	return s.affected(n, err, "delete clip", id)
}

// UserClips lists the owner's clips newest first.
func (s *Store) UserClips(ctx context.Context, owner, cursor string, limit int) ([]clips.Clip, string, error) {
	limit = keyset.Limit(limit)
	before, err := cursorOr(cursor, aboveEveryID)
	if err != nil {
		return nil, "", s.errorf("clips of %s: %w", owner, err)
	}
	cs, err := List(ctx, s.r, ScanClip,
		`SELECT `+ClipCols+` FROM clips WHERE owner = $1 AND id < $2 ORDER BY id DESC LIMIT $3`,
		owner, before, limit+1)
	if err != nil {
		return nil, "", s.errorf("clips of %s: %w", owner, err)
	}
	cs, next := keyset.Page(cs, limit, clipCursor)
	return cs, next, nil
}

// countIf runs insert, and when it changed a row, count, both with args
// and in one transaction. It reports whether insert changed a row.
func (s *Store) countIf(ctx context.Context, insert, count string, args ...any) (bool, error) {
	var changed bool
	err := s.opts.InTx(ctx, func(tx Conn) error {
		n, err := tx.Exec(ctx, insert, args...)
		if err != nil || n == 0 {
			return err
		}
		changed = true
		_, err = tx.Exec(ctx, count, args[0])
		return err
	})
	return changed, err
}

// Like records a like and counts it, once per user and clip.
func (s *Store) Like(ctx context.Context, clipID, userID string) (bool, error) {
	created, err := s.countIf(ctx,
		`INSERT INTO clip_likes (clip_id, user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		`UPDATE clips SET likes = likes + 1 WHERE id = $1`,
		clipID, userID, record.Now())
	if err != nil {
		return false, s.errorf("like clip %s by %s: %w", clipID, userID, s.opts.Classify(err))
	}
	return created, nil
}

// Unlike removes a like and uncounts it.
func (s *Store) Unlike(ctx context.Context, clipID, userID string) (bool, error) {
	removed, err := s.countIf(ctx,
		`DELETE FROM clip_likes WHERE clip_id = $1 AND user_id = $2`,
		`UPDATE clips SET likes = likes - 1 WHERE id = $1`,
		clipID, userID)
	if err != nil {
		return false, s.errorf("unlike clip %s by %s: %w", clipID, userID, err)
	}
	return removed, nil
}

// AddComment stores a comment and counts it. c.ID is required; a zero
// CreatedAt is now.
func (s *Store) AddComment(ctx context.Context, c clips.Comment) error {
	if err := record.ID("comment", c.ID); err != nil {
		return s.errorf("add comment: %w", err)
	}
	err := s.opts.InTx(ctx, func(tx Conn) error {
		if _, err := tx.Exec(ctx,
			`INSERT INTO comments (id, clip_id, author, body, created_at) VALUES ($1, $2, $3, $4, $5)`,
			c.ID, c.ClipID, c.Author, c.Body, record.TimeOrNow(c.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE clips SET comments = comments + 1 WHERE id = $1`, c.ClipID)
		return err
	})
	if err != nil {
		return s.errorf("add comment %s on clip %s: %w", c.ID, c.ClipID, s.opts.Classify(err))
	}
	return nil
}

const commentCols = `id, clip_id, author, body, created_at`

func scanComment(row Row) (clips.Comment, error) {
	var c clips.Comment
	err := row.Scan(&c.ID, &c.ClipID, &c.Author, &c.Body, &c.CreatedAt)
	return c, err
}

// ClipComments lists a clip's comments oldest first.
func (s *Store) ClipComments(ctx context.Context, clipID, cursor string, limit int) ([]clips.Comment, string, error) {
	limit = keyset.Limit(limit)
	after, err := cursorOr(cursor, "")
	if err != nil {
		return nil, "", s.errorf("comments of clip %s: %w", clipID, err)
	}
	cs, err := List(ctx, s.r, scanComment,
		`SELECT `+commentCols+` FROM comments WHERE clip_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
		clipID, after, limit+1)
	if err != nil {
		return nil, "", s.errorf("comments of clip %s: %w", clipID, err)
	}
	cs, next := keyset.Page(cs, limit, func(c clips.Comment) string { return keyset.EncodeID(c.ID) })
	return cs, next, nil
}

// RecordEvent stores an engagement event and counts views. A zero At is now.
func (s *Store) RecordEvent(ctx context.Context, e clips.Event) error {
	if err := record.EventKind(e.Kind); err != nil {
		return s.errorf("record event: %w", err)
	}
	err := s.opts.InTx(ctx, func(tx Conn) error {
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
		return s.errorf("record %s event on clip %s: %w", e.Kind, e.ClipID, s.opts.Classify(err))
	}
	return nil
}

// EditClip replaces the clip's title, game, tags and visibility.
func (s *Store) EditClip(ctx context.Context, c clips.Clip) error {
	check := c
	check.Status = clips.StatusReady // only the visibility is the caller's here
	if err := record.ClipFields(check); err != nil {
		return s.errorf("edit clip: %w", err)
	}
	n, err := s.w.Exec(ctx,
		`UPDATE clips SET title = $2, game = $3, tags = $4, visibility = $5, updated_at = $6 WHERE id = $1`,
		c.ID, c.Title, c.Game, record.Tags(c.Tags), c.Visibility, record.TimeOrNow(c.UpdatedAt))
	return s.affected(n, s.opts.Classify(err), "edit clip", c.ID)
}

// TransitionClip moves the clip from status from to c.Status with its media
// fields, in one conditional UPDATE.
func (s *Store) TransitionClip(ctx context.Context, c clips.Clip, from string) error {
	check := c
	check.Visibility = clips.Public // only the status is the caller's here
	if err := record.ClipFields(check); err != nil {
		return s.errorf("transition clip: %w", err)
	}
	n, err := s.w.Exec(ctx,
		`UPDATE clips SET status = $3, fail_reason = $4, size_bytes = $5, content_type = $6, sha256 = $7,
		   duration_ms = $8, width = $9, height = $10, media_key = $11, thumbnail_key = $12, updated_at = $13
		 WHERE id = $1 AND status = $2`,
		c.ID, from, c.Status, c.FailReason, c.SizeBytes, c.ContentType, c.SHA256, c.DurationMS, c.Width, c.Height,
		c.MediaKey, c.ThumbnailKey, record.TimeOrNow(c.UpdatedAt))
	if err != nil {
		return s.errorf("transition clip %s: %w", c.ID, s.opts.Classify(err))
	}
	if n == 1 {
		return nil
	}
	var status string
	err = s.w.QueryRow(ctx, `SELECT status FROM clips WHERE id = $1`, c.ID).Scan(&status)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return s.notFound("transition clip", c.ID)
	case err != nil:
		return s.errorf("transition clip %s: %w", c.ID, err)
	}
	return s.errorf("transition clip %s from %s: it is %s: %w", c.ID, from, status, partyline.ErrConflict)
}

// PublicUserClips lists the owner's public ready clips newest first.
func (s *Store) PublicUserClips(ctx context.Context, owner, cursor string, limit int) ([]clips.Clip, string, error) {
	limit = keyset.Limit(limit)
	before, err := cursorOr(cursor, aboveEveryID)
	if err != nil {
		return nil, "", s.errorf("public clips of %s: %w", owner, err)
	}
	cs, err := List(ctx, s.r, ScanClip,
		`SELECT `+ClipCols+` FROM clips
		 WHERE owner = $1 AND visibility = 'public' AND status = 'ready' AND id < $2
		 ORDER BY id DESC LIMIT $3`, owner, before, limit+1)
	if err != nil {
		return nil, "", s.errorf("public clips of %s: %w", owner, err)
	}
	cs, next := keyset.Page(cs, limit, clipCursor)
	return cs, next, nil
}

// ClipsWithStatus returns up to limit clips in the status, oldest first.
func (s *Store) ClipsWithStatus(ctx context.Context, status string, limit int) ([]clips.Clip, error) {
	cs, err := List(ctx, s.r, ScanClip,
		`SELECT `+ClipCols+` FROM clips WHERE status = $1 ORDER BY id LIMIT $2`, status, keyset.Limit(limit))
	if err != nil {
		return nil, s.errorf("clips with status %s: %w", status, err)
	}
	return cs, nil
}

// GetComment returns the comment, or ErrNotFound.
func (s *Store) GetComment(ctx context.Context, id string) (clips.Comment, error) {
	c, err := scanComment(s.r.QueryRow(ctx, `SELECT `+commentCols+` FROM comments WHERE id = $1`, id))
	return found(s, c, err, "get comment", id)
}

// DeleteComment removes the comment and uncounts it in one transaction.
func (s *Store) DeleteComment(ctx context.Context, id string) error {
	err := s.opts.InTx(ctx, func(tx Conn) error {
		var clipID string
		err := tx.QueryRow(ctx, `DELETE FROM comments WHERE id = $1 RETURNING clip_id`, id).Scan(&clipID)
		if errors.Is(err, sql.ErrNoRows) {
			return s.notFound("delete comment", id)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE clips SET comments = comments - 1 WHERE id = $1`, clipID)
		return err
	})
	if err != nil {
		return s.errorf("delete comment %s: %w", id, err)
	}
	return nil
}
