package feed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/clips"
)

// Options configures a Service.
type Options struct {
	// Store is the persistence. Required.
	Store Store
	// Logger receives background errors (saving the model, resyncing).
	// Nil means discard.
	Logger *slog.Logger
	// Registerer gets the feed's metrics. Nil means no metrics.
	Registerer prometheus.Registerer
	// Now is the clock. Nil means time.Now.
	Now func() time.Time

	// Model holds the ranking model's hyperparameters; zero fields take
	// their documented defaults.
	Model ModelOptions
	// ModelName is the name the model is saved under. Empty means "for-you".
	ModelName string
	// QueueSize bounds the engagement events waiting to be learned from;
	// Observe drops events when it is full. Zero means 4096.
	QueueSize int
	// SaveInterval is how often Run saves the model when it has learned
	// something; it also saves when it stops. Zero means one minute.
	SaveInterval time.Duration
	// BoardInterval is how often Run rebuilds the trending boards from the
	// in-memory scores. Zero means 10 seconds.
	BoardInterval time.Duration
	// ResyncInterval is how often Run rebuilds the trending scores and clip
	// counts from the store, which brings in engagement recorded on other
	// nodes. Zero means 10 minutes; negative means only at start.
	ResyncInterval time.Duration

	// TrendingHalfLife is the half-life of engagement points. Zero means 6 hours.
	TrendingHalfLife time.Duration
	// TrendingGravity is the exponent of a clip's age. Zero means 1.5.
	TrendingGravity float64
	// TrendingWindow is how far back trending looks. Zero means 72 hours.
	TrendingWindow time.Duration
	// TrendingSize is how many clips a trending board keeps, overall and
	// per game. Zero means 500.
	TrendingSize int

	// SnapshotTTL is how long a ranked list stays pageable after its first
	// page. Zero means 15 minutes.
	SnapshotTTL time.Duration
	// MaxSnapshots bounds the ranked lists kept for paging; the least
	// recently used goes first. Zero means 2048.
	MaxSnapshots int
	// ProfileTTL is how long a viewer's taste, loaded from the store and
	// then kept up to date by this node's events, is trusted before it is
	// loaded again. Zero means 5 minutes.
	ProfileTTL time.Duration
	// MaxProfiles bounds the viewer profiles kept in memory. Zero means 100000.
	MaxProfiles int
	// ForYouSize caps the ranked list of one for-you snapshot. Zero means 300.
	ForYouSize int
}

func (o Options) withDefaults() (Options, error) {
	if o.Store == nil {
		return o, fmt.Errorf("feed: Options.Store is required: %w", partyline.ErrInvalid)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ModelName == "" {
		o.ModelName = "for-you"
	}
	durations := []struct {
		v *time.Duration
		d time.Duration
	}{
		{&o.SaveInterval, time.Minute},
		{&o.BoardInterval, 10 * time.Second},
		{&o.ResyncInterval, 10 * time.Minute},
		{&o.TrendingHalfLife, 6 * time.Hour},
		{&o.TrendingWindow, 72 * time.Hour},
		{&o.SnapshotTTL, 15 * time.Minute},
		{&o.ProfileTTL, 5 * time.Minute},
	}
	for _, d := range durations {
		if *d.v == 0 {
			*d.v = d.d
		}
	}
	ints := []struct {
		v *int
		d int
	}{
		{&o.QueueSize, 4096},
		{&o.TrendingSize, 500},
		{&o.MaxSnapshots, 2048},
		{&o.MaxProfiles, 100000},
		{&o.ForYouSize, 300},
	}
	for _, i := range ints {
		if *i.v == 0 {
			*i.v = i.d
		}
		if *i.v < 0 {
			return o, fmt.Errorf("feed: negative size option %d: %w", *i.v, partyline.ErrInvalid)
		}
	}
	if o.TrendingGravity == 0 {
		o.TrendingGravity = 1.5
	}
	if o.TrendingGravity < 0 || o.TrendingHalfLife < 0 || o.TrendingWindow < 0 || o.SaveInterval < 0 ||
		o.BoardInterval < 0 || o.SnapshotTTL < 0 || o.ProfileTTL < 0 {
		return o, fmt.Errorf("feed: negative trending, interval or TTL option: %w", partyline.ErrInvalid)
	}
	return o, nil
}

// observation is one queued input of the learner. seq numbers
// observations in the order they were queued, which is after their event
// was stored: see Service.synced.
type observation struct {
	ev      clips.Event
	comment bool
	seq     uint64
}

// Service serves the feeds and learns the ranking model. Build it with New,
// start Run, and call Observe for every engagement event.
type Service struct {
	opts    Options
	store   Store
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics

	// mu guards r, dirty and synced. Requests hold it shared while they
	// score; Run holds it exclusively while it learns a batch of events.
	mu    sync.RWMutex
	r     *ranker
	dirty bool
	// synced is the last observation queued before the newest resync read
	// the store. Those observations were stored before the read, so the
	// resync counted them: learning from them again must not count them
	// twice. (One stored just before the read and queued just after it is
	// still counted twice: the window is the few microseconds between a
	// handler's insert and its Observe.)
	synced uint64

	board   atomic.Pointer[board]
	boardMu sync.Mutex // one board build at a time

	events chan observation
	seq    atomic.Uint64 // the last observation queued
	// started is closed once Run has read the store for the first time.
	started chan struct{}
	snaps   *snapshots
	done    atomic.Int64 // events learned from, for tests and metrics
}

// New returns a Service. It starts nothing and reads nothing: Run loads the
// saved model and the trending scores.
func New(opts Options) (*Service, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	r, err := newRanker(opts.Model, trendParams{
		halfLife: opts.TrendingHalfLife,
		gravity:  opts.TrendingGravity,
		window:   opts.TrendingWindow,
	})
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Service{
		opts:    opts,
		store:   opts.Store,
		log:     opts.Logger,
		now:     opts.Now,
		metrics: m,
		r:       r,
		events:  make(chan observation, opts.QueueSize),
		started: make(chan struct{}),
		snaps:   newSnapshots(opts.MaxSnapshots, opts.SnapshotTTL),
	}, nil
}

// Observe queues an engagement event for the model and the trending
// scores. Call it after the event is stored (clips.Store.RecordEvent), and
// for a like after a like is created: like events made by PUT on a like
// that existed should not be observed. It never blocks: when the queue is
// full the event is dropped and counted. It is safe to call at any time,
// before Run starts and after it ends.
func (f *Service) Observe(ev clips.Event) {
	f.enqueue(observation{ev: ev})
}

// ObserveComment counts a stored comment toward its clip's trending
// score. Like Observe, it never blocks.
func (f *Service) ObserveComment(c clips.Comment) {
	f.enqueue(observation{ev: clips.Event{ClipID: c.ClipID, UserID: c.Author, At: c.CreatedAt}, comment: true})
}

func (f *Service) enqueue(o observation) {
	if o.ev.ClipID == "" || o.ev.UserID == "" {
		return
	}
	if o.ev.At.IsZero() {
		o.ev.At = f.now()
	}
	o.seq = f.seq.Add(1)
	select {
	case f.events <- o:
		f.metrics.queued.Inc()
	default:
		f.metrics.dropped.Inc()
	}
}

// Run loads the saved model and rebuilds the trending scores from the
// store, then learns from observed events until ctx ends, rebuilding the
// trending boards every BoardInterval, saving the model every SaveInterval
// and resyncing from the store every ResyncInterval. When ctx ends it
// saves the model once more (bounded by ten seconds) and returns nil.
// Failures of the store are logged and retried, never returned: the feeds
// keep serving from what is in memory. Run must be called at most once.
func (f *Service) Run(ctx context.Context) error {
	loaded := f.load(ctx)
	f.resync(ctx)
	f.refreshBoard()
	close(f.started)

	tick := time.NewTicker(f.opts.BoardInterval)
	defer tick.Stop()
	lastSave, lastSync := f.now(), f.now()
	batch := make([]observation, 0, 256)
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if loaded {
				f.save(sctx)
			}
			return nil
		case o := <-f.events:
			batch = append(batch[:0], o)
		drain:
			for len(batch) < cap(batch) {
				select {
				case o := <-f.events:
					batch = append(batch, o)
				default:
					break drain
				}
			}
			f.learn(ctx, batch)
		case <-tick.C:
			f.refreshBoard()
			now := f.now()
			if f.opts.ResyncInterval > 0 && now.Sub(lastSync) >= f.opts.ResyncInterval {
				f.resync(ctx)
				lastSync = now
			}
			if now.Sub(lastSave) >= f.opts.SaveInterval {
				if !loaded {
					// Never overwrite a saved model that could not be read.
					loaded = f.load(ctx)
				}
				if loaded {
					f.save(ctx)
				}
				lastSave = now
			}
		}
	}
}

// load reads the saved model. It reports whether the model may be saved:
// true when it was loaded or none was saved yet, false when reading failed.
func (f *Service) load(ctx context.Context) bool {
	blob, err := f.store.LoadModel(ctx, f.opts.ModelName)
	switch {
	case errors.Is(err, partyline.ErrNotFound):
		return true
	case err != nil:
		f.log.Error("feed: load the ranking model; learning from scratch until it can be read", "err", err)
		return false
	}
	m, err := newModel(f.opts.Model)
	if err == nil {
		err = m.UnmarshalBinary(blob)
	}
	if err != nil {
		// A model saved with other settings is replaced, not kept.
		f.log.Warn("feed: the saved ranking model is unusable; learning from scratch", "err", err)
		return true
	}
	f.mu.Lock()
	f.r.model = m
	f.mu.Unlock()
	return true
}

// Save writes the model to the store now. Run saves on its own; Save is
// for tests and tools.
func (f *Service) Save(ctx context.Context) error {
	f.mu.RLock()
	blob, err := f.r.model.MarshalBinary()
	f.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("feed: encode model: %w", err)
	}
	if err := f.store.SaveModel(ctx, f.opts.ModelName, blob); err != nil {
		return fmt.Errorf("feed: save model: %w", err)
	}
	return nil
}

// Load replaces the model with the saved one, for tests and tools; Run
// loads on its own. No saved model is ErrNotFound.
func (f *Service) Load(ctx context.Context) error {
	blob, err := f.store.LoadModel(ctx, f.opts.ModelName)
	if err != nil {
		return fmt.Errorf("feed: load model: %w", err)
	}
	m, err := newModel(f.opts.Model)
	if err != nil {
		return err
	}
	if err := m.UnmarshalBinary(blob); err != nil {
		return err
	}
	f.mu.Lock()
	f.r.model = m
	f.mu.Unlock()
	return nil
}

func (f *Service) save(ctx context.Context) {
	f.mu.Lock()
	dirty := f.dirty
	f.dirty = false
	f.mu.Unlock()
	if !dirty {
		return
	}
	if err := f.Save(ctx); err != nil {
		f.metrics.saves.WithLabelValues("error").Inc()
		f.log.Error("feed: save the ranking model", "err", err)
		f.mu.Lock()
		f.dirty = true
		f.mu.Unlock()
		return
	}
	f.metrics.saves.WithLabelValues("ok").Inc()
}

// resync rebuilds clip counts and trending points from the store's
// engagement over the trending window. Learned weights and profiles are
// left alone.
func (f *Service) resync(ctx context.Context) {
	now := f.now()
	queued := f.seq.Load()
	es, err := f.store.Engagement(ctx, now.Add(-f.opts.TrendingWindow))
	if err != nil {
		f.log.Error("feed: rebuild trending from the store", "err", err)
		return
	}
	fresh := map[string]*clipState{}
	creators := map[string]*counts{}
	tmp := &ranker{clips: fresh, creators: creators, trend: f.r.trend}
	for _, e := range es {
		cs := tmp.clip(clipInfo{ID: e.ClipID, Owner: e.Owner, Game: e.Game, DurationMS: e.DurationMS, CreatedAt: e.CreatedAt})
		d := counts{views: float64(e.Views), completes: float64(e.Completes), skips: float64(e.Skips),
			likes: float64(e.Likes), shares: float64(e.Shares), comments: float64(e.Comments)}
		cs.stats.add(d)
		cr := creators[e.Owner]
		if cr == nil {
			cr = &counts{}
			creators[e.Owner] = cr
		}
		cr.add(d)
		// Points are dated the middle of their hour.
		tmp.addTrend(cs, tmp.trend.points(d), e.Hour.Add(30*time.Minute))
	}
	f.mu.Lock()
	// Keep what is known of clips with no engagement in the window.
	for id, cs := range f.r.clips {
		if _, ok := fresh[id]; !ok && cs.stats == (counts{}) {
			fresh[id] = cs
		}
	}
	f.r.clips, f.r.creators = fresh, creators
	f.synced = queued
	f.mu.Unlock()
}

// refreshBoard rebuilds the trending boards from the in-memory scores and
// forgets clips that left the window.
func (f *Service) refreshBoard() *board {
	f.boardMu.Lock()
	defer f.boardMu.Unlock()
	now := f.now()
	f.mu.Lock()
	f.r.prune(now)
	f.mu.Unlock()
	f.mu.RLock()
	scores := f.r.trendingScores(now)
	f.mu.RUnlock()
	b := buildBoard(scores, now, f.opts.TrendingSize)
	f.board.Store(b)
	f.metrics.trending.Set(float64(len(scores)))
	return b
}

// currentBoard returns the newest trending board, building the first one
// when Run has not yet.
func (f *Service) currentBoard() *board {
	if b := f.board.Load(); b != nil {
		return b
	}
	return f.refreshBoard()
}

// learn applies a batch of observations: it fetches what it lacks of the
// clips and the viewers from the store, then learns under the lock.
func (f *Service) learn(ctx context.Context, batch []observation) {
	now := f.now()
	var missing []string
	viewers := map[string]time.Time{} // viewers whose profile must be loaded, with their first event
	f.mu.RLock()
	for _, o := range batch {
		if _, ok := f.r.clips[o.ev.ClipID]; !ok {
			missing = append(missing, o.ev.ClipID)
		}
		if o.comment {
			continue
		}
		p := f.r.profiles[o.ev.UserID]
		if p == nil || now.Sub(p.loaded) > f.opts.ProfileTTL {
			if at, ok := viewers[o.ev.UserID]; !ok || o.ev.At.Before(at) {
				viewers[o.ev.UserID] = o.ev.At
			}
		}
	}
	f.mu.RUnlock()

	infos := map[string]clipInfo{}
	if len(missing) > 0 {
		cs, err := f.store.ListableClips(ctx, missing)
		if err != nil {
			f.log.Error("feed: look up clips of engagement events", "err", err)
		}
		for _, c := range cs {
			infos[c.ID] = infoOf(c)
		}
	}
	profiles := map[string]*profile{}
	for v, first := range viewers {
		p, err := f.loadProfile(ctx, v, first, now)
		if err != nil {
			f.log.Error("feed: load a viewer's history", "err", err)
			continue
		}
		profiles[v] = p
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	for v, p := range profiles {
		f.putProfileLocked(v, p)
	}
	for _, o := range batch {
		cs := f.r.clips[o.ev.ClipID]
		var info clipInfo
		switch {
		case cs != nil:
			info = cs.info
		default:
			var ok bool
			if info, ok = infos[o.ev.ClipID]; !ok {
				continue // not listable: feeds never show it, so nothing to learn
			}
		}
		counted := o.seq <= f.synced // by the newest resync
		if o.comment {
			if !counted {
				f.r.observeComment(info, o.ev.At)
			}
			continue
		}
		p := f.r.profiles[o.ev.UserID]
		if p == nil {
			p = newProfile(now)
			f.putProfileLocked(o.ev.UserID, p)
		}
		f.r.observe(o.ev.UserID, p, info, o.ev.Kind, o.ev.WatchedMS, o.ev.At, !counted)
		f.dirty = true
		f.metrics.learned.Inc()
	}
	f.done.Add(int64(len(batch)))
}

// historySize is how much of a viewer's history a profile is built from.
const historySize = 500

// loadProfile builds a viewer's profile from their stored history before
// the given time (events at or after it are about to be learned from).
func (f *Service) loadProfile(ctx context.Context, viewer string, before, now time.Time) (*profile, error) {
	hs, err := f.store.ViewerHistory(ctx, viewer, historySize)
	if err != nil {
		return nil, err
	}
	p := newProfile(now)
	for i := len(hs) - 1; i >= 0; i-- { // oldest first
		h := hs[i]
		if !h.At.Before(before) {
			continue
		}
		info := clipInfo{ID: h.ClipID, Owner: h.Owner, Game: h.Game, DurationMS: h.DurationMS}
		p.move(judge(h.Kind, h.WatchedMS, h.DurationMS), info, h.ClipID)
	}
	p.favs = top(p.games, favouriteGames)
	return p, nil
}

// putProfileLocked stores a profile, evicting some when there are too
// many. f.mu must be held exclusively.
func (f *Service) putProfileLocked(viewer string, p *profile) {
	if _, ok := f.r.profiles[viewer]; !ok && len(f.r.profiles) >= f.opts.MaxProfiles {
		n := max(1, f.opts.MaxProfiles/8)
		for k := range f.r.profiles { // map order is random enough
			delete(f.r.profiles, k)
			if n--; n == 0 {
				break
			}
		}
	}
	f.r.profiles[viewer] = p
}

// ensureProfile makes sure a fresh profile of viewer is in memory.
func (f *Service) ensureProfile(ctx context.Context, viewer string) error {
	now := f.now()
	f.mu.RLock()
	p := f.r.profiles[viewer]
	fresh := p != nil && now.Sub(p.loaded) <= f.opts.ProfileTTL
	f.mu.RUnlock()
	if fresh {
		return nil
	}
	p, err := f.loadProfile(ctx, viewer, now.Add(time.Hour), now)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.putProfileLocked(viewer, p)
	f.mu.Unlock()
	return nil
}

// learned returns how many observations Run has processed.
func (f *Service) learned() int64 { return f.done.Load() }
