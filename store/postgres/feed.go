package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/partyline/partyline"
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
