package feed

import (
	"cmp"
	"context"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/partyline/partyline/clips"
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
	clip   clips.Clip
	source string
	score  float64
}

// forYou builds a viewer's ranked for-you list: candidates from the
// sources, scored by the model, then re-ranked for creator diversity with
// the viewer's own clips and the clips they watched in full removed. It
// returns the list and the clips it loaded, for the first page.
func (f *Feed) forYou(ctx context.Context, viewer string) ([]ranked, map[string]clips.Clip, error) {
	if err := f.ensureProfile(ctx, viewer); err != nil {
		return nil, nil, err
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

	// The sources are independent queries; run them side by side.
	var following, byCreator, byGame, trending []clips.Clip
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		following, _, err = f.store.FollowingClips(gctx, viewer, "", followingCandidates)
		return err
	})
	g.Go(func() (err error) {
		byCreator, err = f.store.CreatorClips(gctx, creators, creatorCandidatesEach)
		return err
	})
	g.Go(func() (err error) {
		byGame, err = f.store.GameClips(gctx, games, gameCandidatesPerGame)
		return err
	})
	g.Go(func() (err error) {
		trending, err = f.store.ListableClips(gctx, trendIDs)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}

	// The first source to offer a clip names it.
	cands := map[string]*candidate{}
	var order []*candidate
	for _, src := range []struct {
		name string
		cs   []clips.Clip
	}{
		{sourceFollowing, following},
		{sourceCreator, byCreator},
		{sourceGame, byGame},
		{sourceTrending, trending},
	} {
		for _, c := range src.cs {
			if c.Owner == viewer || cands[c.ID] != nil {
				continue
			}
			cd := &candidate{clip: c, source: src.name}
			cands[c.ID] = cd
			order = append(order, cd)
		}
	}

	now := f.now()
	f.mu.RLock()
	p = f.r.profiles[viewer]
	if p == nil {
		p = newProfile(now)
	}
	kept := order[:0]
	for _, cd := range order {
		if p.seen[cd.clip.ID] {
			continue
		}
		cd.score = f.r.score(viewer, p, infoOf(cd.clip), now)
		kept = append(kept, cd)
	}
	f.mu.RUnlock()

	list := diversify(kept, f.opts.ForYouSize)
	loaded := make(map[string]clips.Clip, len(list))
	out := make([]ranked, len(list))
	for i, cd := range list {
		out[i] = ranked{ID: cd.clip.ID, Source: cd.source, Score: cd.score}
		loaded[cd.clip.ID] = cd.clip
	}
	return out, loaded, nil
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
	pending := cands
	for len(out) < size && len(pending) > 0 {
		pick := -1
		for i, cd := range pending {
			n := len(out)
			if n >= maxRun && out[n-1].clip.Owner == cd.clip.Owner && out[n-2].clip.Owner == cd.clip.Owner {
				continue
			}
			pick = i
			break
		}
		if pick < 0 {
			break
		}
		out = append(out, pending[pick])
		pending = slices.Delete(pending, pick, pick+1)
	}
	return out
}
