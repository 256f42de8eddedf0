package clips

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime/wire"
)

// Publication kinds of the clip and user namespaces.
const (
	KindStats = "clip.stats"
	KindNew   = "clip.new"
)

// Defaults of Options.
const (
	DefaultMaxUploadBytes = 500 << 20
	DefaultStatsInterval  = 500 * time.Millisecond
	DefaultProcessTimeout = 2 * time.Minute
	DefaultProcessWorkers = 2
	DefaultUploadExpiry   = 24 * time.Hour
	DefaultMaxLimiters    = 10000
)

// Notifier appends a publication to a channel's stream and fans it out.
// *realtime.Node satisfies it. It checks no permissions. It may block on
// the broker; errors wrap partyline.ErrUnavailable.
type Notifier interface {
	// Publish publishes data on ch as a msg of kind; an empty id means a
	// new message id.
	Publish(ctx context.Context, ch, id, kind, from string, data json.RawMessage) (wire.Position, error)
}

// Observer receives every engagement event once it is stored (a view, and
// a like when it was new) and every stored comment. The feed implements
// it. Its methods run on the request path, so they must not block.
type Observer interface {
	Observe(Event)
	ObserveComment(Comment)
}

// noObserver is the Observer of a Service that nobody listens to.
type noObserver struct{}

func (noObserver) Observe(Event)          {}
func (noObserver) ObserveComment(Comment) {}

// FollowersFunc lists the ids of user's followers a page at a time, after
// the cursor ("" first), with next "" on the last page. cmd/partyline
// adapts feed.Store.Followers to it; feed imports clips, so clips cannot
// name feed's types.
type FollowersFunc func(ctx context.Context, user, cursor string, limit int) (ids []string, next string, err error)

// Options configures a Service. Store, Blobs and Notifier are required.
type Options struct {
	// Store keeps clips, likes, comments and events. Required.
	Store Store
	// Blobs keeps media and thumbnails. Required.
	Blobs Blobs
	// UploadDir keeps resumable (tus) uploads while they are in progress.
	// Empty means resumable uploads are off: /v1/uploads/ answers 404.
	UploadDir string
	// Notifier publishes clip.stats and clip.new. Required.
	Notifier Notifier
	// Followers pages a creator's followers for clip.new. Nil means no
	// clip.new fan-out.
	Followers FollowersFunc
	// MaxUploadBytes caps one clip's media. Zero means 500 MiB.
	MaxUploadBytes int64
	// UploadLimit limits clips created per user. Zero means 20 per hour,
	// 10 at once.
	UploadLimit RateLimit
	// LikeLimit limits likes and unlikes per user. Zero means 120 per
	// minute, 30 at once.
	LikeLimit RateLimit
	// CommentLimit limits comments per user. Zero means 20 per minute, 5
	// at once.
	CommentLimit RateLimit
	// MaxLimiters bounds the per-user limiters kept for each limit. Zero
	// means 10000; past it, idle limiters are dropped first.
	MaxLimiters int
	// StatsInterval is the least time between two clip.stats of one clip.
	// Zero means 500 ms.
	StatsInterval time.Duration
	// NoMediaTools turns processing off even when ffprobe and ffmpeg are
	// installed: clips become ready with unknown duration and no thumbnail.
	NoMediaTools bool
	// FFprobe and FFmpeg are the tools' paths. Empty means "ffprobe" and
	// "ffmpeg" looked up on PATH.
	FFprobe, FFmpeg string
	// ProcessTimeout bounds the processing of one clip. Zero means 2 minutes.
	ProcessTimeout time.Duration
	// ProcessWorkers is how many clips are processed at once. Zero means 2.
	ProcessWorkers int
	// UploadExpiry is how long an unfinished resumable upload is kept.
	// Zero means 24 hours.
	UploadExpiry time.Duration
	// Observer learns from every stored engagement event and comment: how
	// the feed learns as engagement happens. Nil means nobody listens.
	Observer Observer
	// Logger receives failures off the request path. Nil means slog.Default().
	Logger *slog.Logger
}

// Service is the clip domain: the REST API, uploads, processing, live
// counters and the clip namespace of the gateway. It is safe for
// concurrent use.
type Service struct {
	store     Store
	blobs     Blobs
	followers FollowersFunc
	log       *slog.Logger
	opts      Options
	notifier  Notifier
	running   atomic.Bool

	ffprobe, ffmpeg string // "" when processing is limited

	uploads, likes, comments *limiter

	tus *tusStore // nil when resumable uploads are off

	// receiving holds the clips whose media is being received in this
	// process, so a concurrent second upload is refused at once.
	recvMu    sync.Mutex
	receiving map[string]bool

	// work queues: clips to process and ready clips to announce, guarded by
	// workMu; wake* signal Run's loops.
	workMu     sync.Mutex
	toProcess  []string
	queued     map[string]bool
	toAnnounce []Clip
	wakeProc   chan struct{}
	wakeFan    chan struct{}

	stats *coalescer
}

// New builds a Service. It checks whether ffprobe and ffmpeg are on PATH
// and starts nothing: Run does the work off the request path.
func New(opts Options) (*Service, error) {
	switch {
	case opts.Store == nil:
		return nil, errors.New("clips: Options.Store is required")
	case opts.Blobs == nil:
		return nil, errors.New("clips: Options.Blobs is required")
	case opts.Notifier == nil:
		return nil, errors.New("clips: Options.Notifier is required")
	case opts.MaxUploadBytes < 0, opts.StatsInterval < 0, opts.ProcessTimeout < 0, opts.ProcessWorkers < 0,
		opts.UploadExpiry < 0, opts.MaxLimiters < 0:
		return nil, errors.New("clips: Options must not be negative")
	}
	if opts.Observer == nil {
		opts.Observer = noObserver{}
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if opts.MaxUploadBytes == 0 {
		opts.MaxUploadBytes = DefaultMaxUploadBytes
	}
	def(&opts.StatsInterval, DefaultStatsInterval)
	def(&opts.ProcessTimeout, DefaultProcessTimeout)
	def(&opts.UploadExpiry, DefaultUploadExpiry)
	if opts.ProcessWorkers == 0 {
		opts.ProcessWorkers = DefaultProcessWorkers
	}
	if opts.MaxLimiters == 0 {
		opts.MaxLimiters = DefaultMaxLimiters
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Service{
		notifier:  opts.Notifier,
		store:     opts.Store,
		blobs:     opts.Blobs,
		followers: opts.Followers,
		log:       opts.Logger,
		opts:      opts,
		uploads:   newLimiter("uploads", opts.UploadLimit, RateLimit{Burst: 10, Per: time.Hour / 2}, opts.MaxLimiters),
		likes:     newLimiter("likes", opts.LikeLimit, RateLimit{Burst: 30, Per: 15 * time.Second}, opts.MaxLimiters),
		comments:  newLimiter("comments", opts.CommentLimit, RateLimit{Burst: 5, Per: 15 * time.Second}, opts.MaxLimiters),
		receiving: map[string]bool{},
		queued:    map[string]bool{},
		wakeProc:  make(chan struct{}, 1),
		wakeFan:   make(chan struct{}, 1),
	}
	s.stats = newCoalescer(opts.StatsInterval)
	if !opts.NoMediaTools {
		s.ffprobe, s.ffmpeg = lookTool(opts.FFprobe, "ffprobe"), lookTool(opts.FFmpeg, "ffmpeg")
		if s.ffprobe == "" || s.ffmpeg == "" {
			s.ffprobe, s.ffmpeg = "", ""
		}
	}
	if opts.UploadDir != "" {
		t, err := newTusStore(opts.UploadDir)
		if err != nil {
			return nil, err
		}
		s.tus = t
	}
	return s, nil
}

func lookTool(path, name string) string {
	if path == "" {
		path = name
	}
	p, err := exec.LookPath(path)
	if err != nil {
		return ""
	}
	return p
}

// MediaTools reports whether ffprobe and ffmpeg are in use.
func (s *Service) MediaTools() bool { return s.ffprobe != "" }

// publish sends one publication through the notifier.
func (s *Service) publish(ctx context.Context, ch, kind string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = s.notifier.Publish(ctx, ch, "", kind, "", b)
	return err
}

// newClipID returns a new time-sortable clip id.
func newClipID() string { return "c_" + ulid.Make().String() }

// depError wraps a failure of a dependency (store, blobs): a 500 unless it
// wraps a domain kind, and never shown to the client.
func depError(op string, err error) error {
	return fmt.Errorf("clips: %s: %w", op, err)
}

// canView reports whether user ("" when anonymous) may see c: the owner
// always; anyone else only a ready clip that is public or unlisted.
func canView(c Clip, user string) bool {
	if user != "" && c.Owner == user {
		return true
	}
	return c.Status == StatusReady && (c.Visibility == Public || c.Visibility == Unlisted)
}

// errNoClip is the one answer for a clip that does not exist and a clip
// the caller may not see or change, so neither can be told apart.
var errNoClip = partyline.Errorf(partyline.ErrNotFound, "no such clip")

// viewable returns the clip when user may see it, and errNoClip otherwise.
func (s *Service) viewable(ctx context.Context, id, user string) (Clip, error) {
	if !validClipID(id) {
		return Clip{}, errNoClip
	}
	c, err := s.store.GetClip(ctx, id)
	if errors.Is(err, partyline.ErrNotFound) {
		return Clip{}, errNoClip
	}
	if err != nil {
		return Clip{}, depError("get clip "+id, err)
	}
	if !canView(c, user) {
		return Clip{}, errNoClip
	}
	return c, nil
}

// owned returns the clip when user owns it, and errNoClip otherwise.
func (s *Service) owned(ctx context.Context, id, user string) (Clip, error) {
	c, err := s.viewable(ctx, id, user)
	if err != nil {
		return Clip{}, err
	}
	if c.Owner != user {
		return Clip{}, errNoClip
	}
	return c, nil
}

// validClipID checks the shape of a clip id before the store is asked: a
// "c_" prefix and the id alphabet [A-Za-z0-9_-], at most 64 bytes (what a
// clip: channel name can carry).
func validClipID(id string) bool {
	return strings.HasPrefix(id, "c_") && wire.ValidID(id)
}
