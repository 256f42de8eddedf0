package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/store/internal/keyset"
	"github.com/partyline/partyline/store/internal/record"
)

// Follow makes follower follow followee, once.
func (db *DB) Follow(ctx context.Context, follower, followee string) (bool, error) {
	if follower == followee {
		return false, fmt.Errorf("sqlite: follow: %s cannot follow themselves: %w", follower, partyline.ErrInvalid)
	}
	res, err := db.w.ExecContext(ctx,
		`INSERT INTO follows (follower, followee, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		follower, followee, ms(record.Now()))
	if err != nil {
		return false, fmt.Errorf("sqlite: %s follow %s: %w", follower, followee, classify(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: %s follow %s: %w", follower, followee, err)
	}
	return n == 1, nil
}

// Unfollow removes the edge.
func (db *DB) Unfollow(ctx context.Context, follower, followee string) (bool, error) {
	res, err := db.w.ExecContext(ctx, `DELETE FROM follows WHERE follower = ? AND followee = ?`, follower, followee)
	if err != nil {
		return false, fmt.Errorf("sqlite: %s unfollow %s: %w", follower, followee, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: %s unfollow %s: %w", follower, followee, err)
	}
	return n == 1, nil
}

// Followers lists who follows user, newest edge first.
func (db *DB) Followers(ctx context.Context, user, cursor string, limit int) ([]feed.Follow, string, error) {
	fs, next, err := db.follows(ctx, "followee", "follower", user, cursor, limit)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: followers of %s: %w", user, err)
	}
	return fs, next, nil
}

// Following lists whom user follows, newest edge first.
func (db *DB) Following(ctx context.Context, user, cursor string, limit int) ([]feed.Follow, string, error) {
	fs, next, err := db.follows(ctx, "follower", "followee", user, cursor, limit)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: following of %s: %w", user, err)
	}
	return fs, next, nil
}

// follows pages the edges whose column self is user, ordered by (created_at,
// other) descending. self and other are column names, never input.
func (db *DB) follows(ctx context.Context, self, other, user, cursor string, limit int) ([]feed.Follow, string, error) {
	limit = keyset.Limit(limit)
	var (
		rows *sql.Rows
		err  error
	)
	const cols = `follower, followee, created_at`
	if cursor == "" {
		rows, err = db.r.QueryContext(ctx,
			`SELECT `+cols+` FROM follows WHERE `+self+` = ?
			 ORDER BY created_at DESC, `+other+` DESC LIMIT ?`, user, limit+1)
	} else {
		at, id, derr := keyset.DecodeTimeID(cursor)
		if derr != nil {
			return nil, "", derr
		}
		rows, err = db.r.QueryContext(ctx,
			`SELECT `+cols+` FROM follows WHERE `+self+` = ? AND (created_at, `+other+`) < (?, ?)
			 ORDER BY created_at DESC, `+other+` DESC LIMIT ?`, user, ms(at), id, limit+1)
	}
	if err != nil {
		return nil, "", err
	}
	fs, err := collect(rows, func(row scanner) (feed.Follow, error) {
		var (
			f       feed.Follow
			created int64
		)
		err := row.Scan(&f.Follower, &f.Followee, &created)
		f.CreatedAt = fromMS(created)
		return f, err
	})
	if err != nil {
		return nil, "", err
	}
	fs, next := keyset.Page(fs, limit, func(f feed.Follow) string {
		if self == "followee" {
			return keyset.EncodeTimeID(f.CreatedAt, f.Follower)
		}
		return keyset.EncodeTimeID(f.CreatedAt, f.Followee)
	})
	return fs, next, nil
}

// FollowCounts returns how many follow user and how many user follows.
func (db *DB) FollowCounts(ctx context.Context, user string) (followers, following int64, err error) {
	err = db.r.QueryRowContext(ctx,
		`SELECT (SELECT count(*) FROM follows WHERE followee = ?1),
		        (SELECT count(*) FROM follows WHERE follower = ?1)`, user).Scan(&followers, &following)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: follow counts of %s: %w", user, err)
	}
	return followers, following, nil
}

// listable is the condition on the clips table (aliased c) of a clip that
// may appear in a feed. It repeats the partial indexes' condition word for
// word, which is what lets SQLite use them.
const listable = `c.visibility = 'public' AND c.status = 'ready'`

// completed is the condition on an event e of clip c that counts as a
// completed view: 90% of a clip of known length, or 10 s of one of unknown length.
const completed = `((c.duration_ms > 0 AND e.watched_ms * 10 >= c.duration_ms * 9) OR (c.duration_ms = 0 AND e.watched_ms >= 10000))`

// Profile returns user's counts as viewer sees them.
func (db *DB) Profile(ctx context.Context, user, viewer string) (feed.Profile, error) {
	p := feed.Profile{ID: user}
	var created int64
	err := db.r.QueryRowContext(ctx,
		`SELECT u.created_at,
		        (SELECT count(*) FROM follows WHERE followee = u.id),
		        (SELECT count(*) FROM follows WHERE follower = u.id),
		        CASE WHEN u.id = ?2 THEN (SELECT count(*) FROM clips WHERE owner = u.id)
		             ELSE (SELECT count(*) FROM clips c WHERE c.owner = u.id AND `+listable+`) END,
		        EXISTS (SELECT 1 FROM follows WHERE follower = ?2 AND followee = u.id)
		 FROM users u WHERE u.id = ?1`, user, viewer).
		Scan(&created, &p.Followers, &p.Following, &p.Clips, &p.Followed)
	if errors.Is(err, sql.ErrNoRows) {
		return feed.Profile{}, notFound("profile of user", user)
	}
	if err != nil {
		return feed.Profile{}, fmt.Errorf("sqlite: profile of %s: %w", user, err)
	}
	p.CreatedAt = fromMS(created)
	return p, nil
}

// FollowingClips is fan-out on read over the followees' listable clips,
// newest first by (created_at, id) before the cursor.
func (db *DB) FollowingClips(ctx context.Context, viewer, cursor string, limit int) ([]clips.Clip, string, error) {
	limit = keyset.Limit(limit)
	at, id := int64(math.MaxInt64), ""
	if cursor != "" {
		t, cid, err := keyset.DecodeTimeID(cursor)
		if err != nil {
			return nil, "", fmt.Errorf("sqlite: following feed of %s: %w", viewer, err)
		}
		at, id = ms(t), cid
	}
	rows, err := db.r.QueryContext(ctx,
		`SELECT `+clipCols+` FROM clips c
		 WHERE c.owner IN (SELECT followee FROM follows WHERE follower = ?)
		   AND `+listable+` AND (c.created_at, c.id) < (?, ?)
		 ORDER BY c.created_at DESC, c.id DESC LIMIT ?`, viewer, at, id, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: following feed of %s: %w", viewer, err)
	}
	cs, err := collect(rows, scanClip)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: following feed of %s: %w", viewer, err)
	}
	cs, next := keyset.Page(cs, limit, func(c clips.Clip) string { return keyset.EncodeTimeID(c.CreatedAt, c.ID) })
	return cs, next, nil
}

// GameClips returns the newest listable clips of each game.
func (db *DB) GameClips(ctx context.Context, games []string, perGame int) ([]clips.Clip, error) {
	return db.newestBy(ctx, "game", games, perGame)
}

// CreatorClips returns the newest listable clips of each owner.
func (db *DB) CreatorClips(ctx context.Context, owners []string, perOwner int) ([]clips.Clip, error) {
	return db.newestBy(ctx, "owner", owners, perOwner)
}

// newestBy returns up to per newest listable clips for each value of col, a
// column name and never input: one indexed query per value.
func (db *DB) newestBy(ctx context.Context, col string, values []string, per int) ([]clips.Clip, error) {
	out := []clips.Clip{}
	if per <= 0 {
		return out, nil
	}
	for _, v := range values {
		rows, err := db.r.QueryContext(ctx,
			`SELECT `+clipCols+` FROM clips c WHERE c.`+col+` = ? AND `+listable+`
			 ORDER BY c.created_at DESC, c.id DESC LIMIT ?`, v, per)
		if err != nil {
			return nil, fmt.Errorf("sqlite: newest clips by %s: %w", col, err)
		}
		cs, err := collect(rows, scanClip)
		if err != nil {
			return nil, fmt.Errorf("sqlite: newest clips by %s: %w", col, err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// ListableClips returns the listable clips among ids.
func (db *DB) ListableClips(ctx context.Context, ids []string) ([]clips.Clip, error) {
	out := []clips.Clip{}
	// SQLite caps the number of parameters of one statement.
	const chunk = 500
	for len(ids) > 0 {
		n := min(len(ids), chunk)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		ids = ids[n:]
		rows, err := db.r.QueryContext(ctx,
			`SELECT `+clipCols+` FROM clips c WHERE c.id IN (`+placeholders(n)+`) AND `+listable, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: listable clips: %w", err)
		}
		cs, err := collect(rows, scanClip)
		if err != nil {
			return nil, fmt.Errorf("sqlite: listable clips: %w", err)
		}
		out = append(out, cs...)
	}
	return out, nil
}

// Candidates answers q with one query per source, each clip kept in the
// first source that offered it. SQLite runs in process, so round trips
// cost little here.
func (db *DB) Candidates(ctx context.Context, q feed.CandidateQuery) (feed.Candidates, error) {
	var lists [4][]clips.Clip
	if q.Following > 0 && q.Viewer != "" {
		var err error
		if lists[0], _, err = db.FollowingClips(ctx, q.Viewer, "", q.Following); err != nil {
			return feed.Candidates{}, err
		}
	}
	var err error
	if lists[1], err = db.CreatorClips(ctx, q.Creators, q.PerCreator); err != nil {
		return feed.Candidates{}, err
	}
	if lists[2], err = db.GameClips(ctx, q.Games, q.PerGame); err != nil {
		return feed.Candidates{}, err
	}
	if lists[3], err = db.ListableClips(ctx, q.IDs); err != nil {
		return feed.Candidates{}, err
	}
	var out [4][]feed.CandidateClip
	seen := map[string]bool{}
	for i, l := range lists {
		out[i] = []feed.CandidateClip{}
		for _, c := range l {
			if !seen[c.ID] {
				seen[c.ID] = true
				out[i] = append(out[i], feed.CandidateClip{
					ID: c.ID, Owner: c.Owner, Game: c.Game, DurationMS: c.DurationMS, CreatedAt: c.CreatedAt})
			}
		}
	}
	return feed.Candidates{Following: out[0], Creators: out[1], Games: out[2], IDs: out[3]}, nil
}

// placeholders returns n comma-separated question marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// Engagement returns the hourly engagement of listable clips since since.
// Likes are counted from clip_likes, so a like event never counts twice.
func (db *DB) Engagement(ctx context.Context, since time.Time) ([]feed.Engagement, error) {
	rows, err := db.r.QueryContext(ctx,
		`WITH ev AS (
		   SELECT e.clip_id, e.at / 3600000 * 3600000 AS hour,
		          sum(e.kind = 'view') AS views,
		          sum(e.kind = 'view' AND `+completed+`) AS completes,
		          sum(e.kind = 'skip') AS skips,
		          0 AS likes,
		          sum(e.kind = 'share') AS shares,
		          0 AS comments
		   FROM clip_events e JOIN clips c ON c.id = e.clip_id
		   WHERE e.at >= ?1 AND `+listable+`
		   GROUP BY 1, 2
		   UNION ALL
		   SELECT clip_id, created_at / 3600000 * 3600000, 0, 0, 0, count(*), 0, 0
		   FROM clip_likes WHERE created_at >= ?1 GROUP BY 1, 2
		   UNION ALL
		   SELECT clip_id, created_at / 3600000 * 3600000, 0, 0, 0, 0, 0, count(*)
		   FROM comments WHERE created_at >= ?1 GROUP BY 1, 2)
		 SELECT ev.clip_id, c.owner, c.game, c.duration_ms, c.created_at, ev.hour,
		        sum(ev.views), sum(ev.completes), sum(ev.skips), sum(ev.likes), sum(ev.shares), sum(ev.comments)
		 FROM ev JOIN clips c ON c.id = ev.clip_id
		 WHERE `+listable+`
		 GROUP BY ev.clip_id, ev.hour`, ms(since))
	if err != nil {
		return nil, fmt.Errorf("sqlite: engagement since %v: %w", since, err)
	}
	es, err := collect(rows, func(row scanner) (feed.Engagement, error) {
		var (
			e             feed.Engagement
			created, hour int64
		)
		err := row.Scan(&e.ClipID, &e.Owner, &e.Game, &e.DurationMS, &created, &hour,
			&e.Views, &e.Completes, &e.Skips, &e.Likes, &e.Shares, &e.Comments)
		e.CreatedAt, e.Hour = fromMS(created), fromMS(hour)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: engagement since %v: %w", since, err)
	}
	return es, nil
}

// ViewerHistory returns the viewer's newest events and likes, newest first.
// Like events are left out: the likes table holds every like once.
func (db *DB) ViewerHistory(ctx context.Context, viewer string, limit int) ([]feed.ViewerEvent, error) {
	if limit <= 0 {
		return []feed.ViewerEvent{}, nil
	}
	rows, err := db.r.QueryContext(ctx,
		`SELECT * FROM (
		   SELECT * FROM (SELECT e.clip_id, c.owner, c.game, c.duration_ms, e.kind, e.watched_ms, e.at
		    FROM clip_events e JOIN clips c ON c.id = e.clip_id
		    WHERE e.user_id = ?1 AND e.kind <> 'like' ORDER BY e.at DESC LIMIT ?2)
		   UNION ALL
		   SELECT * FROM (SELECT l.clip_id, c.owner, c.game, c.duration_ms, 'like', 0, l.created_at
		    FROM clip_likes l JOIN clips c ON c.id = l.clip_id
		    WHERE l.user_id = ?1 ORDER BY l.created_at DESC LIMIT ?2))
		 ORDER BY 7 DESC LIMIT ?2`, viewer, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: history of %s: %w", viewer, err)
	}
	hs, err := collect(rows, func(row scanner) (feed.ViewerEvent, error) {
		var (
			h  feed.ViewerEvent
			at int64
		)
		err := row.Scan(&h.ClipID, &h.Owner, &h.Game, &h.DurationMS, &h.Kind, &h.WatchedMS, &at)
		h.At = fromMS(at)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: history of %s: %w", viewer, err)
	}
	return hs, nil
}

// SaveModel stores blob under name, replacing what was there.
func (db *DB) SaveModel(ctx context.Context, name string, blob []byte) error {
	if err := record.ID("model", name); err != nil {
		return fmt.Errorf("sqlite: save model: %w", err)
	}
	if blob == nil {
		blob = []byte{}
	}
	_, err := db.w.ExecContext(ctx,
		`INSERT INTO feed_models (name, blob, updated_at) VALUES (?, ?, ?)
		 ON CONFLICT (name) DO UPDATE SET blob = excluded.blob, updated_at = excluded.updated_at`,
		name, blob, ms(record.Now()))
	if err != nil {
		return fmt.Errorf("sqlite: save model %s: %w", name, err)
	}
	return nil
}

// LoadModel returns the blob stored under name, or ErrNotFound.
func (db *DB) LoadModel(ctx context.Context, name string) ([]byte, error) {
	var blob []byte
	err := db.r.QueryRowContext(ctx, `SELECT blob FROM feed_models WHERE name = ?`, name).Scan(&blob)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("load model", name)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: load model %s: %w", name, err)
	}
	if blob == nil {
		blob = []byte{}
	}
	return blob, nil
}
