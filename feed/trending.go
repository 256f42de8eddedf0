package feed

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// trendParams shape the trending score, an HN-style gravity score over
// recent engagement:
//
//	score = decayed points / (age in hours + 2) ^ gravity
//
// where each like, completed view, comment and share adds its weight to a
// clip's points and the points decay exponentially with the given half-life
// from the moment they were earned. Gravity sinks old clips; the decay
// sinks clips whose engagement has stopped, so a clip that went viral days
// ago falls below a fresh one that people are liking now.
type trendParams struct {
	halfLife time.Duration
	gravity  float64
	window   time.Duration
}

// Engagement weights of the trending points.
const (
	likePoints     = 1
	completePoints = 1
	commentPoints  = 1.5
	sharePoints    = 2
)

func (tp trendParams) points(d counts) float64 {
	return likePoints*d.likes + completePoints*d.completes + commentPoints*d.comments + sharePoints*d.shares
}

func (tp trendParams) decay(d time.Duration) float64 {
	if d <= 0 {
		return 1
	}
	return math.Exp(-math.Ln2 * d.Hours() / tp.halfLife.Hours())
}

// addTrend adds pts earned at at to the clip's decayed points.
func (r *ranker) addTrend(cs *clipState, pts float64, at time.Time) {
	if at.After(cs.last) {
		cs.last = at
	}
	if pts == 0 {
		return
	}
	if at.After(cs.stamp) {
		cs.trend = cs.trend*r.trend.decay(at.Sub(cs.stamp)) + pts
		cs.stamp = at
		return
	}
	cs.trend += pts * r.trend.decay(cs.stamp.Sub(at))
}

// trendScore is the clip's trending score at now.
func (r *ranker) trendScore(cs *clipState, now time.Time) float64 {
	if cs.trend <= 0 {
		return 0
	}
	pts := cs.trend * r.trend.decay(now.Sub(cs.stamp))
	age := max(0, now.Sub(cs.info.CreatedAt).Hours())
	return pts / math.Pow(age+2, r.trend.gravity)
}

// ranked is one entry of a ranked list: a trending board or a for-you
// snapshot.
type ranked struct {
	ID     string
	Source string
	Score  float64
}

// board is the trending ranking at one moment, overall and per game. It is
// immutable once built, so requests and snapshots share it without locks.
type board struct {
	at     time.Time
	all    []ranked
	byGame map[string][]ranked
}

// top returns up to n entries of the game's board, or of the overall
// board when game is "".
func (b *board) top(game string, n int) []ranked {
	if b == nil {
		return nil
	}
	l := b.all
	if game != "" {
		l = b.byGame[game]
	}
	return l[:min(n, len(l))]
}

// gameScore is a clip's trending score with its game, before sorting.
type gameScore struct {
	ranked
	game string
}

// trendingScores returns the positive trending scores at now.
func (r *ranker) trendingScores(now time.Time) []gameScore {
	out := make([]gameScore, 0, len(r.clips))
	for id, cs := range r.clips {
		if s := r.trendScore(cs, now); s > 0 {
			out = append(out, gameScore{ranked: ranked{ID: id, Source: sourceTrending, Score: s}, game: cs.info.Game})
		}
	}
	return out
}

// buildBoard sorts scores into a board holding up to size entries overall
// and per game. It needs no lock: scores is its own.
func buildBoard(scores []gameScore, now time.Time, size int) *board {
	slices.SortFunc(scores, func(a, b gameScore) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	b := &board{at: now, all: make([]ranked, 0, min(size, len(scores))), byGame: map[string][]ranked{}}
	for _, s := range scores {
		if len(b.all) < size {
			b.all = append(b.all, s.ranked)
		}
		if l := b.byGame[s.game]; len(l) < size {
			b.byGame[s.game] = append(l, s.ranked)
		}
	}
	return b
}

// prune forgets clips made before the window whose last engagement is
// also before it, and returns how many it dropped.
func (r *ranker) prune(now time.Time) int {
	cut := now.Add(-r.trend.window)
	n := 0
	for id, cs := range r.clips {
		if cs.info.CreatedAt.Before(cut) && cs.last.Before(cut) {
			delete(r.clips, id)
			n++
		}
	}
	return n
}
