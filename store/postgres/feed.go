package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/store/internal/keyset"
	"github.com/partyline/partyline/store/internal/sqlstore"
)

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
	if err := db.conn.QueryRow(ctx,
		`SELECT count(*) > $2 FROM (SELECT 1 FROM follows WHERE follower = $1 LIMIT $2 + 1) f`,
		viewer, manyFollowees).Scan(&many); err != nil {
		return nil, "", fmt.Errorf("postgres: following feed of %s: %w", viewer, err)
	}
	query := `SELECT c.* FROM follows f CROSS JOIN LATERAL (
		   SELECT ` + sqlstore.ClipCols + ` FROM clips c
		   WHERE c.owner = f.followee AND ` + sqlstore.Listable + ` AND (c.created_at, c.id) < ($2, $3)
		   ORDER BY c.created_at DESC, c.id DESC LIMIT $4) c
		 WHERE f.follower = $1
		 ORDER BY c.created_at DESC, c.id DESC LIMIT $4`
	if many {
		query = `SELECT ` + sqlstore.ClipCols + ` FROM clips c
		 WHERE ` + sqlstore.Listable + ` AND (c.created_at, c.id) < ($2, $3)
		   AND c.owner IN (SELECT followee FROM follows WHERE follower = $1)
		 ORDER BY c.created_at DESC, c.id DESC LIMIT $4`
	}
	cs, err := sqlstore.List(ctx, db.conn, sqlstore.ScanClip, query, viewer, at, id, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: following feed of %s: %w", viewer, err)
	}
	cs, next := keyset.Page(cs, limit, func(c clips.Clip) string { return keyset.EncodeTimeID(c.CreatedAt, c.ID) })
	return cs, next, nil
}

// newestClips is sqlstore.Options.NewestClips: one query over all values.
func (db *DB) newestClips(ctx context.Context, col string, values []string, per int) ([]clips.Clip, error) {
	return sqlstore.List(ctx, db.conn, sqlstore.ScanClip,
		`SELECT c.* FROM unnest($1::text[]) v(value) CROSS JOIN LATERAL (
		   SELECT `+sqlstore.ClipCols+` FROM clips c
		   WHERE c.`+col+` = v.value AND `+sqlstore.Listable+`
		   ORDER BY c.created_at DESC, c.id DESC LIMIT $2) c`, values, per)
}

// ListableClips returns the listable clips among ids.
func (db *DB) ListableClips(ctx context.Context, ids []string) ([]clips.Clip, error) {
	if len(ids) == 0 {
		return []clips.Clip{}, nil
	}
	cs, err := sqlstore.List(ctx, db.conn, sqlstore.ScanClip,
		`SELECT `+sqlstore.ClipCols+` FROM clips c WHERE c.id = ANY($1) AND `+sqlstore.Listable, ids)
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
	     WHERE c.owner = fl.followee AND ` + sqlstore.Listable + `
	     ORDER BY c.created_at DESC, c.id DESC LIMIT (SELECT $2::int)) l
	   WHERE (SELECT count(*) FROM fl) <= (SELECT $3::int)
	   ORDER BY l.created_at DESC, l.id DESC LIMIT (SELECT $2::int)),
	 many AS (
	   SELECT c.id FROM clips c
	   WHERE (SELECT count(*) FROM fl) > (SELECT $3::int) AND ` + sqlstore.Listable + `
	     AND (c.owner IN (SELECT followee FROM follows WHERE follower = (SELECT $1::text))) IS TRUE
	   ORDER BY c.created_at DESC, c.id DESC LIMIT (SELECT $2::int)),
	 picked AS (
	   SELECT 0 AS src, id FROM few
	   UNION ALL
	   SELECT 0, id FROM many
	   UNION ALL
	   SELECT 1, l.id FROM unnest((SELECT $4::text[])) v(value) CROSS JOIN LATERAL (
	     SELECT c.id FROM clips c WHERE c.owner = v.value AND ` + sqlstore.Listable + `
	     ORDER BY c.created_at DESC, c.id DESC LIMIT (SELECT $5::int)) l
	   UNION ALL
	   SELECT 2, l.id FROM unnest((SELECT $6::text[])) v(value) CROSS JOIN LATERAL (
	     SELECT c.id FROM clips c WHERE c.game = v.value AND ` + sqlstore.Listable + `
	     ORDER BY c.created_at DESC, c.id DESC LIMIT (SELECT $7::int)) l
	   UNION ALL
	   SELECT 3, v.id FROM unnest((SELECT $8::text[])) v(id)),
	 firsts AS (SELECT id, min(src) AS src FROM picked GROUP BY id)
	SELECT f.src, c.id, c.owner, c.game, c.duration_ms, c.created_at FROM firsts f CROSS JOIN LATERAL (
	  SELECT c.id, c.owner, c.game, c.duration_ms, c.created_at FROM clips c
	  WHERE c.id = f.id AND ` + sqlstore.Listable + ` LIMIT 1) c`

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
	rows, err := db.conn.Query(ctx, candidatesQuery, q.Viewer, following, manyFollowees,
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
		*lists[src] = append(*lists[src], c)
	}
	if err := rows.Err(); err != nil {
		return feed.Candidates{}, fmt.Errorf("postgres: for-you candidates of %s: %w", q.Viewer, err)
	}
	return out, nil
}
