package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/store/internal/keyset"
	"github.com/partyline/partyline/store/internal/record"
)

// Follow makes follower follow followee, once.
func (db *DB) Follow(ctx context.Context, follower, followee string) (bool, error) {
	if follower == followee {
		return false, fmt.Errorf("postgres: follow: %s cannot follow themselves: %w", follower, partyline.ErrInvalid)
	}
	tag, err := db.pool.Exec(ctx,
		`INSERT INTO follows (follower, followee, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		follower, followee, record.Now())
	if err != nil {
		return false, fmt.Errorf("postgres: %s follow %s: %w", follower, followee, classify(err))
	}
	return tag.RowsAffected() == 1, nil
}

// Unfollow removes the edge.
func (db *DB) Unfollow(ctx context.Context, follower, followee string) (bool, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM follows WHERE follower = $1 AND followee = $2`, follower, followee)
	if err != nil {
		return false, fmt.Errorf("postgres: %s unfollow %s: %w", follower, followee, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Followers lists who follows user, newest edge first.
func (db *DB) Followers(ctx context.Context, user, cursor string, limit int) ([]feed.Follow, string, error) {
	fs, next, err := db.follows(ctx, "followee", "follower", user, cursor, limit)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: followers of %s: %w", user, err)
	}
	return fs, next, nil
}

// Following lists whom user follows, newest edge first.
func (db *DB) Following(ctx context.Context, user, cursor string, limit int) ([]feed.Follow, string, error) {
	fs, next, err := db.follows(ctx, "follower", "followee", user, cursor, limit)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: following of %s: %w", user, err)
	}
	return fs, next, nil
}

// follows pages the edges whose column self is user, ordered by (created_at,
// other) descending. self and other are column names, never input.
func (db *DB) follows(ctx context.Context, self, other, user, cursor string, limit int) ([]feed.Follow, string, error) {
	limit = keyset.Limit(limit)
	var (
		rows pgx.Rows
		err  error
	)
	const cols = `follower, followee, created_at`
	if cursor == "" {
		rows, err = db.pool.Query(ctx,
			`SELECT `+cols+` FROM follows WHERE `+self+` = $1
			 ORDER BY created_at DESC, `+other+` DESC LIMIT $2`, user, limit+1)
	} else {
		at, id, derr := keyset.DecodeTimeID(cursor)
		if derr != nil {
			return nil, "", derr
		}
		rows, err = db.pool.Query(ctx,
			`SELECT `+cols+` FROM follows WHERE `+self+` = $1 AND (created_at, `+other+`) < ($2, $3)
			 ORDER BY created_at DESC, `+other+` DESC LIMIT $4`, user, at, id, limit+1)
	}
	if err != nil {
		return nil, "", err
	}
	fs, err := collect(rows, func(row pgx.Row) (feed.Follow, error) {
		var f feed.Follow
		err := row.Scan(&f.Follower, &f.Followee, &f.CreatedAt)
		f.CreatedAt = f.CreatedAt.UTC()
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
	err = db.pool.QueryRow(ctx,
		`SELECT (SELECT count(*) FROM follows WHERE followee = $1),
		        (SELECT count(*) FROM follows WHERE follower = $1)`, user).Scan(&followers, &following)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: follow counts of %s: %w", user, err)
	}
	return followers, following, nil
}

// listable is the condition on the clips table (aliased c) of a clip that
// may appear in a feed.
const listable = `c.visibility = 'public' AND c.status = 'ready'`

// completed is the condition on an event e of clip c that counts as a
// completed view: 90% of a clip of known length, or 10 s of one of unknown length.
const completed = `((c.duration_ms > 0 AND e.watched_ms * 10 >= c.duration_ms * 9) OR (c.duration_ms = 0 AND e.watched_ms >= 10000))`

// Profile returns user's counts as viewer sees them.
func (db *DB) Profile(ctx context.Context, user, viewer string) (feed.Profile, error) {
	p := feed.Profile{ID: user}
	err := db.pool.QueryRow(ctx,
		`SELECT u.created_at,
		        (SELECT count(*) FROM follows WHERE followee = u.id),
		        (SELECT count(*) FROM follows WHERE follower = u.id),
		        CASE WHEN u.id = $2 THEN (SELECT count(*) FROM clips WHERE owner = u.id)
		             ELSE (SELECT count(*) FROM clips c WHERE c.owner = u.id AND `+listable+`) END,
		        EXISTS (SELECT 1 FROM follows WHERE follower = $2 AND followee = u.id)
		 FROM users u WHERE u.id = $1`, user, viewer).
		Scan(&p.CreatedAt, &p.Followers, &p.Following, &p.Clips, &p.Followed)
	if errors.Is(err, pgx.ErrNoRows) {
		return feed.Profile{}, notFound("profile of user", user)
	}
	if err != nil {
		return feed.Profile{}, fmt.Errorf("postgres: profile of %s: %w", user, err)
	}
	p.CreatedAt = p.CreatedAt.UTC()
	return p, nil
}

// farFuture stands in for "no cursor" in keyset queries: every clip sorts
// before it.
var farFuture = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// manyFollowees is where FollowingClips switches plans: up to it, one index
// range per followee; past it, one walk down the timeline.
const manyFollowees = 100

// FollowingClips is fan-out on read, with one of two plans by how many
// people the viewer follows. For a few, an index range scan of
// clips_listable_owner_idx per followee reads at most limit+1 of their
// newest clips before the cursor, and the union is cut to the page: its
// cost grows with followees times page size, never with their history.
// For many (someone following 1,000 creators), that is thousands of rows
// per page, so instead clips_listable_created_idx is walked newest first
// and each clip is kept when its owner is in the hashed set of followees,
// which stops as soon as the page is full.
func (db *DB) FollowingClips(ctx context.Context, viewer, cursor string, limit int) ([]clips.Clip, string, error) {
	limit = keyset.Limit(limit)
	at, id := farFuture, ""
	if cursor != "" {
		var err error
		if at, id, err = keyset.DecodeTimeID(cursor); err != nil {
			return nil, "", fmt.Errorf("postgres: following feed of %s: %w", viewer, err)
		}
	}
	var many bool
	if err := db.pool.QueryRow(ctx,
		`SELECT count(*) > $2 FROM (SELECT 1 FROM follows WHERE follower = $1 LIMIT $2 + 1) f`,
		viewer, manyFollowees).Scan(&many); err != nil {
		return nil, "", fmt.Errorf("postgres: following feed of %s: %w", viewer, err)
	}
	query := `SELECT c.* FROM follows f CROSS JOIN LATERAL (
		   SELECT ` + clipCols + ` FROM clips c
		   WHERE c.owner = f.followee AND ` + listable + ` AND (c.created_at, c.id) < ($2, $3)
		   ORDER BY c.created_at DESC, c.id DESC LIMIT $4) c
		 WHERE f.follower = $1
		 ORDER BY c.created_at DESC, c.id DESC LIMIT $4`
	if many {
		query = `SELECT ` + clipCols + ` FROM clips c
		 WHERE ` + listable + ` AND (c.created_at, c.id) < ($2, $3)
		   AND c.owner IN (SELECT followee FROM follows WHERE follower = $1)
		 ORDER BY c.created_at DESC, c.id DESC LIMIT $4`
	}
	rows, err := db.pool.Query(ctx, query, viewer, at, id, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: following feed of %s: %w", viewer, err)
	}
	cs, err := collect(rows, scanClip)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: following feed of %s: %w", viewer, err)
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
// column name and never input.
func (db *DB) newestBy(ctx context.Context, col string, values []string, per int) ([]clips.Clip, error) {
	if len(values) == 0 || per <= 0 {
		return []clips.Clip{}, nil
	}
	rows, err := db.pool.Query(ctx,
		`SELECT c.* FROM unnest($1::text[]) v(value) CROSS JOIN LATERAL (
		   SELECT `+clipCols+` FROM clips c
		   WHERE c.`+col+` = v.value AND `+listable+`
		   ORDER BY c.created_at DESC, c.id DESC LIMIT $2) c`, values, per)
	if err != nil {
		return nil, fmt.Errorf("postgres: newest clips by %s: %w", col, err)
	}
	cs, err := collect(rows, scanClip)
	if err != nil {
		return nil, fmt.Errorf("postgres: newest clips by %s: %w", col, err)
	}
	return cs, nil
}

// ListableClips returns the listable clips among ids.
func (db *DB) ListableClips(ctx context.Context, ids []string) ([]clips.Clip, error) {
	if len(ids) == 0 {
		return []clips.Clip{}, nil
	}
	rows, err := db.pool.Query(ctx,
		`SELECT `+clipCols+` FROM clips c WHERE c.id = ANY($1) AND `+listable, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: listable clips: %w", err)
	}
	cs, err := collect(rows, scanClip)
	if err != nil {
		return nil, fmt.Errorf("postgres: listable clips: %w", err)
	}
	return cs, nil
}

// candidatesQuery answers a feed.CandidateQuery in one statement. Each
// source yields clip ids from its partial index alone (index-only scans of
// clips_listable_owner_idx and clips_listable_game_idx, primary keys for
// the ids asked for); the ids are deduplicated, keeping the first source,
// and only then is each clip read, once, by its primary key, for the few
// columns ranking needs. The
// following source takes FollowingClips' plan by a one-time filter on how
// many people the viewer follows; the branch not taken never runs.
//
// Planning this statement costs about as much as running it, so it must
// run on the generic plan that pgx's prepared statement caches. PostgreSQL
// only settles on a generic plan that it estimates no dearer than the
// custom ones, and custom plans see the parameters' values; so every
// parameter is read through a sub-select "(SELECT $n)", which neither
// plan can see into. The statement is written so that the plan is good
// without the values: LIMIT in each lateral subquery keeps it a nested
// loop over its index, LIMIT 1 keeps the final read a primary-key probe
// per id, and "IS TRUE" keeps the followee test of the many-followees
// branch a hashed subplan checked while walking clips_listable_created_idx
// rather than a join that reads every followee's clips.
const candidatesQuery = `WITH fl AS MATERIALIZED (
	   SELECT followee FROM follows WHERE follower = (SELECT $1::text) LIMIT (SELECT $3::int + 1)),
	 few AS (
	   SELECT l.id FROM fl CROSS JOIN LATERAL (
	     SELECT c.id, c.created_at FROM clips c
	     WHERE c.owner = fl.followee AND ` + listable + `
	     ORDER BY c.created_at DESC, c.id DESC LIMIT (SELECT $2::int)) l
	   WHERE (SELECT count(*) FROM fl) <= (SELECT $3::int)
	   ORDER BY l.created_at DESC, l.id DESC LIMIT (SELECT $2::int)),
	 many AS (
	   SELECT c.id FROM clips c
	   WHERE (SELECT count(*) FROM fl) > (SELECT $3::int) AND ` + listable + `
	     AND (c.owner IN (SELECT followee FROM follows WHERE follower = (SELECT $1::text))) IS TRUE
	   ORDER BY c.created_at DESC, c.id DESC LIMIT (SELECT $2::int)),
	 picked AS (
	   SELECT 0 AS src, id FROM few
	   UNION ALL
	   SELECT 0, id FROM many
	   UNION ALL
	   SELECT 1, l.id FROM unnest((SELECT $4::text[])) v(value) CROSS JOIN LATERAL (
	     SELECT c.id FROM clips c WHERE c.owner = v.value AND ` + listable + `
	     ORDER BY c.created_at DESC, c.id DESC LIMIT (SELECT $5::int)) l
	   UNION ALL
	   SELECT 2, l.id FROM unnest((SELECT $6::text[])) v(value) CROSS JOIN LATERAL (
	     SELECT c.id FROM clips c WHERE c.game = v.value AND ` + listable + `
	     ORDER BY c.created_at DESC, c.id DESC LIMIT (SELECT $7::int)) l
	   UNION ALL
	   SELECT 3, v.id FROM unnest((SELECT $8::text[])) v(id)),
	 firsts AS (SELECT id, min(src) AS src FROM picked GROUP BY id)
	SELECT f.src, c.id, c.owner, c.game, c.duration_ms, c.created_at FROM firsts f CROSS JOIN LATERAL (
	  SELECT c.id, c.owner, c.game, c.duration_ms, c.created_at FROM clips c
	  WHERE c.id = f.id AND ` + listable + ` LIMIT 1) c`

// Candidates answers q in one round trip.
func (db *DB) Candidates(ctx context.Context, q feed.CandidateQuery) (feed.Candidates, error) {
	following, perCreator, perGame := 0, max(0, q.PerCreator), max(0, q.PerGame)
	if q.Following > 0 && q.Viewer != "" {
		following = keyset.Limit(q.Following)
	}
	out := feed.Candidates{
		Following: make([]feed.CandidateClip, 0, following),
		Creators:  make([]feed.CandidateClip, 0, len(q.Creators)*perCreator),
		Games:     make([]feed.CandidateClip, 0, len(q.Games)*perGame),
		IDs:       make([]feed.CandidateClip, 0, len(q.IDs)),
	}
	if following == 0 && len(q.Creators) == 0 && len(q.Games) == 0 && len(q.IDs) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, candidatesQuery, q.Viewer, following, manyFollowees,
		q.Creators, perCreator, q.Games, perGame, q.IDs)
	if err != nil {
		return feed.Candidates{}, fmt.Errorf("postgres: for-you candidates of %s: %w", q.Viewer, err)
	}
	defer rows.Close()
	lists := [...]*[]feed.CandidateClip{&out.Following, &out.Creators, &out.Games, &out.IDs}
	var (
		src int32
		c   feed.CandidateClip
	)
	dest := []any{&src, &c.ID, &c.Owner, &c.Game, &c.DurationMS, &c.CreatedAt}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return feed.Candidates{}, fmt.Errorf("postgres: for-you candidates of %s: %w", q.Viewer, err)
		}
		if src < 0 || int(src) >= len(lists) {
			return feed.Candidates{}, fmt.Errorf("postgres: for-you candidates of %s: unknown source %d", q.Viewer, src)
		}
		c.CreatedAt = c.CreatedAt.UTC()
		*lists[src] = append(*lists[src], c)
	}
	if err := rows.Err(); err != nil {
		return feed.Candidates{}, fmt.Errorf("postgres: for-you candidates of %s: %w", q.Viewer, err)
	}
	return out, nil
}

// Engagement returns the hourly engagement of listable clips since since.
// Likes are counted from clip_likes, so a like event never counts twice.
func (db *DB) Engagement(ctx context.Context, since time.Time) ([]feed.Engagement, error) {
	const hour = `to_timestamp(floor(extract(epoch FROM %s) / 3600) * 3600)`
	rows, err := db.pool.Query(ctx,
		`WITH ev AS (
		   SELECT e.clip_id, `+fmt.Sprintf(hour, "e.at")+` AS hour,
		          count(*) FILTER (WHERE e.kind = 'view') AS views,
		          count(*) FILTER (WHERE e.kind = 'view' AND `+completed+`) AS completes,
		          count(*) FILTER (WHERE e.kind = 'skip') AS skips,
		          0::bigint AS likes,
		          count(*) FILTER (WHERE e.kind = 'share') AS shares,
		          0::bigint AS comments
		   FROM clip_events e JOIN clips c ON c.id = e.clip_id
		   WHERE e.at >= $1 AND `+listable+`
		   GROUP BY 1, 2
		   UNION ALL
		   SELECT clip_id, `+fmt.Sprintf(hour, "created_at")+`, 0, 0, 0, count(*), 0, 0
		   FROM clip_likes WHERE created_at >= $1 GROUP BY 1, 2
		   UNION ALL
		   SELECT clip_id, `+fmt.Sprintf(hour, "created_at")+`, 0, 0, 0, 0, 0, count(*)
		   FROM comments WHERE created_at >= $1 GROUP BY 1, 2)
		 SELECT ev.clip_id, c.owner, c.game, c.duration_ms, c.created_at, ev.hour,
		        sum(ev.views)::bigint, sum(ev.completes)::bigint, sum(ev.skips)::bigint,
		        sum(ev.likes)::bigint, sum(ev.shares)::bigint, sum(ev.comments)::bigint
		 FROM ev JOIN clips c ON c.id = ev.clip_id
		 WHERE `+listable+`
		 GROUP BY ev.clip_id, c.owner, c.game, c.duration_ms, c.created_at, ev.hour`, since)
	if err != nil {
		return nil, fmt.Errorf("postgres: engagement since %v: %w", since, err)
	}
	es, err := collect(rows, func(row pgx.Row) (feed.Engagement, error) {
		var e feed.Engagement
		err := row.Scan(&e.ClipID, &e.Owner, &e.Game, &e.DurationMS, &e.CreatedAt, &e.Hour,
			&e.Views, &e.Completes, &e.Skips, &e.Likes, &e.Shares, &e.Comments)
		e.CreatedAt, e.Hour = e.CreatedAt.UTC(), e.Hour.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: engagement since %v: %w", since, err)
	}
	return es, nil
}

// ViewerHistory returns the viewer's newest events and likes, newest first.
// Like events are left out: the likes table holds every like once.
func (db *DB) ViewerHistory(ctx context.Context, viewer string, limit int) ([]feed.ViewerEvent, error) {
	if limit <= 0 {
		return []feed.ViewerEvent{}, nil
	}
	rows, err := db.pool.Query(ctx,
		`SELECT * FROM (
		   (SELECT e.clip_id, c.owner, c.game, c.duration_ms, e.kind, e.watched_ms, e.at
		    FROM clip_events e JOIN clips c ON c.id = e.clip_id
		    WHERE e.user_id = $1 AND e.kind <> 'like' ORDER BY e.at DESC LIMIT $2)
		   UNION ALL
		   (SELECT l.clip_id, c.owner, c.game, c.duration_ms, 'like', 0::bigint, l.created_at
		    FROM clip_likes l JOIN clips c ON c.id = l.clip_id
		    WHERE l.user_id = $1 ORDER BY l.created_at DESC LIMIT $2)) h
		 ORDER BY 7 DESC LIMIT $2`, viewer, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: history of %s: %w", viewer, err)
	}
	hs, err := collect(rows, func(row pgx.Row) (feed.ViewerEvent, error) {
		var h feed.ViewerEvent
		err := row.Scan(&h.ClipID, &h.Owner, &h.Game, &h.DurationMS, &h.Kind, &h.WatchedMS, &h.At)
		h.At = h.At.UTC()
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: history of %s: %w", viewer, err)
	}
	return hs, nil
}

// SaveModel stores blob under name, replacing what was there.
func (db *DB) SaveModel(ctx context.Context, name string, blob []byte) error {
	if err := record.ID("model", name); err != nil {
		return fmt.Errorf("postgres: save model: %w", err)
	}
	if blob == nil {
		blob = []byte{}
	}
	_, err := db.pool.Exec(ctx,
		`INSERT INTO feed_models (name, blob, updated_at) VALUES ($1, $2, $3)
		 ON CONFLICT (name) DO UPDATE SET blob = excluded.blob, updated_at = excluded.updated_at`,
		name, blob, record.Now())
	if err != nil {
		return fmt.Errorf("postgres: save model %s: %w", name, err)
	}
	return nil
}

// LoadModel returns the blob stored under name, or ErrNotFound.
func (db *DB) LoadModel(ctx context.Context, name string) ([]byte, error) {
	var blob []byte
	err := db.pool.QueryRow(ctx, `SELECT blob FROM feed_models WHERE name = $1`, name).Scan(&blob)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("load model", name)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: load model %s: %w", name, err)
	}
	return blob, nil
}
