package feed

import (
	"context"
	"time"

	"github.com/partyline/partyline/clips"
)

// Follow is one edge of the social graph: Follower follows Followee.
type Follow struct {
	Follower  string
	Followee  string
	CreatedAt time.Time
}

// Profile is what GET /v1/users/{id} shows of a user.
type Profile struct {
	ID        string
	CreatedAt time.Time
	Followers int64
	Following int64
	// Clips counts the clips the viewer may see: every clip of their own
	// when the viewer is the user, and public ready clips otherwise.
	Clips int64
	// Followed is whether the viewer follows the user.
	Followed bool
}

// Engagement is a clip's engagement in one hour, the raw material the
// trending scores are rebuilt from. Only public ready clips have it.
type Engagement struct {
	ClipID     string
	Owner      string
	Game       string
	DurationMS int64
	CreatedAt  time.Time // the clip's
	Hour       time.Time // the start of the hour the engagement happened in
	Views      int64     // view events
	Completes  int64     // view events that watched at least 90% of the clip
	Skips      int64     // skip events
	Likes      int64     // likes given in the hour (not like events, which may repeat them)
	Shares     int64
	Comments   int64
}

// ViewerEvent is one engagement of a viewer with a clip, with what ranking
// needs to know of the clip.
type ViewerEvent struct {
	ClipID     string
	Owner      string
	Game       string
	DurationMS int64
	Kind       string // a clips event kind; likes come from the likes table as EventLike
	WatchedMS  int64
	At         time.Time
}

// CandidateQuery names the clips a for-you list is ranked from, one field
// group per source. A zero count or an empty list asks nothing of that
// source.
type CandidateQuery struct {
	// Viewer and Following ask for the Following newest listable clips of
	// the users Viewer follows: the first page of FollowingClips.
	Viewer    string
	Following int
	// Creators and PerCreator ask for CreatorClips(Creators, PerCreator).
	Creators   []string
	PerCreator int
	// Games and PerGame ask for GameClips(Games, PerGame).
	Games   []string
	PerGame int
	// IDs asks for ListableClips(IDs).
	IDs []string
}

// CandidateClip is what ranking needs of a listable clip offered for a
// for-you list. The page shows the clip as the store has it when the page
// is read (ListableClips), not as it was when the list was built.
type CandidateClip struct {
	ID         string
	Owner      string
	Game       string
	DurationMS int64
	CreatedAt  time.Time
}

// Candidates are the clips a CandidateQuery found. Each clip appears once,
// in the first of Following, Creators, Games and IDs whose source offered
// it; within a field the order is unspecified.
type Candidates struct {
	Following, Creators, Games, IDs []CandidateClip
}

// Store is the persistence the feed needs. Implementations are safe for
// concurrent use. A listable clip is a public clip whose status is ready:
// nothing else ever appears in a feed, so every method that returns clips
// for a feed returns listable clips only.
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

	// Profile returns user's counts as viewer sees them (see Profile.Clips),
	// or ErrNotFound for an unknown user.
	Profile(ctx context.Context, user, viewer string) (Profile, error)
	// FollowingClips lists the listable clips of the users viewer follows,
	// newest first by (CreatedAt, ID), after the cursor ("" for the first
	// page). next is "" on the last page. An invalid cursor is ErrInvalid.
	// Clips made after the first page was read sort before the cursor, so
	// paging never repeats or skips a clip.
	FollowingClips(ctx context.Context, viewer, cursor string, limit int) (cs []clips.Clip, next string, err error)
	// GameClips returns up to perGame of the newest listable clips of each game.
	GameClips(ctx context.Context, games []string, perGame int) ([]clips.Clip, error)
	// CreatorClips returns up to perOwner of the newest listable clips of each owner.
	CreatorClips(ctx context.Context, owners []string, perOwner int) ([]clips.Clip, error)
	// ListableClips returns the listable clips among ids, in no particular
	// order; ids of missing or unlisted clips are left out.
	ListableClips(ctx context.Context, ids []string) ([]clips.Clip, error)
	// Candidates answers a CandidateQuery: the clips FollowingClips (first
	// page), CreatorClips, GameClips and ListableClips return for it, each
	// once. A store should answer it in one round trip: it is the store's
	// whole share of building a for-you list.
	Candidates(ctx context.Context, q CandidateQuery) (Candidates, error)
	// Engagement returns the hourly engagement of listable clips since the
	// given time, in no particular order.
	Engagement(ctx context.Context, since time.Time) ([]Engagement, error)
	// ViewerHistory returns the viewer's newest engagement with any clip
	// (events and likes), newest first, at most limit of them.
	ViewerHistory(ctx context.Context, viewer string, limit int) ([]ViewerEvent, error)

	// SaveModel stores blob under name, replacing what was there.
	SaveModel(ctx context.Context, name string, blob []byte) error
	// LoadModel returns the blob stored under name, or ErrNotFound.
	LoadModel(ctx context.Context, name string) ([]byte, error)
}
