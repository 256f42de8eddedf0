package feed

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/clips"
)

// EvalOptions sizes the synthetic world of Evaluate. Zero fields take the
// defaults, which are the size `partyline feed-eval` reports at.
type EvalOptions struct {
	// Seed makes the world and the engagement reproducible.
	Seed uint64
	// Users is the number of viewers. Zero means 2000.
	Users int
	// Creators is the number of creators. Zero means 200.
	Creators int
	// Games is the number of games. Zero means 10.
	Games int
	// Clips is the number of clips, posted evenly over Days. Zero means 6000.
	Clips int
	// Slates is the number of feed pages shown. Zero means 30000.
	Slates int
	// SlateSize is the number of clips on a page. Zero means 20.
	SlateSize int
	// Days is the length of the simulated time. Zero means 14.
	Days int
	// Model holds the model's hyperparameters; zero fields take the
	// service's defaults.
	Model ModelOptions
}

func (o EvalOptions) withDefaults() (EvalOptions, error) {
	for _, f := range []struct {
		v *int
		d int
	}{{&o.Users, 2000}, {&o.Creators, 200}, {&o.Games, 10}, {&o.Clips, 6000}, {&o.Slates, 30000}, {&o.SlateSize, 20}, {&o.Days, 14}} {
		if *f.v == 0 {
			*f.v = f.d
		}
		if *f.v < 0 {
			return o, fmt.Errorf("feed: eval: negative size %d: %w", *f.v, partyline.ErrInvalid)
		}
	}
	if o.Games < 3 || o.Creators < 5 || o.SlateSize < 2 || o.Clips < o.SlateSize || o.Days < 2 {
		return o, fmt.Errorf("feed: eval: world too small: %w", partyline.ErrInvalid)
	}
	return o, nil
}

// Scores are ranking quality figures over the held-out events.
type Scores struct {
	// AUC is the mean over held-out pages, with both an engaged and a
	// not-engaged clip, of the probability that an engaged clip is ranked
	// above a not-engaged one.
	AUC float64 `json:"auc"`
	// NDCG10 is the mean NDCG@10 over held-out pages with any engagement,
	// with gain 2 for a like or share and 1 for a view in full.
	NDCG10 float64 `json:"ndcg10"`
}

// EvalResult is what Evaluate reports.
type EvalResult struct {
	Model    Scores `json:"model"`
	Baseline Scores `json:"baseline"`
	// Events is the number of engagement events simulated; TrainEvents of
	// them, the first in time order, were only learned from.
	Events      int    `json:"events"`
	TrainEvents int    `json:"train_events"`
	TestSlates  int    `json:"test_slates"`
	Seed        uint64 `json:"seed"`
}

// world is the synthetic ground truth: who likes what, and how good each
// clip is. The model never sees it; it only sees engagement.
type world struct {
	games     []string
	creators  []string
	clipInfo  []clipInfo
	quality   []float64
	users     []string
	gameTaste [][]float64       // user -> game index -> taste
	creTaste  []map[string]bool // user -> favourite creators
	gameIndex map[string]int
}

type simEvent struct {
	kind      string
	watchedMS int64
}

type impression struct {
	clip   int
	events []simEvent
	gain   float64
}

type slate struct {
	at    time.Time
	user  int
	items []impression
}

// evalEpoch is when the simulated time starts.
var evalEpoch = time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)

// Evaluate builds a synthetic world with planted tastes (each viewer
// prefers a few games and creators; each clip has a hidden quality),
// simulates pages of clips shown to viewers and their engagement, and
// replays the events in time order through the same ranker the service
// uses. The first 80% of the events are only learned from; each later page
// is ranked by the model and by the popularity baseline (the trending
// score) before its events are learned from, and the two rankings are
// scored against what the viewer did. The same seed gives the same result.
func Evaluate(opts EvalOptions) (EvalResult, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return EvalResult{}, err
	}
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	w := newWorld(rng, opts)
	slates := w.simulate(rng, opts)

	total := 0
	for _, s := range slates {
		for _, it := range s.items {
			total += len(it.events)
		}
	}
	r, err := newRanker(opts.Model, trendParams{halfLife: 6 * time.Hour, gravity: 1.5, window: 72 * time.Hour})
	if err != nil {
		return EvalResult{}, err
	}
	res := EvalResult{Events: total, Seed: opts.Seed}
	var model, base struct{ auc, ndcg []float64 }
	seen := 0
	cut := total * 8 / 10
	for _, s := range slates {
		user := w.users[s.user]
		p := r.profiles[user]
		if p == nil {
			p = newProfile(s.at)
			r.profiles[user] = p
		}
		if seen >= cut {
			res.TestSlates++
			ms, bs := make([]float64, len(s.items)), make([]float64, len(s.items))
			gains := make([]float64, len(s.items))
			for i, it := range s.items {
				info := w.clipInfo[it.clip]
				ms[i] = r.score(user, p, info, s.at)
				if cs := r.clips[info.ID]; cs != nil {
					bs[i] = r.trendScore(cs, s.at)
				}
				gains[i] = it.gain
			}
			if a, ok := auc(ms, gains); ok {
				b, _ := auc(bs, gains)
				model.auc, base.auc = append(model.auc, a), append(base.auc, b)
			}
			if n, ok := ndcg(ms, gains, 10); ok {
				b, _ := ndcg(bs, gains, 10)
				model.ndcg, base.ndcg = append(model.ndcg, n), append(base.ndcg, b)
			}
		}
		for i, it := range s.items {
			at := s.at.Add(time.Duration(i) * time.Second)
			for _, ev := range it.events {
				r.observe(user, p, w.clipInfo[it.clip], ev.kind, ev.watchedMS, at, true)
				seen++
				if seen == cut {
					res.TrainEvents = seen
				}
			}
		}
	}
	res.Model = Scores{AUC: mean(model.auc), NDCG10: mean(model.ndcg)}
	res.Baseline = Scores{AUC: mean(base.auc), NDCG10: mean(base.ndcg)}
	return res, nil
}

func newWorld(rng *rand.Rand, o EvalOptions) *world {
	w := &world{gameIndex: map[string]int{}}
	for g := range o.Games {
		w.games = append(w.games, fmt.Sprintf("game-%02d", g))
		w.gameIndex[w.games[g]] = g
	}
	// Creators have a main game; a few are far more prolific than others.
	mainGame := make([]int, o.Creators)
	weights := make([]float64, o.Creators)
	for c := range o.Creators {
		w.creators = append(w.creators, fmt.Sprintf("creator-%03d", c))
		mainGame[c] = rng.IntN(o.Games)
		weights[c] = 1 / math.Pow(float64(c+1), 0.7)
	}
	pickCreator := sampler(weights)
	span := time.Duration(o.Days) * 24 * time.Hour
	for i := range o.Clips {
		c := pickCreator(rng)
		g := mainGame[c]
		if rng.Float64() < 0.2 {
			g = rng.IntN(o.Games)
		}
		at := evalEpoch.Add(time.Duration(float64(span) * float64(i) / float64(o.Clips)))
		w.clipInfo = append(w.clipInfo, clipInfo{
			ID:         fmt.Sprintf("clip-%05d", i),
			Owner:      w.creators[c],
			Game:       w.games[g],
			DurationMS: int64(8000 + rng.IntN(80000)),
			CreatedAt:  at,
		})
		w.quality = append(w.quality, rng.NormFloat64())
	}
	// Viewers love two games and dislike the rest, and have a handful of
	// favourite creators, mostly from their games.
	byGame := make([][]int, o.Games)
	for c, g := range mainGame {
		byGame[g] = append(byGame[g], c)
	}
	for u := range o.Users {
		w.users = append(w.users, fmt.Sprintf("user-%04d", u))
		taste := make([]float64, o.Games)
		for g := range taste {
			taste[g] = -0.7 + 0.3*rng.NormFloat64()
		}
		favs := rng.Perm(o.Games)[:2]
		for _, g := range favs {
			taste[g] = 1.1 + 0.3*rng.NormFloat64()
		}
		w.gameTaste = append(w.gameTaste, taste)
		cre := map[string]bool{}
		for len(cre) < 5 {
			g := favs[rng.IntN(2)]
			if rng.Float64() < 0.7 && len(byGame[g]) > 0 {
				cre[w.creators[byGame[g][rng.IntN(len(byGame[g]))]]] = true
			} else {
				cre[w.creators[rng.IntN(o.Creators)]] = true
			}
		}
		w.creTaste = append(w.creTaste, cre)
	}
	return w
}

// sampler returns a function that draws an index with probability
// proportional to its weight.
func sampler(weights []float64) func(*rand.Rand) int {
	cum := make([]float64, len(weights))
	var sum float64
	for i, wt := range weights {
		sum += wt
		cum[i] = sum
	}
	return func(rng *rand.Rand) int {
		return min(len(cum)-1, sort.SearchFloat64s(cum, rng.Float64()*sum))
	}
}

// engageProb is the hidden truth: the chance a viewer engages with a clip.
func (w *world) engageProb(user, clip int) float64 {
	info := w.clipInfo[clip]
	x := -1.3 + w.gameTaste[user][w.gameIndex[info.Game]] + 0.8*w.quality[clip]
	if w.creTaste[user][info.Owner] {
		x += 1.3
	}
	return sigmoid(x)
}

// simulate makes the pages in time order. Each page mixes clips that are
// being engaged with (drawn from recent engagement, so popular clips come
// up often) with clips drawn at random from the last three days, in random
// order; the viewer engages with each according to engageProb.
func (w *world) simulate(rng *rand.Rand, o EvalOptions) []slate {
	span := time.Duration(o.Days) * 24 * time.Hour
	start := evalEpoch.Add(24 * time.Hour)
	times := make([]time.Time, o.Slates)
	for i := range times {
		times[i] = start.Add(time.Duration(rng.Float64() * float64(span-24*time.Hour)))
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	activity := make([]float64, o.Users)
	for u := range activity {
		activity[u] = 0.2 + rng.ExpFloat64()
	}
	pickUser := sampler(activity)

	type hit struct {
		at   time.Time
		clip int
	}
	var pool []hit // positive engagement, in time order
	recent := 3 * 24 * time.Hour
	out := make([]slate, 0, o.Slates)
	for _, at := range times {
		user := pickUser(rng)
		hi := sort.Search(len(w.clipInfo), func(i int) bool { return w.clipInfo[i].CreatedAt.After(at) })
		lo := sort.Search(len(w.clipInfo), func(i int) bool { return !w.clipInfo[i].CreatedAt.Before(at.Add(-recent)) })
		if hi-lo < o.SlateSize {
			continue
		}
		plo := sort.Search(len(pool), func(i int) bool { return !pool[i].at.Before(at.Add(-recent)) })
		chosen := map[int]bool{}
		var items []int
		popular := o.SlateSize * 2 / 5
		for tries := 0; len(items) < o.SlateSize && tries < 10*o.SlateSize; tries++ {
			c := lo + rng.IntN(hi-lo)
			if tries < popular && plo < len(pool) {
				c = pool[plo+rng.IntN(len(pool)-plo)].clip
			}
			if !chosen[c] {
				chosen[c] = true
				items = append(items, c)
			}
		}
		rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
		s := slate{at: at, user: user}
		for _, c := range items {
			dur := w.clipInfo[c].DurationMS
			it := impression{clip: c}
			if rng.Float64() < w.engageProb(user, c) {
				it.gain = 1
				it.events = append(it.events, simEvent{kind: clips.EventView, watchedMS: dur})
				if rng.Float64() < 0.35 {
					it.gain = 2
					it.events = append(it.events, simEvent{kind: clips.EventLike})
				}
				if rng.Float64() < 0.05 {
					it.gain = 2
					it.events = append(it.events, simEvent{kind: clips.EventShare})
				}
				pool = append(pool, hit{at: at, clip: c})
			} else if rng.Float64() < 0.6 {
				it.events = append(it.events, simEvent{kind: clips.EventSkip, watchedMS: int64(200 + rng.IntN(1800))})
			} else {
				it.events = append(it.events, simEvent{kind: clips.EventView, watchedMS: dur * int64(10+rng.IntN(50)) / 100})
			}
			s.items = append(s.items, it)
		}
		out = append(out, s)
	}
	return out
}

// auc is the probability that a positive (gain > 0) outranks a negative,
// ties counting half; ok is false without both.
func auc(scores, gains []float64) (float64, bool) {
	var pairs, wins float64
	for i := range scores {
		if gains[i] <= 0 {
			continue
		}
		for j := range scores {
			if gains[j] > 0 {
				continue
			}
			pairs++
			switch {
			case scores[i] > scores[j]:
				wins++
			case scores[i] == scores[j]:
				wins += 0.5
			}
		}
	}
	if pairs == 0 {
		return 0, false
	}
	return wins / pairs, true
}

// ndcg is NDCG@k of the ranking by score, highest first, ties broken by
// position; ok is false when nothing has gain.
func ndcg(scores, gains []float64, k int) (float64, bool) {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
	dcg := func(order []int) float64 {
		var d float64
		for rank, i := range order[:min(k, len(order))] {
			d += (math.Pow(2, gains[i]) - 1) / math.Log2(float64(rank)+2)
		}
		return d
	}
	ideal := make([]int, len(gains))
	copy(ideal, idx)
	slices.SortStableFunc(ideal, func(a, b int) int { return cmp.Compare(gains[b], gains[a]) })
	best := dcg(ideal)
	if best == 0 {
		return 0, false
	}
	return dcg(idx) / best, true
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
