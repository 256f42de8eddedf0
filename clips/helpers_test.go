package clips_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/internal/httpx"
	"github.com/partyline/partyline/internal/server"
	"github.com/partyline/partyline/internal/server/servertest"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/store/sqlite"
)

// waitFor bounds every wait; a wait that succeeds returns at once.
const waitFor = 15 * time.Second

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitFor, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stack is a whole server built by the one assembly (servertest), whose
// clips get generous rate limits and, unless asked, no media tools.
type stack struct {
	t     *testing.T
	db    *sqlite.DB
	svc   *clips.Service
	node  *realtime.Node
	srv   *servertest.Server
	blobs string
}

type stackOpts struct {
	edit  func(*clips.Options)
	tools bool // use ffprobe and ffmpeg
}

func newStack(t *testing.T, so stackOpts) *stack {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(dir, "clips.db")})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	srv := servertest.Start(t, server.Options{
		DataDir: dir,
		Store:   db,
		TuneClips: func(o *clips.Options) {
			o.NoMediaTools = !so.tools
			o.UploadLimit = clips.RateLimit{Burst: 1000, Per: time.Second}
			o.LikeLimit = clips.RateLimit{Burst: 1000, Per: time.Second}
			o.CommentLimit = clips.RateLimit{Burst: 1000, Per: time.Second}
			if so.edit != nil {
				so.edit(o)
			}
		},
	})
	return &stack{t: t, db: db, svc: srv.Clips(), node: srv.Node(), srv: srv, blobs: filepath.Join(dir, "blobs")}
}

// req is one HTTP request of a test.
type req struct {
	method, path, user string
	body               any // nil, string, []byte or a value encoded as JSON
	header             map[string]string
}

// resp is what came back.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (s *stack) do(q req) resp {
	s.t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := q.body.(type) {
	case nil:
	case string:
		rd, ctype = strings.NewReader(b), "application/json"
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			s.t.Fatalf("encode: %v", err)
		}
		rd, ctype = bytes.NewReader(enc), "application/json"
	}
	r, err := http.NewRequest(q.method, s.srv.URL+q.path, rd)
	if err != nil {
		s.t.Fatalf("new request: %v", err)
	}
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	if q.user != "" {
		r.Header.Set("Authorization", "Bearer "+q.user)
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	res, err := s.srv.HTTP.Do(r)
	if err != nil {
		s.t.Fatalf("%s %s: %v", q.method, q.path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read: %v", q.method, q.path, err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// want sends q and fails unless the status is status; errors must be
// problem+json carrying that status.
func (s *stack) want(status int, q req) resp {
	s.t.Helper()
	r := s.do(q)
	if r.status != status {
		s.t.Fatalf("%s %s as %q: status %d, want %d; body %s", q.method, q.path, q.user, r.status, status, r.body)
	}
	if status >= 400 && q.method != http.MethodHead {
		checkProblem(s.t, r, status)
	}
	return r
}

func checkProblem(t *testing.T, r resp, status int) httpx.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d: Content-Type %q, want application/problem+json; body %s", r.status, ct, r.body)
	}
	var p httpx.Problem
	if err := json.Unmarshal(r.body, &p); err != nil || p.Status != status || p.Detail == "" {
		t.Fatalf("problem %s (err %v), want status %d and a detail", r.body, err, status)
	}
	return p
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// clipJSON is a clip as the API shows it, written out here rather than
// taken from clips.Resource, so that a renamed field fails the tests.
type clipJSON struct {
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

// create creates a clip through REST and returns it.
func (s *stack) create(user, visibility string) clipJSON {
	s.t.Helper()
	r := s.want(http.StatusCreated, req{method: "POST", path: "/v1/clips", user: user,
		body: map[string]any{"title": "ace on mirage", "game": "valorant", "tags": []string{"Clutch", "1v5"}, "visibility": visibility}})
	return decode[clipJSON](s.t, r.body)
}

// upload PUTs media as the clip's owner and returns the answer.
func (s *stack) upload(user, id string, media []byte, ctype string) resp {
	s.t.Helper()
	h := map[string]string{}
	if ctype != "" {
		h["Content-Type"] = ctype
	}
	return s.do(req{method: "PUT", path: "/v1/clips/" + id + "/media", user: user, body: media, header: h})
}

// get returns the clip as user sees it, failing unless it is visible.
func (s *stack) get(user, id string) clipJSON {
	s.t.Helper()
	return decode[clipJSON](s.t, s.want(http.StatusOK, req{method: "GET", path: "/v1/clips/" + id, user: user}).body)
}

// waitStatus waits until the owner sees the clip in status.
func (s *stack) waitStatus(owner, id, status string) clipJSON {
	s.t.Helper()
	var c clipJSON
	eventually(s.t, "clip "+id+" to be "+status, func() bool {
		c = s.get(owner, id)
		return c.Status == status
	})
	return c
}

// blobFiles lists the files in the blob directory, temporary ones included.
func (s *stack) blobFiles() []string {
	s.t.Helper()
	var out []string
	err := filepath.WalkDir(s.blobs, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(s.blobs, path)
			out = append(out, rel)
		}
		return err
	})
	if err != nil {
		s.t.Fatalf("walk blobs: %v", err)
	}
	return out
}

// fakeMP4 returns n bytes that sniff as MP4: an ftyp box, then random
// bytes. ffprobe does not read it as video.
func fakeMP4(n int) []byte {
	head := []byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2")
	b := make([]byte, max(n, len(head)))
	_, _ = rand.Read(b)
	copy(b, head)
	return b
}

var (
	mediaOnce sync.Once
	mediaDir  string
	mediaMP4  []byte
	mediaErr  error
)

// realMP4 returns a 2 s, 320x240, 15 fps H.264 MP4 made with ffmpeg,
// skipping the test when ffmpeg or ffprobe is missing.
func realMP4(t *testing.T) []byte {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("skipping: ffmpeg is not installed (clip processing tests need ffmpeg and ffprobe)")
	}
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("skipping: ffprobe is not installed (clip processing tests need ffmpeg and ffprobe)")
	}
	mediaOnce.Do(func() {
		if mediaDir, mediaErr = os.MkdirTemp("", "partyline-clips-test-"); mediaErr != nil {
			return
		}
		out := filepath.Join(mediaDir, "clip.mp4")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi",
			"-i", "testsrc=duration=2:size=320x240:rate=15", "-pix_fmt", "yuv420p", "-c:v", "libx264",
			"-preset", "ultrafast", "-movflags", "+faststart", out)
		if b, err := cmd.CombinedOutput(); err != nil {
			// Without libx264, the MPEG-4 part 2 encoder still makes an MP4.
			cmd = exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
				"-i", "testsrc=duration=2:size=320x240:rate=15", "-c:v", "mpeg4", out)
			if b2, err := cmd.CombinedOutput(); err != nil {
				mediaErr = fmt.Errorf("ffmpeg: %v: %s %s", err, b, b2)
				return
			}
		}
		mediaMP4, mediaErr = os.ReadFile(out)
	})
	if mediaErr != nil {
		t.Fatalf("making a test MP4: %v", mediaErr)
	}
	return mediaMP4
}

func cleanupMedia() {
	if mediaDir != "" {
		os.RemoveAll(mediaDir)
	}
}
