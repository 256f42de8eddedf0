package clips

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/partyline/partyline"
)

// Resource is a clip as the REST API, the feeds and clip.new show it.
// Fields that are unknown (no media yet, not probed) are null rather than
// left out, so every clip object has the same keys.
type Resource struct {
	ID           string    `json:"id"`
	Owner        string    `json:"owner"`
	Title        string    `json:"title"`
	Game         string    `json:"game"`
	Tags         []string  `json:"tags"`
	Visibility   string    `json:"visibility"`
	Status       string    `json:"status"`
	FailReason   *string   `json:"fail_reason"`
	SizeBytes    *int64    `json:"size_bytes"`
	ContentType  *string   `json:"content_type"`
	SHA256       *string   `json:"sha256"`
	DurationMS   *int64    `json:"duration_ms"`
	Width        *int      `json:"width"`
	Height       *int      `json:"height"`
	ThumbnailURL *string   `json:"thumbnail_url"`
	MediaURL     *string   `json:"media_url"`
	UploadURL    *string   `json:"upload_url"`
	LikeCount    int64     `json:"like_count"`
	ViewCount    int64     `json:"view_count"`
	CommentCount int64     `json:"comment_count"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func nonZero[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

// clipPath is the REST path of a clip.
func clipPath(id string) string { return "/v1/clips/" + id }

// ToResource is c as the API shows it.
func ToResource(c Clip) Resource {
	j := Resource{
		ID: c.ID, Owner: c.Owner, Title: c.Title, Game: c.Game, Tags: c.Tags,
		Visibility: c.Visibility, Status: c.Status,
		FailReason: nonZero(c.FailReason), SizeBytes: nonZero(c.SizeBytes), ContentType: nonZero(c.ContentType),
		SHA256: nonZero(c.SHA256), DurationMS: nonZero(c.DurationMS), Width: nonZero(c.Width), Height: nonZero(c.Height),
		LikeCount: c.Likes, ViewCount: c.Views, CommentCount: c.Comments,
		CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(),
	}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	if c.MediaKey != "" {
		j.MediaURL = nonZero(clipPath(c.ID) + "/media")
	}
	if c.ThumbnailKey != "" {
		j.ThumbnailURL = nonZero(clipPath(c.ID) + "/thumbnail")
	}
	if c.Status == StatusUploading {
		j.UploadURL = nonZero(clipPath(c.ID) + "/media")
	}
	return j
}

type commentJSON struct {
	ID        string    `json:"id"`
	Clip      string    `json:"clip"`
	Author    string    `json:"author"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

func toCommentJSON(c Comment) commentJSON {
	return commentJSON{ID: c.ID, Clip: c.ClipID, Author: c.Author, Body: c.Body, CreatedAt: c.CreatedAt.UTC()}
}

// Limits of clip fields.
const (
	maxTitle       = 100
	maxGame        = 64
	maxTags        = 10
	maxTag         = 32
	maxCommentBody = 2000
)

// cleanTitle trims a title and checks it: 1 to 100 printable characters.
func cleanTitle(s string) (string, error) {
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); !utf8.ValidString(s) || n == 0 || n > maxTitle {
		return "", partyline.Errorf(partyline.ErrInvalid, "title must be 1 to %d characters", maxTitle)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", partyline.Errorf(partyline.ErrInvalid, "title must be printable text")
	}
	return s, nil
}

// isSlug reports whether s is lowercase words of [a-z0-9] joined by single
// hyphens, at most n bytes.
func isSlug(s string, n int) bool {
	if s == "" || len(s) > n || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func checkGame(s string) error {
	if !isSlug(s, maxGame) {
		return partyline.Errorf(partyline.ErrInvalid, "game must be a slug like \"valorant\" or \"counter-strike-2\" (a-z, 0-9 and single hyphens, at most %d)", maxGame)
	}
	return nil
}

// cleanTags lowercases, trims and dedupes tags, keeping their order: at
// most 10 of 1 to 32 characters of [a-z0-9_-].
func cleanTags(tags []string) ([]string, error) {
	if len(tags) > maxTags {
		return nil, partyline.Errorf(partyline.ErrInvalid, "at most %d tags", maxTags)
	}
	out := make([]string, 0, len(tags))
	seen := map[string]bool{}
	for _, t := range tags {
		t = strings.ToLower(strings.TrimSpace(t))
		ok := t != "" && len(t) <= maxTag
		for i := 0; ok && i < len(t); i++ {
			c := t[i]
			ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		}
		if !ok {
			return nil, partyline.Errorf(partyline.ErrInvalid, "a tag must be 1 to %d characters of a-z, 0-9, - and _", maxTag)
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out, nil
}

func checkVisibility(v string) error {
	switch v {
	case Public, Unlisted, Private:
		return nil
	}
	return partyline.Errorf(partyline.ErrInvalid, "visibility must be public, unlisted or private")
}

// pageQuery reads ?cursor= and ?limit=.
func pageQuery(r *http.Request) (cursor string, limit int, err error) {
	q := r.URL.Query()
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 {
			return "", 0, partyline.Errorf(partyline.ErrInvalid, "limit must be a positive integer")
		}
	}
	return q.Get("cursor"), limit, nil
}
