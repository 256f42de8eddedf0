package feed

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/partyline/partyline/clips"
)

// clipInfo is what ranking knows of a clip.
type clipInfo struct {
	ID         string
	Owner      string
	Game       string
	DurationMS int64
	CreatedAt  time.Time
}

func infoOf(c clips.Clip) clipInfo {
	return clipInfo{ID: c.ID, Owner: c.Owner, Game: c.Game, DurationMS: c.DurationMS, CreatedAt: c.CreatedAt}
}

// counts are engagement counts of a clip or a creator.
type counts struct {
	views, completes, skips, likes, shares, comments float64
}

// clipState is a clip as ranking sees it: its facts, the engagement seen,
// and its trending value, a sum of weighted engagement decayed to stamp.
type clipState struct {
	info  clipInfo
	stats counts
	trend float64
	stamp time.Time
	last  time.Time // the newest engagement
}

// profile is a viewer's taste as their engagement shows it.
type profile struct {
	games    map[string]float64
	creators map[string]float64
	seen     map[string]bool // clips watched in full
	loaded   time.Time
	favs     []string // the top games, kept up to date by apply
}

// favourites returns the viewer's top games, highest first. It only reads,
// so scorers may call it under a shared lock.
func (p *profile) favourites() []string { return p.favs }

func newProfile(at time.Time) *profile {
	return &profile{games: map[string]float64{}, creators: map[string]float64{}, seen: map[string]bool{}, loaded: at}
}

// top returns up to n keys of m with the highest positive values, highest first.
func top(m map[string]float64, n int) []string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if v > 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			if m[a] > m[b] {
				return -1
			}
			return 1
		}
		if a < b {
			return -1
		}
		return 1
	})
	return keys[:min(n, len(keys))]
}

// Profiles keep a bounded number of clips seen and of entries per map.
const (
	maxSeen          = 2000
	maxProfileValues = 256
)

// outcome is what one engagement event says about the viewer and the clip.
type outcome struct {
	label    float64 // the training label: 1 engaged, 0 not
	affinity float64 // how much it moves the viewer's taste for the game and creator
	complete bool
	trained  bool // whether the model learns from it
}

// completedView reports whether watching watchedMS of a clip of durationMS
// counts as watching it in full: 90% of a clip of known length, or 10 s.
func completedView(watchedMS, durationMS int64) bool {
	if durationMS > 0 {
		return watchedMS*10 >= durationMS*9
	}
	return watchedMS >= 10000
}

// judge maps an event to its outcome. Likes and shares are positive, a
// completed view is positive, a skip or a view abandoned early is
// negative, and a view abandoned midway is a weaker negative.
func judge(kind string, watchedMS, durationMS int64) outcome {
	switch kind {
	case clips.EventLike:
		return outcome{label: 1, affinity: 2, trained: true}
	case clips.EventShare:
		return outcome{label: 1, affinity: 2, trained: true}
	case clips.EventSkip:
		return outcome{label: 0, affinity: -0.3, trained: true}
	case clips.EventView:
		if completedView(watchedMS, durationMS) {
			return outcome{label: 1, affinity: 1, complete: true, trained: true}
		}
		frac := 0.0
		if durationMS > 0 {
			frac = float64(watchedMS) / float64(durationMS)
		} else {
			frac = float64(watchedMS) / 10000
		}
		if frac < 0.25 {
			return outcome{label: 0, affinity: -0.2, trained: true}
		}
		return outcome{label: 0, affinity: 0.2 * frac, trained: true}
	}
	return outcome{}
}

// apply moves the profile by one event on clip.
func (p *profile) apply(o outcome, info clipInfo, clipID string) {
	p.move(o, info, clipID)
	if o.affinity != 0 {
		p.favs = top(p.games, favouriteGames)
	}
}

// move is apply without bringing the favourite games up to date, for
// replaying a history: the caller sets favs once at the end.
func (p *profile) move(o outcome, info clipInfo, clipID string) {
	if o.affinity != 0 {
		bump(p.games, info.Game, o.affinity)
		bump(p.creators, info.Owner, o.affinity)
	}
	if o.complete {
		if len(p.seen) >= maxSeen {
			for k := range p.seen { // drop an arbitrary one
				delete(p.seen, k)
				break
			}
		}
		p.seen[clipID] = true
	}
}

func bump(m map[string]float64, k string, v float64) {
	if k == "" {
		return
	}
	if _, ok := m[k]; !ok && len(m) >= maxProfileValues {
		// Forget the weakest taste to make room.
		weakest, wv := "", math.Inf(1)
		for key, val := range m {
			if math.Abs(val) < wv {
				weakest, wv = key, math.Abs(val)
			}
		}
		delete(m, weakest)
	}
	m[k] += v
}

// ranker is the state ranking needs: the model, what is known of clips,
// creators and viewers, and the trending parameters. It is not safe for
// concurrent use: Service guards it with a lock, and the evaluation uses it
// from one goroutine.
type ranker struct {
	model    *model
	clips    map[string]*clipState
	creators map[string]*counts
	profiles map[string]*profile
	trend    trendParams
	feats    []uint64 // scratch of observe, which runs under the write lock
}

func newRanker(mo ModelOptions, tp trendParams) (*ranker, error) {
	m, err := newModel(mo)
	if err != nil {
		return nil, err
	}
	return &ranker{
		model:    m,
		clips:    map[string]*clipState{},
		creators: map[string]*counts{},
		profiles: map[string]*profile{},
		trend:    tp,
	}, nil
}

// clip returns the state of a clip, made from info when it is new.
func (r *ranker) clip(info clipInfo) *clipState {
	cs := r.clips[info.ID]
	if cs == nil {
		cs = &clipState{info: info, stamp: info.CreatedAt}
		r.clips[info.ID] = cs
	}
	return cs
}

// observe learns from one engagement event of viewer p on a clip: the
// model takes a step on the features as they were before the event, then
// the clip's counts and its trending value move when count is set (it is
// not for an event a resync already counted), and the viewer's profile
// moves. It returns the prediction made before the step.
func (r *ranker) observe(viewer string, p *profile, info clipInfo, kind string, watchedMS int64, at time.Time, count bool) float64 {
	cs := r.clip(info)
	o := judge(kind, watchedMS, info.DurationMS)
	var pred float64
	if o.trained && p != nil {
		r.feats = r.features(r.feats[:0], viewer, p, cs, at)
		pred = r.model.update(r.feats, o.label)
	}
	if p != nil {
		p.apply(o, info, info.ID)
	}
	if !count {
		r.addTrend(cs, 0, at) // only the time of the last engagement
		return pred
	}
	cr := r.creators[info.Owner]
	if cr == nil {
		cr = &counts{}
		r.creators[info.Owner] = cr
	}
	var delta counts
	switch kind {
	case clips.EventView:
		delta.views = 1
		if o.complete {
			delta.completes = 1
		}
	case clips.EventSkip:
		delta.skips = 1
	case clips.EventLike:
		delta.likes = 1
	case clips.EventShare:
		delta.shares = 1
	}
	cs.stats.add(delta)
	cr.add(delta)
	r.addTrend(cs, r.trend.points(delta), at)
	return pred
}

// observeComment counts a comment toward the clip's trending value.
func (r *ranker) observeComment(info clipInfo, at time.Time) {
	cs := r.clip(info)
	delta := counts{comments: 1}
	cs.stats.add(delta)
	r.addTrend(cs, r.trend.points(delta), at)
}

func (c *counts) add(d counts) {
	c.views += d.views
	c.completes += d.completes
	c.skips += d.skips
	c.likes += d.likes
	c.shares += d.shares
	c.comments += d.comments
}

// score returns the model's probability that viewer engages with the clip
// at now. It only reads, so it may run under the read lock.
func (r *ranker) score(viewer string, p *profile, info clipInfo, now time.Time) float64 {
	cs := r.clips[info.ID]
	if cs == nil {
		cs = &clipState{info: info}
	}
	// Readers score concurrently (under the read lock), so the features
	// go in a buffer of this call, not in the shared scratch.
	var buf [16]uint64
	return r.model.predict(r.features(buf[:0], viewer, p, cs, now))
}

// features appends the hashed features of viewer meeting clip at now:
// identities and their crosses with the viewer (viewer x game, viewer x
// creator), the viewer's taste for the game and the creator as buckets
// that carry over between viewers, and the clip's popularity, completion
// rate, like rate, age and length, with the creator's popularity.
func (r *ranker) features(dst []uint64, viewer string, p *profile, cs *clipState, now time.Time) []uint64 {
	info := cs.info
	gameAff, creatorAff := 0.0, 0.0
	gameRank := "none"
	if p != nil {
		gameAff, creatorAff = p.games[info.Game], p.creators[info.Owner]
		for i, g := range p.favourites() {
			if g == info.Game {
				gameRank = strconv.Itoa(i + 1)
			}
		}
	}
	st := cs.stats
	pop := logBucket(st.likes + st.completes + 2*st.shares + st.comments)
	shown := st.views + st.skips
	completion := bucket10((st.completes + 1) / (shown + 3))
	likeRate := bucket10((st.likes + st.shares + 0.5) / (shown + 5))
	volume := logBucket(shown)
	creatorPop := "0"
	if cr := r.creators[info.Owner]; cr != nil {
		creatorPop = logBucket(cr.likes + cr.completes + 2*cr.shares)
	}
	ga, ca := affBucket(gameAff), affBucket(creatorAff)
	return append(dst,
		hash("bias"),
		hash("g", info.Game),
		hash("c", info.Owner),
		hash("vg", viewer, info.Game),
		hash("vc", viewer, info.Owner),
		hash("ga", ga),
		hash("ca", ca),
		hash("gr", gameRank),
		hash("ga.ca", ga, ca),
		hash("pop", pop),
		hash("ga.pop", ga, pop),
		hash("cr", completion, volume),
		hash("lr", likeRate, volume),
		hash("cpop", creatorPop),
		hash("age", ageBucket(now.Sub(info.CreatedAt))),
		hash("dur", durationBucket(info.DurationMS)),
	)
}

// hash is 64-bit FNV-1a over the parts, each followed by a zero byte so
// that ("ab", "c") and ("a", "bc") differ.
func hash(parts ...string) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for _, p := range parts {
		for i := 0; i < len(p); i++ {
			h ^= uint64(p[i])
			h *= prime
		}
		h *= prime // the zero separator: h ^= 0 changes nothing
	}
	return h
}

// logBucket is floor(log2(1+v)) as a string, capped at 12.
func logBucket(v float64) string {
	if v <= 0 {
		return "0"
	}
	return strconv.Itoa(min(12, int(math.Log2(1+v))+1))
}

// bucket10 cuts a rate in [0, 1] into tenths.
func bucket10(v float64) string {
	return strconv.Itoa(max(0, min(9, int(v*10))))
}

// affBucket buckets a taste: negative, none, or a log scale of positive.
func affBucket(v float64) string {
	switch {
	case v < -0.5:
		return "neg"
	case v <= 0.1:
		return "0"
	}
	return logBucket(v)
}

func ageBucket(d time.Duration) string {
	for i, limit := range []time.Duration{time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
		48 * time.Hour, 96 * time.Hour, 7 * 24 * time.Hour} {
		if d < limit {
			return strconv.Itoa(i)
		}
	}
	return "old"
}

func durationBucket(ms int64) string {
	for i, limit := range []int64{0, 10000, 20000, 30000, 60000, 120000} {
		if ms <= limit {
			return strconv.Itoa(i)
		}
	}
	return "long"
}
