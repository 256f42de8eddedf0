package feed

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/internal/httpx"
)

// Page sizes of the feeds and lists.
const (
	defaultLimit = 20
	maxLimit     = 100
)

// itemJSON is one feed entry.
type itemJSON struct {
	Clip   clips.Resource `json:"clip"`
	Source string         `json:"source"`
	Score  *float64       `json:"score,omitempty"`
}

// pageJSON is one page of a feed.
type pageJSON struct {
	Items      []itemJSON `json:"items"`
	NextCursor string     `json:"next_cursor"`
	// Restarted is true when the cursor's snapshot was gone (expired, or
	// kept by another node) and this is the first page of a new one.
	Restarted bool `json:"restarted,omitempty"`
}

// Routes returns the feeds, which the caller mounts at /v1/feed behind a
// middleware that puts the user in the context (auth.WithUser):
//
//	GET /following   ?cursor=&limit=        clips of the people you follow, newest first
//	GET /trending    ?game=&cursor=&limit=  the trending board, overall or of one game
//	GET /for-you     ?cursor=&limit=        your ranked feed
//
// Each answers {"items":[{"clip":{...},"source":"...","score":...}],
// "next_cursor":"..."}; next_cursor is "" on the last page. Only public
// ready clips are ever listed. limit is 1 to 100 (default 20). Errors are
// problem+json: 401 without a user, 400 for a bad cursor, limit or game.
func (f *Service) Routes() http.Handler {
	r := httpx.NewRouter()
	r.Get("/following", withPage(maxLimit, f.handleFollowing))
	r.Get("/trending", withPage(maxLimit, f.handleTrending))
	r.Get("/for-you", withPage(maxLimit, f.handleForYou))
	return r
}

// page is the part of a list a request asks for.
type page struct {
	cursor string
	limit  int
}

// pageHandler serves a list route for the viewer v.
type pageHandler func(w http.ResponseWriter, r *http.Request, v string, p page)

// withPage is the one preamble of the feed routes: it answers 401 without
// a user and 400 for a bad ?cursor= or a ?limit= outside 1 to max, then
// calls h.
func withPage(max int, h pageHandler) http.HandlerFunc {
	return httpx.SignedIn(func(w http.ResponseWriter, r *http.Request, v string) {
		cursor, limit, err := pageParams(r, max)
		if err != nil {
			httpx.Error(w, r, err)
			return
		}
		h(w, r, v, page{cursor: cursor, limit: limit})
	})
}

// pageParams reads ?cursor= and ?limit=.
func pageParams(r *http.Request, max int) (cursor string, limit int, err error) {
	q := r.URL.Query()
	cursor = q.Get("cursor")
	if len(cursor) > 512 {
		return "", 0, partyline.Errorf(partyline.ErrInvalid, "invalid cursor")
	}
	limit = defaultLimit
	if s, ok := q["limit"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > max {
			return "", 0, partyline.Errorf(partyline.ErrInvalid, "limit must be an integer from 1 to %d", max)
		}
		limit = n
	}
	return cursor, limit, nil
}

// storeError passes domain errors through and marks anything else as a
// failed dependency.
func storeError(op string, err error) error {
	if errors.Is(err, partyline.ErrInvalid) || errors.Is(err, partyline.ErrNotFound) {
		return err
	}
	return &depError{op: op, err: err}
}

// listError is storeError for a list read, answering a bad cursor without
// the store's internals.
func listError(op string, err error) error {
	if errors.Is(err, partyline.ErrInvalid) {
		err = partyline.Errorf(partyline.ErrInvalid, "invalid cursor")
	}
	return storeError(op, err)
}

// depError is a store failure: 503 to the client, logged by httpx.Error.
type depError struct {
	op  string
	err error
}

func (e *depError) Error() string   { return fmt.Sprintf("feed: %s: %v", e.op, e.err) }
func (e *depError) Unwrap() []error { return []error{partyline.ErrUnavailable, e.err} }

func (f *Service) handleFollowing(w http.ResponseWriter, r *http.Request, v string, p page) {
	start := time.Now()
	cs, next, err := f.store.FollowingClips(r.Context(), v, p.cursor, p.limit)
	if err != nil {
		httpx.Error(w, r, listError("following feed", err))
		return
	}
	f.metrics.build.WithLabelValues("following").Observe(time.Since(start).Seconds())
	out := pageJSON{Items: make([]itemJSON, len(cs)), NextCursor: next}
	for i, c := range cs {
		out.Items[i] = itemJSON{Clip: clips.ToResource(c), Source: sourceFollowing}
	}
	httpx.JSON(w, r, http.StatusOK, out)
}

// maxGame is the longest game name the trending feed accepts.
const maxGame = 64

func (f *Service) handleTrending(w http.ResponseWriter, r *http.Request, v string, p page) {
	game := r.URL.Query().Get("game")
	if len(game) > maxGame || !utf8.ValidString(game) || strings.IndexFunc(game, unicode.IsControl) >= 0 {
		httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "game must be printable text of at most %d bytes", maxGame))
		return
	}
	kind := "trending/" + game
	f.servePage(w, r, v, kind, p, func() ([]ranked, error) {
		return f.currentBoard().top(game, f.opts.TrendingSize), nil
	})
}

func (f *Service) handleForYou(w http.ResponseWriter, r *http.Request, v string, p page) {
	f.servePage(w, r, v, "for-you", p, func() ([]ranked, error) {
		start := time.Now()
		list, err := f.forYou(r.Context(), v)
		if err == nil {
			f.metrics.build.WithLabelValues("for-you").Observe(time.Since(start).Seconds())
		}
		return list, err
	})
}

// servePage answers one page of a snapshot feed. Without a cursor, or
// when the cursor's snapshot is gone, build makes a new ranked list, which
// is kept as a snapshot; with one, the page comes from the snapshot. Every
// page, the first too, reads its clips from the store in one query, so a
// clip made private since the list was built is left out and counts are
// current.
func (f *Service) servePage(w http.ResponseWriter, r *http.Request, v, kind string, p page,
	build func() ([]ranked, error)) {
	var (
		items     []ranked
		id        string
		offset    int
		restarted bool
	)
	now := f.now()
	if p.cursor != "" {
		var err error
		if id, offset, err = decodeSnapCursor(p.cursor, kind); err != nil {
			httpx.Error(w, r, err)
			return
		}
		if sn, ok := f.snaps.get(id, v, kind, now); ok {
			if offset > len(sn.items) {
				httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "invalid cursor"))
				return
			}
			items = sn.items
		} else {
			restarted, offset = true, 0
		}
	}
	if items == nil {
		var err error
		if items, err = build(); err != nil {
			httpx.Error(w, r, storeError("build "+kind, err))
			return
		}
		id = f.snaps.put(v, kind, items, now)
	}
	end := min(len(items), offset+p.limit)
	page := items[offset:end]
	ids := make([]string, len(page))
	for i, it := range page {
		ids[i] = it.ID
	}
	cs, err := f.store.ListableClips(r.Context(), ids)
	if err != nil {
		httpx.Error(w, r, storeError("read clips of "+kind, err))
		return
	}
	loaded := make(map[string]*clips.Clip, len(cs))
	for i := range cs {
		loaded[cs[i].ID] = &cs[i]
	}
	out := pageJSON{Items: make([]itemJSON, 0, len(page)), Restarted: restarted}
	for _, it := range page {
		c, ok := loaded[it.ID]
		if !ok || c.Visibility != clips.Public || c.Status != clips.StatusReady {
			continue
		}
		score := it.Score
		out.Items = append(out.Items, itemJSON{Clip: clips.ToResource(*c), Source: it.Source, Score: &score})
	}
	if end < len(items) {
		out.NextCursor = encodeSnapCursor(kind, id, end)
	}
	httpx.JSON(w, r, http.StatusOK, out)
}
