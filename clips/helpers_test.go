package clips_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/internal/server"
	"github.com/partyline/partyline/internal/server/servertest"
	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/store/sqlite"
)

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

// create creates a clip through REST and returns it.
func (s *stack) create(user, visibility string) clips.Resource {
	s.t.Helper()
	r := s.srv.Want(s.t, http.StatusCreated, servertest.Request{Method: "POST", Path: "/v1/clips", Token: user,
		Body: map[string]any{"title": "ace on mirage", "game": "valorant", "tags": []string{"Clutch", "1v5"}, "visibility": visibility}})
	return servertest.Decode[clips.Resource](s.t, r.Body)
}

// upload PUTs media as the clip's owner and returns the answer.
func (s *stack) upload(user, id string, media []byte, ctype string) servertest.Response {
	s.t.Helper()
	h := map[string]string{}
	if ctype != "" {
		h["Content-Type"] = ctype
	}
	return s.srv.Do(s.t, servertest.Request{Method: "PUT", Path: "/v1/clips/" + id + "/media", Token: user, Body: media, Header: h})
}

// get returns the clip as user sees it, failing unless it is visible.
func (s *stack) get(user, id string) clips.Resource {
	s.t.Helper()
	return servertest.Decode[clips.Resource](s.t, s.srv.Want(s.t, http.StatusOK, servertest.Request{Method: "GET", Path: "/v1/clips/" + id, Token: user}).Body)
}

// waitStatus waits until the owner sees the clip in status.
func (s *stack) waitStatus(owner, id, status string) clips.Resource {
	s.t.Helper()
	var c clips.Resource
	testenv.Eventually(s.t, "clip "+id+" to be "+status, func() bool {
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
