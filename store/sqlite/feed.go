package sqlite

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/store/internal/keyset"
	"github.com/partyline/partyline/store/internal/sqlstore"
)

// FollowingClips is fan-out on read over the followees' listable clips,
// newest first by (created_at, id) before the cursor.
func (db *DB) FollowingClips(ctx context.Context, viewer, cursor string, limit int) ([]clips.Clip, string, error) {
	limit = keyset.Limit(limit)
	var at any = int64(math.MaxInt64) // after every stored time
	id := ""
	if cursor != "" {
		var err error
		if at, id, err = keyset.DecodeTimeID(cursor); err != nil {
			return nil, "", fmt.Errorf("sqlite: following feed of %s: %w", viewer, err)
		}
	}
	cs, err := sqlstore.List(ctx, conn{db.r}, sqlstore.ScanClip,
		`SELECT `+sqlstore.ClipCols+` FROM clips c
		 WHERE c.owner IN (SELECT followee FROM follows WHERE follower = $1)
		   AND `+sqlstore.Listable+` AND (c.created_at, c.id) < ($2, $3)
		 ORDER BY c.created_at DESC, c.id DESC LIMIT $4`, viewer, at, id, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: following feed of %s: %w", viewer, err)
	}
	cs, next := keyset.Page(cs, limit, func(c clips.Clip) string { return keyset.EncodeTimeID(c.CreatedAt, c.ID) })
	return cs, next, nil
}

// newestClips is sqlstore.Options.NewestClips: one indexed query per value.
func (db *DB) newestClips(ctx context.Context, col string, values []string, per int) ([]clips.Clip, error) {
	out := []clips.Clip{}
	for _, v := range values {
		cs, err := sqlstore.List(ctx, conn{db.r}, sqlstore.ScanClip,
			`SELECT `+sqlstore.ClipCols+` FROM clips c WHERE c.`+col+` = $1 AND `+sqlstore.Listable+`
			 ORDER BY c.created_at DESC, c.id DESC LIMIT $2`, v, per)
		if err != nil {
			return nil, err
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
		cs, err := sqlstore.List(ctx, conn{db.r}, sqlstore.ScanClip,
			`SELECT `+sqlstore.ClipCols+` FROM clips c WHERE c.id IN (`+placeholders(n)+`) AND `+sqlstore.Listable,
			args...)
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
