package feed

import (
	"cmp"
	"context"
	"slices"
)

// Where a for-you item came from.
const (
	sourceFollowing = "following"
	sourceTrending  = "trending"
	sourceGame      = "game"
	sourceCreator   = "creator"
)

// Candidate generation: how many clips each source offers per request.
const (
	followingCandidates   = 60
	trendingCandidates    = 100
	gameTrendingPerGame   = 20
	gameCandidatesPerGame = 30
	creatorCandidatesEach = 5
	favouriteGames        = 3
	favouriteCreators     = 10
	maxRun                = 2 // the most items in a row from one creator
)

// candidate is a clip offered for ranking, with the source that offered it.
type candidate struct {
	clip   clipInfo
	source string
	score  float64
}

// forYou builds a viewer's ranked for-you list: candidates from the
// sources, scored by the model, then re-ranked for creator diversity with
// the viewer's own clips and the clips they watched in full removed.
func (f *Service) forYou(ctx context.Context, viewer string) ([]ranked, error) {
	if err := f.ensureProfile(ctx, viewer); err != nil {
		return nil, err
	}
	f.mu.RLock()
	p := f.r.profiles[viewer]
	var games, creators []string
	if p != nil {
		games, creators = p.favourites(), top(p.creators, favouriteCreators)
	}
	f.mu.RUnlock()
	creators = slices.DeleteFunc(creators, func(c string) bool { return c == viewer })

	b := f.currentBoard()
	var trendIDs []string
	for _, r := range b.top("", trendingCandidates) {
		trendIDs = append(trendIDs, r.ID)
	}
	for _, g := range games {
		for _, r := range b.top(g, gameTrendingPerGame) {
			trendIDs = append(trendIDs, r.ID)
		}
	}

	// One store round trip for all four sources.
	found, err := f.store.Candidates(ctx, CandidateQuery{
		Viewer: viewer, Following: followingCandidates,
		Creators: creators, PerCreator: creatorCandidatesEach,
		Games: games, PerGame: gameCandidatesPerGame,
		IDs: trendIDs,
	})
	if err != nil {
		return nil, err
	}

	// The store names each clip once, by the first source that offered it.
	order := make([]candidate, 0, len(found.Following)+len(found.Creators)+len(found.Games)+len(found.IDs))
	for _, src := range []struct {
		name string
		cs   []CandidateClip
	}{
		{sourceFollowing, found.Following},
		{sourceCreator, found.Creators},
		{sourceGame, found.Games},
		{sourceTrending, found.IDs},
	} {
		for _, c := range src.cs {
			if c.Owner != viewer {
				order = append(order, candidate{clip: clipInfo(c), source: src.name})
			}
		}
	}

	now := f.now()
	kept := make([]*candidate, 0, len(order))
	f.mu.RLock()
	p = f.r.profiles[viewer]
	if p == nil {
		p = newProfile(now)
	}
	for i := range order {
		cd := &order[i]
		if p.seen[cd.clip.ID] {
			continue
		}
		cd.score = f.r.score(viewer, p, cd.clip, now)
		kept = append(kept, cd)
	}
	f.mu.RUnlock()

	list := diversify(kept, f.opts.ForYouSize)
	out := make([]ranked, len(list))
	for i, cd := range list {
		out[i] = ranked{ID: cd.clip.ID, Source: cd.source, Score: cd.score}
	}
	return out, nil
}

// diversify orders candidates by score, highest first, so that no more
// than maxRun in a row share a creator: when the best remaining clip would
// make the run too long, the best clip of another creator goes first.
// Clips that cannot be placed without breaking the rule (only one creator
// is left) are dropped. The result holds at most size items.
func diversify(cands []*candidate, size int) []*candidate {
	slices.SortFunc(cands, func(a, b *candidate) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.clip.ID, b.clip.ID)
	})
	out := make([]*candidate, 0, min(size, len(cands)))
	// taken marks the candidates placed; head is the first one not placed.
	taken := make([]bool, len(cands))
	head := 0
	for len(out) < size {
		for head < len(cands) && taken[head] {
			head++
		}
		pick := -1
		for i := head; i < len(cands); i++ {
			if taken[i] {
				continue
			}
			n, owner := len(out), cands[i].clip.Owner
			if n >= maxRun && out[n-1].clip.Owner == owner && out[n-2].clip.Owner == owner {
				continue
			}
			pick = i
			break
		}
		if pick < 0 {
			break
		}
		taken[pick] = true
		out = append(out, cands[pick])
	}
	return out
}
