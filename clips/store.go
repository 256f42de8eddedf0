package clips

import (
	"context"
	"time"
)

// Clip visibilities.
const (
	Public   = "public"
	Unlisted = "unlisted"
	Private  = "private"
)

// Clip statuses.
const (
	StatusUploading  = "uploading"
	StatusProcessing = "processing"
	StatusReady      = "ready"
	StatusFailed     = "failed"
)

// Engagement event kinds.
const (
	EventView  = "view"
	EventLike  = "like"
	EventShare = "share"
	EventSkip  = "skip"
)

// Clip is a game clip: metadata in the store, media in Blobs.
type Clip struct {
	ID           string // a ULID with a "c_" prefix: sorts by creation time
	Owner        string
	Title        string
	Game         string
	Tags         []string // never nil when read back
	Visibility   string
	Status       string
	FailReason   string
	SizeBytes    int64
	ContentType  string
	SHA256       string
	DurationMS   int64
	Width        int
	Height       int
	MediaKey     string // the Blobs key of the media, "" until uploaded
	ThumbnailKey string // the Blobs key of the thumbnail, "" when none
	Likes        int64
	Views        int64
	Comments     int64
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Comment is a comment on a clip.
type Comment struct {
	ID        string // a ULID: sorts by creation time
	ClipID    string
	Author    string
	Body      string
	CreatedAt time.Time
}

// Event is one engagement event, the raw material of counters and ranking.
type Event struct {
	ClipID    string
	UserID    string
	Kind      string // EventView, EventLike, EventShare or EventSkip
	WatchedMS int64  // for views and skips: how long the clip was watched
	At        time.Time
}

// Store is the persistence clips need. Implementations are safe for
// concurrent use. Counters (Likes, Views, Comments) are maintained by the
// store in the same transaction as the change that moves them.
type Store interface {
	// CreateClip stores c. An existing id is ErrConflict; an unknown owner is ErrNotFound.
	CreateClip(ctx context.Context, c Clip) error
	// GetClip returns the clip, or ErrNotFound.
	GetClip(ctx context.Context, id string) (Clip, error)
	// UpdateClip replaces the mutable fields of c (title, game, tags,
	// visibility, status, fail reason, media fields, keys) and sets UpdatedAt.
	// Counters are left alone. A missing clip is ErrNotFound.
	UpdateClip(ctx context.Context, c Clip) error
	// DeleteClip removes the clip with its likes, comments and events, or ErrNotFound.
	DeleteClip(ctx context.Context, id string) error
	// UserClips lists the owner's clips newest first, after the cursor ("" for
	// the first page). next is "" on the last page. An invalid cursor is ErrInvalid.
	UserClips(ctx context.Context, owner, cursor string, limit int) (clips []Clip, next string, err error)
	// Like records that the user likes the clip. It is idempotent: created is
	// false when the like existed. A missing clip or user is ErrNotFound.
	Like(ctx context.Context, clipID, userID string) (created bool, err error)
	// Unlike removes a like; removed is false when there was none.
	Unlike(ctx context.Context, clipID, userID string) (removed bool, err error)
	// AddComment stores a comment. A missing clip or author is ErrNotFound.
	AddComment(ctx context.Context, c Comment) error
	// ClipComments lists a clip's comments oldest first, after the cursor.
	ClipComments(ctx context.Context, clipID, cursor string, limit int) (comments []Comment, next string, err error)
	// RecordEvent stores an engagement event; a view also counts toward Views.
	// A missing clip is ErrNotFound.
	RecordEvent(ctx context.Context, e Event) error

	// EditClip replaces what an owner edits: title, game, tags and
	// visibility, and sets UpdatedAt (now when zero). Status and media
	// fields are left alone, so an edit never undoes a concurrent
	// TransitionClip. A missing clip is ErrNotFound.
	EditClip(ctx context.Context, c Clip) error
	// TransitionClip moves the clip from status from to c.Status in one
	// conditional write, replacing the status, fail reason and media fields
	// (size, content type, sha256, duration, width, height, media and
	// thumbnail keys) and UpdatedAt (now when zero). Title, game, tags,
	// visibility and counters are left alone. When the stored status is not
	// from it changes nothing and returns ErrConflict, which is how an upload
	// is accepted only once; a missing clip is ErrNotFound.
	TransitionClip(ctx context.Context, c Clip, from string) error
	// PublicUserClips is UserClips restricted to the owner's public clips
	// whose status is ready: what everyone else may list. Same cursor
	// format and errors as UserClips.
	PublicUserClips(ctx context.Context, owner, cursor string, limit int) (clips []Clip, next string, err error)
	// ClipsWithStatus returns up to limit clips in the status, oldest
	// first: how processing resumes after a restart.
	ClipsWithStatus(ctx context.Context, status string, limit int) ([]Clip, error)
	// GetComment returns the comment, or ErrNotFound.
	GetComment(ctx context.Context, id string) (Comment, error)
	// DeleteComment removes the comment and uncounts it, or ErrNotFound.
	DeleteComment(ctx context.Context, id string) error
}
