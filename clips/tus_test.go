package clips_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strconv"
	"testing"

	"github.com/partyline/partyline/clips"
)

func tusHeaders(h map[string]string) map[string]string {
	out := map[string]string{"Tus-Resumable": "1.0.0"}
	for k, v := range h {
		out[k] = v
	}
	return out
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// tusCreate creates an upload for the clip and returns its path.
func (s *stack) tusCreate(user, clipID string, length int) string {
	s.t.Helper()
	r := s.want(http.StatusCreated, req{method: "POST", path: "/v1/uploads", user: user, header: tusHeaders(map[string]string{
		"Upload-Length": strconv.Itoa(length), "Upload-Metadata": "clip_id " + b64(clipID) + ",filename " + b64("ace.mp4"),
	})})
	loc := r.header.Get("Location")
	if loc == "" || r.header.Get("Tus-Resumable") != "1.0.0" {
		s.t.Fatalf("tus create: Location %q Tus-Resumable %q", loc, r.header.Get("Tus-Resumable"))
	}
	return loc
}

func (s *stack) tusOffset(user, path string) int {
	s.t.Helper()
	r := s.want(http.StatusOK, req{method: "HEAD", path: path, user: user, header: tusHeaders(nil)})
	n, err := strconv.Atoi(r.header.Get("Upload-Offset"))
	if err != nil {
		s.t.Fatalf("HEAD: Upload-Offset %q", r.header.Get("Upload-Offset"))
	}
	return n
}

func (s *stack) tusPatch(user, path string, offset int, b []byte) resp {
	s.t.Helper()
	return s.do(req{method: "PATCH", path: path, user: user, body: b, header: tusHeaders(map[string]string{
		"Upload-Offset": strconv.Itoa(offset), "Content-Type": "application/offset+octet-stream",
	})})
}

func TestTusResumedUpload(t *testing.T) {
	s := newStack(t, stackOpts{})
	opts := s.want(http.StatusNoContent, req{method: "OPTIONS", path: "/v1/uploads"})
	if opts.header.Get("Tus-Version") != "1.0.0" || opts.header.Get("Tus-Extension") != "creation,termination" ||
		opts.header.Get("Tus-Max-Size") != strconv.Itoa(clips.DefaultMaxUploadBytes) {
		t.Errorf("OPTIONS headers: %v", opts.header)
	}
	c := s.create("ada", clips.Public)
	media := fakeMP4(300_000)
	up := s.tusCreate("ada", c.ID, len(media))

	// Another user cannot see or touch the upload.
	s.want(http.StatusNotFound, req{method: "HEAD", path: up, user: "bo", header: tusHeaders(nil)})
	checkProblem(t, s.tusPatch("bo", up, 0, media[:100]), http.StatusNotFound)
	s.want(http.StatusNotFound, req{method: "DELETE", path: up, user: "bo", header: tusHeaders(nil)})
	s.want(http.StatusUnauthorized, req{method: "HEAD", path: up, header: tusHeaders(nil)})
	// A second upload for the clip points at the first.
	r := s.want(http.StatusConflict, req{method: "POST", path: "/v1/uploads", user: "ada", header: tusHeaders(map[string]string{
		"Upload-Length": "10", "Upload-Metadata": "clip_id " + b64(c.ID)})})
	if r.header.Get("Location") != up {
		t.Errorf("conflicting create: Location %q, want %q", r.header.Get("Location"), up)
	}

	// The first PATCH breaks off after 120 000 of the 200 000 bytes it announced.
	rawPut(t, s, up, "ada", map[string]string{"X-Method": "PATCH", "Tus-Resumable": "1.0.0",
		"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}, 200_000, media[:120_000])
	var offset int
	eventually(t, "the interrupted PATCH to be kept", func() bool {
		offset = s.tusOffset("ada", up)
		return offset > 0
	})
	if offset > 120_000 {
		t.Fatalf("offset %d after sending 120000 bytes", offset)
	}
	if got := s.get("ada", c.ID); got.Status != clips.StatusUploading {
		t.Fatalf("clip status %q mid-upload, want uploading", got.Status)
	}
	// A PATCH at the wrong offset is refused.
	checkProblem(t, s.tusPatch("ada", up, offset+1, media[offset+1:offset+10]), http.StatusConflict)
	// Resume: the rest in two PATCHes.
	mid := offset + (len(media)-offset)/2
	if r := s.tusPatch("ada", up, offset, media[offset:mid]); r.status != http.StatusNoContent || r.header.Get("Upload-Offset") != strconv.Itoa(mid) {
		t.Fatalf("PATCH: %d offset %q %s", r.status, r.header.Get("Upload-Offset"), r.body)
	}
	if r := s.tusPatch("ada", up, mid, media[mid:]); r.status != http.StatusNoContent {
		t.Fatalf("last PATCH: %d %s", r.status, r.body)
	}
	got := s.waitStatus("ada", c.ID, clips.StatusReady)
	if *got.SHA256 != sha(media) || *got.SizeBytes != int64(len(media)) {
		t.Errorf("after the resumed upload: sha %s size %d, want %s %d", *got.SHA256, *got.SizeBytes, sha(media), len(media))
	}
	served := s.want(http.StatusOK, req{method: "GET", path: "/v1/clips/" + c.ID + "/media", user: "bo"})
	if !bytes.Equal(served.body, media) {
		t.Errorf("the media served differs from the upload")
	}
	// The finished upload is gone.
	s.want(http.StatusNotFound, req{method: "HEAD", path: up, user: "ada", header: tusHeaders(nil)})
	// The clip has its media: another upload is refused.
	s.want(http.StatusConflict, req{method: "POST", path: "/v1/uploads", user: "ada", header: tusHeaders(map[string]string{
		"Upload-Length": "10", "Upload-Metadata": "clip_id " + b64(c.ID)})})
}

func TestTusRefusals(t *testing.T) {
	s := newStack(t, stackOpts{edit: func(o *clips.Options) { o.MaxUploadBytes = 1 << 20 }})
	c := s.create("ada", clips.Public)
	meta := "clip_id " + b64(c.ID)
	for _, tc := range []struct {
		name   string
		user   string
		header map[string]string
		status int
	}{
		{"no tus version", "ada", map[string]string{"Upload-Length": "10", "Upload-Metadata": meta}, http.StatusPreconditionFailed},
		{"too large", "ada", tusHeaders(map[string]string{"Upload-Length": strconv.Itoa(2 << 20), "Upload-Metadata": meta}), http.StatusRequestEntityTooLarge},
		{"no length", "ada", tusHeaders(map[string]string{"Upload-Metadata": meta}), http.StatusBadRequest},
		{"no clip", "ada", tusHeaders(map[string]string{"Upload-Length": "10"}), http.StatusBadRequest},
		{"bad metadata", "ada", tusHeaders(map[string]string{"Upload-Length": "10", "Upload-Metadata": "clip_id !!"}), http.StatusBadRequest},
		{"wrong filetype", "ada", tusHeaders(map[string]string{"Upload-Length": "10", "Upload-Metadata": meta + ",filetype " + b64("text/html")}), http.StatusUnsupportedMediaType},
		{"not the owner", "bo", tusHeaders(map[string]string{"Upload-Length": "10", "Upload-Metadata": meta}), http.StatusNotFound},
		{"anonymous", "", tusHeaders(map[string]string{"Upload-Length": "10", "Upload-Metadata": meta}), http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.want(tc.status, req{method: "POST", path: "/v1/uploads", user: tc.user, header: tc.header})
		})
	}
	t.Run("polyglot discarded", func(t *testing.T) {
		up := s.tusCreate("ada", c.ID, 5000)
		html := append([]byte("<html><script>x()</script>"), fakeMP4(1000)...)
		checkProblem(t, s.tusPatch("ada", up, 0, html), http.StatusUnsupportedMediaType)
		s.want(http.StatusNotFound, req{method: "HEAD", path: up, user: "ada", header: tusHeaders(nil)})
	})
	t.Run("wrong patch type", func(t *testing.T) {
		up := s.tusCreate("ada", c.ID, 5000)
		r := s.do(req{method: "PATCH", path: up, user: "ada", body: fakeMP4(100), header: tusHeaders(map[string]string{"Upload-Offset": "0"})})
		checkProblem(t, r, http.StatusUnsupportedMediaType)
		// Termination.
		s.want(http.StatusNoContent, req{method: "DELETE", path: up, user: "ada", header: tusHeaders(nil)})
		s.want(http.StatusNotFound, req{method: "HEAD", path: up, user: "ada", header: tusHeaders(nil)})
	})
	t.Run("body past the length", func(t *testing.T) {
		up := s.tusCreate("ada", c.ID, 500)
		checkProblem(t, s.tusPatch("ada", up, 0, fakeMP4(600)), http.StatusRequestEntityTooLarge)
		if got := s.tusOffset("ada", up); got != 0 {
			t.Errorf("offset %d after a refused PATCH, want 0", got)
		}
	})
}
