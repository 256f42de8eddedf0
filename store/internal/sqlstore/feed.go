package sqlstore

import (
	"context"
	"time"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/store/internal/keyset"
	"github.com/partyline/partyline/store/internal/record"
)

// GameClips returns the newest listable clips of each game.
func (s *Store) GameClips(ctx context.Context, games []string, perGame int) ([]clips.Clip, error) {
	return s.newestBy(ctx, "game", games, perGame)
}

// CreatorClips returns the newest listable clips of each owner.
func (s *Store) CreatorClips(ctx context.Context, owners []string, perOwner int) ([]clips.Clip, error) {
	return s.newestBy(ctx, "owner", owners, perOwner)
}

func (s *Store) newestBy(ctx context.Context, col string, values []string, per int) ([]clips.Clip, error) {
	if len(values) == 0 || per <= 0 {
		return []clips.Clip{}, nil
	}
	cs, err := s.opts.NewestClips(ctx, col, values, per)
	if err != nil {
		return nil, s.errorf("newest clips by %s: %w", col, err)
	}
	return cs, nil
}

// Follow makes follower follow followee, once.
func (s *Store) Follow(ctx context.Context, follower, followee string) (bool, error) {
	if follower == followee {
		return false, s.errorf("follow: %s cannot follow themselves: %w", follower, partyline.ErrInvalid)
	}
	n, err := s.w.Exec(ctx,
		`INSERT INTO follows (follower, followee, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		follower, followee, record.Now())
	if err != nil {
		return false, s.errorf("%s follow %s: %w", follower, followee, s.opts.Classify(err))
	}
	return n == 1, nil
}

// Unfollow removes the edge.
func (s *Store) Unfollow(ctx context.Context, follower, followee string) (bool, error) {
	n, err := s.w.Exec(ctx, `DELETE FROM follows WHERE follower = $1 AND followee = $2`, follower, followee)
	if err != nil {
		return false, s.errorf("%s unfollow %s: %w", follower, followee, err)
	}
	return n == 1, nil
}

// Followers lists who follows user, newest edge first.
func (s *Store) Followers(ctx context.Context, user, cursor string, limit int) ([]feed.Follow, string, error) {
	fs, next, err := s.follows(ctx, "followee", "follower", user, cursor, limit)
	if err != nil {
		return nil, "", s.errorf("followers of %s: %w", user, err)
	}
	return fs, next, nil
}

// Following lists whom user follows, newest edge first.
func (s *Store) Following(ctx context.Context, user, cursor string, limit int) ([]feed.Follow, string, error) {
	fs, next, err := s.follows(ctx, "follower", "followee", user, cursor, limit)
	if err != nil {
		return nil, "", s.errorf("following of %s: %w", user, err)
	}
	return fs, next, nil
}

func scanFollow(row Row) (feed.Follow, error) {
	var f feed.Follow
	err := row.Scan(&f.Follower, &f.Followee, &f.CreatedAt)
	return f, err
}

// follows pages the edges whose column self is user, ordered by (created_at,
// other) descending. self and other are column names, never input.
func (s *Store) follows(ctx context.Context, self, other, user, cursor string, limit int) ([]feed.Follow, string, error) {
	limit = keyset.Limit(limit)
	var (
		fs  []feed.Follow
		err error
	)
	const cols = `follower, followee, created_at`
	if cursor == "" {
		fs, err = List(ctx, s.r, scanFollow,
			`SELECT `+cols+` FROM follows WHERE `+self+` = $1
			 ORDER BY created_at DESC, `+other+` DESC LIMIT $2`, user, limit+1)
	} else {
		at, id, derr := keyset.DecodeTimeID(cursor)
		if derr != nil {
			return nil, "", derr
		}
		fs, err = List(ctx, s.r, scanFollow,
			`SELECT `+cols+` FROM follows WHERE `+self+` = $1 AND (created_at, `+other+`) < ($2, $3)
			 ORDER BY created_at DESC, `+other+` DESC LIMIT $4`, user, at, id, limit+1)
	}
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
func (s *Store) FollowCounts(ctx context.Context, user string) (followers, following int64, err error) {
	err = s.r.QueryRow(ctx,
		`SELECT (SELECT count(*) FROM follows WHERE followee = $1),
		        (SELECT count(*) FROM follows WHERE follower = $1)`, user).Scan(&followers, &following)
	if err != nil {
		return 0, 0, s.errorf("follow counts of %s: %w", user, err)
	}
	return followers, following, nil
}

// Profile returns user's counts as viewer sees them.
func (s *Store) Profile(ctx context.Context, user, viewer string) (feed.Profile, error) {
	p := feed.Profile{ID: user}
	err := s.r.QueryRow(ctx,
		`SELECT u.created_at,
		        (SELECT count(*) FROM follows WHERE followee = u.id),
		        (SELECT count(*) FROM follows WHERE follower = u.id),
		        CASE WHEN u.id = $2 THEN (SELECT count(*) FROM clips WHERE owner = u.id)
		             ELSE (SELECT count(*) FROM clips c WHERE c.owner = u.id AND `+Listable+`) END,
		        EXISTS (SELECT 1 FROM follows WHERE follower = $2 AND followee = u.id)
		 FROM users u WHERE u.id = $1`, user, viewer).
		Scan(&p.CreatedAt, &p.Followers, &p.Following, &p.Clips, &p.Followed)
	return found(s, p, err, "profile of user", user)
}

// Engagement returns the hourly engagement of listable clips since since.
// Likes are counted from clip_likes, so a like event never counts twice.
func (s *Store) Engagement(ctx context.Context, since time.Time) ([]feed.Engagement, error) {
	es, err := List(ctx, s.r, func(row Row) (feed.Engagement, error) {
		var e feed.Engagement
		err := row.Scan(&e.ClipID, &e.Owner, &e.Game, &e.DurationMS, &e.CreatedAt, &e.Hour,
			&e.Views, &e.Completes, &e.Skips, &e.Likes, &e.Shares, &e.Comments)
		return e, err
	}, s.opts.SQL.Engagement, since)
	if err != nil {
		return nil, s.errorf("engagement since %v: %w", since, err)
	}
	return es, nil
}

// ViewerHistory returns the viewer's newest events and likes, newest first.
// Like events are left out: the likes table holds every like once.
func (s *Store) ViewerHistory(ctx context.Context, viewer string, limit int) ([]feed.ViewerEvent, error) {
	if limit <= 0 {
		return []feed.ViewerEvent{}, nil
	}
	hs, err := List(ctx, s.r, func(row Row) (feed.ViewerEvent, error) {
		var h feed.ViewerEvent
		err := row.Scan(&h.ClipID, &h.Owner, &h.Game, &h.DurationMS, &h.Kind, &h.WatchedMS, &h.At)
		return h, err
	}, s.opts.SQL.ViewerHistory, viewer, limit)
	if err != nil {
		return nil, s.errorf("history of %s: %w", viewer, err)
	}
	return hs, nil
}

// SaveModel stores blob under name, replacing what was there.
func (s *Store) SaveModel(ctx context.Context, name string, blob []byte) error {
	if err := record.ID("model", name); err != nil {
		return s.errorf("save model: %w", err)
	}
	if blob == nil {
		blob = []byte{}
	}
	_, err := s.w.Exec(ctx,
		`INSERT INTO feed_models (name, blob, updated_at) VALUES ($1, $2, $3)
		 ON CONFLICT (name) DO UPDATE SET blob = excluded.blob, updated_at = excluded.updated_at`,
		name, blob, record.Now())
	if err != nil {
		return s.errorf("save model %s: %w", name, err)
	}
	return nil
}

// LoadModel returns the blob stored under name, or ErrNotFound.
func (s *Store) LoadModel(ctx context.Context, name string) ([]byte, error) {
	var blob []byte
	err := s.r.QueryRow(ctx, `SELECT blob FROM feed_models WHERE name = $1`, name).Scan(&blob)
	if err == nil && blob == nil {
		blob = []byte{}
	}
	return found(s, blob, err, "load model", name)
}
