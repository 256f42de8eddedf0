package loadtest

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/partyline/partyline/loadtest/executor"
)

func init() {
	RegisterScenario("rest-feed", "browse the trending and for-you feeds, fetch clips, Range-GET their media and record views", newRESTFeed)
}

// clipMP4 is a real two-second 160x120 H.264 MP4 of about 5 KB, which a
// server with ffprobe accepts as video: what seed_clips uploads.
//
//go:embed assets/clip.mp4
var clipMP4 []byte

// restFeed is a clip browser. Each iteration reads a page of the trending
// and of the for-you feed, opens one of their clips, fetches the first
// media_bytes of its media with a Range request, and reports a view.
type restFeed struct {
	env  *Env
	http *httpMetrics
	opts struct {
		// SeedClips uploads this many public clips before the run, from a
		// few seeding users, so the feeds have something to show.
		SeedClips int `json:"seed_clips"`
		// MediaBytes is the size of each Range request.
		MediaBytes int64 `json:"media_bytes"`
		// Limit is the feed page size.
		Limit int `json:"limit"`
	}
	games  []string
	seeded []string // ids of the seeded clips, written by Setup only
}

type restVU struct {
	user string
	rng  *rand.Rand
}

func newRESTFeed(env *Env, raw json.RawMessage) (Scenario, error) {
	s := &restFeed{env: env, http: newHTTPMetrics(env), games: []string{"valorant", "cs2", "apex-legends", "fortnite"}}
	s.opts.MediaBytes, s.opts.Limit = 64<<10, 20
	if err := decodeOptions(raw, &s.opts); err != nil {
		return nil, err
	}
	if s.opts.SeedClips < 0 || s.opts.SeedClips > 10000 || s.opts.MediaBytes < 1 || s.opts.Limit < 1 || s.opts.Limit > 100 {
		return nil, configErrorf("rest-feed: 0 ≤ seed_clips ≤ 10000, media_bytes ≥ 1, 1 ≤ limit ≤ 100")
	}
	return s, nil
}

// request sends an authenticated JSON request as user and decodes the
// reply into out (when not nil). A status other than want is an error.
func (s *restFeed) request(ctx context.Context, user, method, path, name string, body []byte, ctype string, want int, out any) (http.Header, error) {
	token, err := s.env.Tokens.Token(ctx, user)
	if err != nil {
		return nil, err
	}
	var rd *bytes.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.env.URL(path), nil)
	if rd != nil {
		req, err = http.NewRequestWithContext(ctx, method, s.env.URL(path), rd)
	}
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, raw, err := s.http.do(s.env, req, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if resp.StatusCode != want {
		return resp.Header, fmt.Errorf("%s: %s: %.200s", name, resp.Status, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.Header, fmt.Errorf("%s: %w", name, err)
		}
	}
	return resp.Header, nil
}

// Setup uploads the seed clips, waits until they are ready, and has the
// seeding users watch and like them until they trend.
func (s *restFeed) Setup(ctx context.Context) error {
	for i := range s.opts.SeedClips {
		owner := s.env.User(int64(-1 - i%10))
		meta, _ := json.Marshal(map[string]any{
			"title": fmt.Sprintf("seed clip %d", i), "game": s.games[i%len(s.games)],
			"tags": []string{"seed"}, "visibility": "public",
		})
		var clip struct {
			ID string `json:"id"`
		}
		if _, err := s.request(ctx, owner, http.MethodPost, "/v1/clips", "POST /v1/clips", meta, "application/json", http.StatusCreated, &clip); err != nil {
			return err
		}
		if _, err := s.request(ctx, owner, http.MethodPut, "/v1/clips/"+clip.ID+"/media", "PUT /v1/clips/{id}/media", clipMP4, "video/mp4", http.StatusOK, nil); err != nil {
			return err
		}
		s.seeded = append(s.seeded, clip.ID)
	}
	// Processing runs off the request path; wait for it.
	deadline := time.Now().Add(60 * time.Second)
	for _, id := range s.seeded {
		for {
			var clip struct {
				Status string `json:"status"`
			}
			if _, err := s.request(ctx, s.env.User(-1), http.MethodGet, "/v1/clips/"+id, "GET /v1/clips/{id}", nil, "", http.StatusOK, &clip); err != nil {
				return err
			}
			if clip.Status == "ready" {
				break
			}
			if clip.Status == "failed" || time.Now().After(deadline) {
				return fmt.Errorf("seed clip %s is %s", id, clip.Status)
			}
			if !sleepCtx(ctx, 100*time.Millisecond) {
				return ctx.Err()
			}
		}
	}
	if len(s.seeded) == 0 {
		return nil
	}
	// Engagement from the seeding users puts the clips on the trending
	// board, which the server rebuilds on its own schedule: wait for it.
	for i, id := range s.seeded {
		fan := s.env.User(int64(-1 - (i+1)%10))
		view, _ := json.Marshal(map[string]int64{"watched_ms": 2000})
		if _, err := s.request(ctx, fan, http.MethodPost, "/v1/clips/"+id+"/views", "POST /v1/clips/{id}/views", view, "application/json", http.StatusNoContent, nil); err != nil {
			return err
		}
		if _, err := s.request(ctx, fan, http.MethodPut, "/v1/clips/"+id+"/like", "PUT /v1/clips/{id}/like", nil, "", http.StatusOK, nil); err != nil {
			return err
		}
	}
	for {
		var page feedPage
		if _, err := s.request(ctx, s.env.User(-1), http.MethodGet, "/v1/feed/trending?limit=1", "GET /v1/feed/trending", nil, "", http.StatusOK, &page); err != nil {
			return err
		}
		if len(page.Items) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the seeded clips did not reach the trending feed within a minute")
		}
		if !sleepCtx(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
}

type feedPage struct {
	Items []struct {
		Clip struct {
			ID string `json:"id"`
		} `json:"clip"`
	} `json:"items"`
}

func (s *restFeed) Iterate(ctx context.Context, vu *executor.VU) error {
	st, _ := vu.State.(*restVU)
	if st == nil {
		st = &restVU{user: s.env.User(vu.ID), rng: vuRand(vu)}
		vu.State = st
	}
	var ids []string
	for _, f := range []struct{ path, name string }{
		{"/v1/feed/trending?limit=" + strconv.Itoa(s.opts.Limit), "GET /v1/feed/trending"},
		{"/v1/feed/for-you?limit=" + strconv.Itoa(s.opts.Limit), "GET /v1/feed/for-you"},
	} {
		var page feedPage
		if _, err := s.request(ctx, st.user, http.MethodGet, f.path, f.name, nil, "", http.StatusOK, &page); err != nil {
			return err
		}
		for _, it := range page.Items {
			ids = append(ids, it.Clip.ID)
		}
	}
	if !check(s.env, "feeds have clips", len(ids) > 0) {
		return nil
	}
	id := ids[st.rng.IntN(len(ids))]
	if _, err := s.request(ctx, st.user, http.MethodGet, "/v1/clips/"+id, "GET /v1/clips/{id}", nil, "", http.StatusOK, nil); err != nil {
		return err
	}
	token, err := s.env.Tokens.Token(ctx, st.user)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.env.URL("/v1/clips/"+id+"/media"), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Range", "bytes=0-"+strconv.FormatInt(s.opts.MediaBytes-1, 10))
	resp, body, err := s.http.do(s.env, req, "GET /v1/clips/{id}/media")
	if err != nil {
		return err
	}
	// A clip smaller than the range comes whole in the 206 too.
	check(s.env, "media range is 206", resp.StatusCode == http.StatusPartialContent && int64(len(body)) <= s.opts.MediaBytes && len(body) > 0)
	view, _ := json.Marshal(map[string]int64{"watched_ms": int64(500 + st.rng.IntN(10000))})
	_, err = s.request(ctx, st.user, http.MethodPost, "/v1/clips/"+id+"/views", "POST /v1/clips/{id}/views", view, "application/json", http.StatusNoContent, nil)
	return err
}

func (s *restFeed) Retire(*executor.VU) {}
