package feed

import (
	"context"
	"time"
)

// Follow is one edge of the social graph: Follower follows Followee.
type Follow struct {
	Follower  string
	Followee  string
	CreatedAt time.Time
}

// Store is the persistence the feed needs. Implementations are safe for
// concurrent use.
type Store interface {
	// Follow makes follower follow followee. It is idempotent: created is false
	// when the edge existed. Following yourself is ErrInvalid; an unknown user
	// is ErrNotFound.
	Follow(ctx context.Context, follower, followee string) (created bool, err error)
	// Unfollow removes the edge; removed is false when there was none.
	Unfollow(ctx context.Context, follower, followee string) (removed bool, err error)
	// Followers lists who follows user, newest edge first, after the cursor
	// ("" for the first page). next is "" on the last page. An invalid cursor
	// is ErrInvalid.
	Followers(ctx context.Context, user, cursor string, limit int) (follows []Follow, next string, err error)
	// Following lists whom user follows, newest edge first, after the cursor.
	Following(ctx context.Context, user, cursor string, limit int) (follows []Follow, next string, err error)
	// FollowCounts returns how many follow user and how many user follows.
	FollowCounts(ctx context.Context, user string) (followers, following int64, err error)
}
