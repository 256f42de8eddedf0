package clips_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/internal/server/servertest"
	"github.com/partyline/partyline/internal/testenv"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestUploadAndProbe(t *testing.T) {
	media := realMP4(t)
	s := newStack(t, stackOpts{tools: true})
	if !s.svc.MediaTools() {
		t.Fatalf("ffprobe and ffmpeg are installed but the service does not use them")
	}
	c := s.create("ada", clips.Public)
	if c.Status != clips.StatusUploading || c.UploadURL == nil || *c.UploadURL != "/v1/clips/"+c.ID+"/media" {
		t.Fatalf("created clip: status %q upload_url %v", c.Status, c.UploadURL)
	}
	r := s.upload("ada", c.ID, media, "video/mp4")
	if r.Status != http.StatusOK {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	got := s.waitStatus("ada", c.ID, clips.StatusReady)
	if got.DurationMS == nil || *got.DurationMS < 1800 || *got.DurationMS > 2200 {
		t.Errorf("duration_ms = %v, want about 2000", got.DurationMS)
	}
	if got.Width == nil || got.Height == nil || *got.Width != 320 || *got.Height != 240 {
		t.Errorf("resolution = %v x %v, want 320 x 240", got.Width, got.Height)
	}
	if got.SizeBytes == nil || *got.SizeBytes != int64(len(media)) || got.SHA256 == nil || *got.SHA256 != sha(media) {
		t.Errorf("size %v sha %v, want %d %s", got.SizeBytes, got.SHA256, len(media), sha(media))
	}
	if got.ContentType == nil || *got.ContentType != clips.TypeMP4 || got.UploadURL != nil {
		t.Errorf("content_type %v upload_url %v", got.ContentType, got.UploadURL)
	}
	if got.ThumbnailURL == nil {
		t.Fatalf("no thumbnail_url on a processed clip")
	}
	th := s.srv.Want(s.t, http.StatusOK, servertest.Request{Method: "GET", Path: *got.ThumbnailURL})
	if ct := th.Header.Get("Content-Type"); ct != "image/jpeg" || !bytes.HasPrefix(th.Body, []byte{0xFF, 0xD8, 0xFF}) {
		t.Errorf("thumbnail: Content-Type %q, starts % x; want a JPEG", ct, th.Body[:min(4, len(th.Body))])
	}
	m := s.srv.Want(s.t, http.StatusOK, servertest.Request{Method: "GET", Path: *got.MediaURL})
	if !bytes.Equal(m.Body, media) {
		t.Errorf("media served back differs from the upload")
	}
}

func TestProbeRejectsNonVideo(t *testing.T) {
	realMP4(t) // skips without ffmpeg
	s := newStack(t, stackOpts{tools: true})
	c := s.create("ada", clips.Public)
	if r := s.upload("ada", c.ID, fakeMP4(4096), ""); r.Status != http.StatusOK {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	got := s.waitStatus("ada", c.ID, clips.StatusFailed)
	if got.FailReason == nil || *got.FailReason == "" {
		t.Errorf("failed clip has no fail_reason")
	}
	s.srv.Want(s.t, http.StatusNotFound, servertest.Request{Method: "GET", Path: "/v1/clips/" + c.ID, Token: "bo"})
}

func TestReadyWithoutMediaTools(t *testing.T) {
	s := newStack(t, stackOpts{})
	c := s.create("ada", clips.Public)
	media := fakeMP4(10_000)
	if r := s.upload("ada", c.ID, media, "application/octet-stream"); r.Status != http.StatusOK {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	got := s.waitStatus("ada", c.ID, clips.StatusReady)
	if got.DurationMS != nil || got.ThumbnailURL != nil || got.Width != nil {
		t.Errorf("without ffprobe: duration %v thumbnail %v width %v, want all null", got.DurationMS, got.ThumbnailURL, got.Width)
	}
	if *got.SHA256 != sha(media) || *got.SizeBytes != 10_000 {
		t.Errorf("sha %v size %v", *got.SHA256, *got.SizeBytes)
	}
	s.srv.Want(s.t, http.StatusNotFound, servertest.Request{Method: "GET", Path: "/v1/clips/" + c.ID + "/thumbnail"})
}

func TestMediaRanges(t *testing.T) {
	s := newStack(t, stackOpts{})
	c := s.create("ada", clips.Public)
	media := fakeMP4(1000)
	s.upload("ada", c.ID, media, "video/mp4")
	s.waitStatus("ada", c.ID, clips.StatusReady)
	path := "/v1/clips/" + c.ID + "/media"
	etag := `"` + sha(media) + `"`

	for _, tc := range []struct {
		name, rng    string
		status       int
		want         []byte
		contentRange string
	}{
		{"whole", "", http.StatusOK, media, ""},
		{"first bytes", "bytes=0-9", http.StatusPartialContent, media[:10], "bytes 0-9/1000"},
		{"middle", "bytes=400-599", http.StatusPartialContent, media[400:600], "bytes 400-599/1000"},
		{"suffix", "bytes=-50", http.StatusPartialContent, media[950:], "bytes 950-999/1000"},
		{"open end", "bytes=990-", http.StatusPartialContent, media[990:], "bytes 990-999/1000"},
		{"unsatisfiable", "bytes=5000-6000", http.StatusRequestedRangeNotSatisfiable, nil, "bytes */1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.rng != "" {
				h["Range"] = tc.rng
			}
			r := s.srv.Want(s.t, tc.status, servertest.Request{Method: "GET", Path: path, Header: h})
			if got := r.Header.Get("Content-Range"); got != tc.contentRange {
				t.Errorf("Content-Range = %q, want %q", got, tc.contentRange)
			}
			if r.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", r.Header.Get("X-Content-Type-Options"))
			}
			if tc.status >= 400 {
				return
			}
			if !bytes.Equal(r.Body, tc.want) {
				t.Errorf("body: %d bytes, want %d bytes of the media", len(r.Body), len(tc.want))
			}
			if got := r.Header.Get("Content-Type"); got != "video/mp4" {
				t.Errorf("Content-Type = %q, want video/mp4", got)
			}
			if got := r.Header.Get("ETag"); got != etag {
				t.Errorf("ETag = %q, want %q", got, etag)
			}
		})
	}
	t.Run("if-none-match", func(t *testing.T) {
		r := s.srv.Do(s.t, servertest.Request{Method: "GET", Path: path, Header: map[string]string{"If-None-Match": etag}})
		if r.Status != http.StatusNotModified || len(r.Body) != 0 {
			t.Errorf("If-None-Match: status %d with %d bytes, want 304 and none", r.Status, len(r.Body))
		}
		r = s.srv.Do(s.t, servertest.Request{Method: "GET", Path: path, Header: map[string]string{"If-None-Match": `"other"`}})
		if r.Status != http.StatusOK {
			t.Errorf("If-None-Match of another tag: status %d, want 200", r.Status)
		}
	})
}

// rawPut sends a PUT whose Content-Length announces more than it sends,
// then closes its side, as a client that dies mid-upload.
func rawPut(t *testing.T, s *stack, path, user string, header map[string]string, length int, body []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.srv.URL, "http://"))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	method := "PUT"
	if m := header["X-Method"]; m != "" {
		method = m
		delete(header, "X-Method")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n", method, path, user, length)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := conn.Write(append([]byte(b.String()), body...)); err != nil {
		t.Fatalf("write: %v", err)
	}
	conn.(*net.TCPConn).CloseWrite()
	// The server answers (or just closes) once it sees the body end early.
	_, _ = bufio.NewReader(conn).ReadString('\n')
}

func TestUploadBadInput(t *testing.T) {
	s := newStack(t, stackOpts{edit: func(o *clips.Options) { o.MaxUploadBytes = 64 << 10 }})
	html := []byte("<!doctype html><html><script>alert(document.cookie)</script></html>")
	polyglot := append(append([]byte{}, html...), fakeMP4(1000)...)
	webmHead := []byte{0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0x82, 0x84, 'w', 'e', 'b', 'm', 0x42, 0x87, 0x81, 0x04}
	for _, tc := range []struct {
		name   string
		media  []byte
		ctype  string
		status int
	}{
		{"oversized", fakeMP4(65<<10 + 1), "video/mp4", http.StatusRequestEntityTooLarge},
		{"polyglot html", polyglot, "video/mp4", http.StatusUnsupportedMediaType},
		{"plain html", html, "", http.StatusUnsupportedMediaType},
		{"wrong content type", fakeMP4(1000), "text/html", http.StatusUnsupportedMediaType},
		{"declared webm, is mp4", fakeMP4(1000), "video/webm", http.StatusUnsupportedMediaType},
		{"matroska is not webm", bytes.Replace(webmHead, []byte("webm"), []byte("mkvx"), 1), "", http.StatusUnsupportedMediaType},
		{"quicktime", []byte("\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  moov"), "", http.StatusUnsupportedMediaType},
		{"empty", []byte{}, "video/mp4", http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := s.create("ada", clips.Public)
			r := s.upload("ada", c.ID, tc.media, tc.ctype)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d; body %s", r.Status, tc.status, r.Body)
			}
			servertest.WantProblem(t, r, tc.status)
			if got := s.get("ada", c.ID); got.Status != clips.StatusUploading || got.MediaURL != nil {
				t.Errorf("after a refused upload: status %q media_url %v, want uploading and none", got.Status, got.MediaURL)
			}
			if files := s.blobFiles(); len(files) != 0 {
				t.Errorf("a refused upload left blobs: %v", files)
			}
		})
	}
	t.Run("oversized without Content-Length", func(t *testing.T) {
		c := s.create("ada", clips.Public)
		r, err := http.NewRequest("PUT", s.srv.URL+"/v1/clips/"+c.ID+"/media", struct{ *bytes.Reader }{bytes.NewReader(fakeMP4(200 << 10))})
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", "Bearer ada")
		r.ContentLength = -1 // chunked: the cap is found while reading
		res, err := s.srv.HTTP.Do(r)
		if err == nil {
			res.Body.Close()
			if res.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("status %d, want 413", res.StatusCode)
			}
		} // the server may close before the client finished sending
		if got := s.get("ada", c.ID); got.Status != clips.StatusUploading {
			t.Errorf("status %q, want uploading", got.Status)
		}
		if files := s.blobFiles(); len(files) != 0 {
			t.Errorf("an oversized upload left blobs: %v", files)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		c := s.create("ada", clips.Public)
		rawPut(t, s, "/v1/clips/"+c.ID+"/media", "ada", map[string]string{"Content-Type": "video/mp4"}, 50_000, fakeMP4(20_000))
		testenv.Eventually(t, "the truncated upload to be given up", func() bool { return len(s.blobFiles()) == 0 })
		if got := s.get("ada", c.ID); got.Status != clips.StatusUploading {
			t.Errorf("after a truncated upload: status %q, want uploading", got.Status)
		}
		// The clip still takes a whole upload afterwards.
		if r := s.upload("ada", c.ID, fakeMP4(1000), "video/mp4"); r.Status != http.StatusOK {
			t.Errorf("upload after a truncated one: %d %s", r.Status, r.Body)
		}
	})
	t.Run("second upload", func(t *testing.T) {
		c := s.create("ada", clips.Public)
		first := fakeMP4(1000)
		if r := s.upload("ada", c.ID, first, "video/mp4"); r.Status != http.StatusOK {
			t.Fatalf("first upload: %d %s", r.Status, r.Body)
		}
		r := s.upload("ada", c.ID, fakeMP4(2000), "video/mp4")
		servertest.WantProblem(t, r, http.StatusConflict)
		got := s.waitStatus("ada", c.ID, clips.StatusReady)
		if *got.SHA256 != sha(first) {
			t.Errorf("the second upload replaced the first")
		}
	})
	t.Run("bad token", func(t *testing.T) {
		c := s.create("ada", clips.Public)
		r := s.upload("bad", c.ID, fakeMP4(1000), "video/mp4")
		servertest.WantProblem(t, r, http.StatusUnauthorized)
	})
}

func TestConcurrentUploadsOneWins(t *testing.T) {
	s := newStack(t, stackOpts{})
	c := s.create("ada", clips.Public)
	const n = 6
	statuses := make(chan int, n)
	for range n {
		go func() {
			r, err := http.NewRequest("PUT", s.srv.URL+"/v1/clips/"+c.ID+"/media", bytes.NewReader(fakeMP4(300<<10)))
			if err != nil {
				statuses <- 0
				return
			}
			r.Header.Set("Authorization", "Bearer ada")
			res, err := s.srv.HTTP.Do(r)
			if err != nil {
				statuses <- 0
				return
			}
			res.Body.Close()
			statuses <- res.StatusCode
		}()
	}
	got := map[int]int{}
	for range n {
		got[<-statuses]++
	}
	if diff := cmp.Diff(map[int]int{http.StatusOK: 1, http.StatusConflict: n - 1}, got); diff != "" {
		t.Errorf("statuses of %d concurrent uploads (-want +got):\n%s", n, diff)
	}
	s.waitStatus("ada", c.ID, clips.StatusReady)
	if files := s.blobFiles(); len(files) != 1 {
		t.Errorf("blobs after concurrent uploads: %v, want the winner's only", files)
	}
}
