package clips_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strconv"
	"testing"

	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/internal/server/servertest"
	"github.com/partyline/partyline/internal/testenv"
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
	r := s.srv.Want(s.t, http.StatusCreated, servertest.Request{Method: "POST", Path: "/v1/uploads", Token: user, Header: tusHeaders(map[string]string{
		"Upload-Length": strconv.Itoa(length), "Upload-Metadata": "clip_id " + b64(clipID) + ",filename " + b64("ace.mp4"),
	})})
	loc := r.Header.Get("Location")
	if loc == "" || r.Header.Get("Tus-Resumable") != "1.0.0" {
		s.t.Fatalf("tus create: Location %q Tus-Resumable %q", loc, r.Header.Get("Tus-Resumable"))
	}
	return loc
}

func (s *stack) tusOffset(user, path string) int {
	s.t.Helper()
	r := s.srv.Want(s.t, http.StatusOK, servertest.Request{Method: "HEAD", Path: path, Token: user, Header: tusHeaders(nil)})
	n, err := strconv.Atoi(r.Header.Get("Upload-Offset"))
	if err != nil {
		s.t.Fatalf("HEAD: Upload-Offset %q", r.Header.Get("Upload-Offset"))
	}
	return n
}

func (s *stack) tusPatch(user, path string, offset int, b []byte) servertest.Response {
	s.t.Helper()
	return s.srv.Do(s.t, servertest.Request{Method: "PATCH", Path: path, Token: user, Body: b, Header: tusHeaders(map[string]string{
		"Upload-Offset": strconv.Itoa(offset), "Content-Type": "application/offset+octet-stream",
	})})
}

func TestTusResumedUpload(t *testing.T) {
	s := newStack(t, stackOpts{})
	opts := s.srv.Want(s.t, http.StatusNoContent, servertest.Request{Method: "OPTIONS", Path: "/v1/uploads"})
	if opts.Header.Get("Tus-Version") != "1.0.0" || opts.Header.Get("Tus-Extension") != "creation,termination" ||
		opts.Header.Get("Tus-Max-Size") != strconv.Itoa(clips.DefaultMaxUploadBytes) {
		t.Errorf("OPTIONS headers: %v", opts.Header)
	}
	c := s.create("ada", clips.Public)
	media := fakeMP4(300_000)
	up := s.tusCreate("ada", c.ID, len(media))

	// Another user cannot see or touch the upload.
	s.srv.Want(s.t, http.StatusNotFound, servertest.Request{Method: "HEAD", Path: up, Token: "bo", Header: tusHeaders(nil)})
	servertest.WantProblem(t, s.tusPatch("bo", up, 0, media[:100]), http.StatusNotFound)
	s.srv.Want(s.t, http.StatusNotFound, servertest.Request{Method: "DELETE", Path: up, Token: "bo", Header: tusHeaders(nil)})
	s.srv.Want(s.t, http.StatusUnauthorized, servertest.Request{Method: "HEAD", Path: up, Header: tusHeaders(nil)})
	// A second upload for the clip points at the first.
	r := s.srv.Want(s.t, http.StatusConflict, servertest.Request{Method: "POST", Path: "/v1/uploads", Token: "ada", Header: tusHeaders(map[string]string{
		"Upload-Length": "10", "Upload-Metadata": "clip_id " + b64(c.ID)})})
	if r.Header.Get("Location") != up {
		t.Errorf("conflicting create: Location %q, want %q", r.Header.Get("Location"), up)
	}

	// The first PATCH breaks off after 120 000 of the 200 000 bytes it announced.
	rawPut(t, s, up, "ada", map[string]string{"X-Method": "PATCH", "Tus-Resumable": "1.0.0",
		"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}, 200_000, media[:120_000])
	var offset int
	testenv.Eventually(t, "the interrupted PATCH to be kept", func() bool {
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
	servertest.WantProblem(t, s.tusPatch("ada", up, offset+1, media[offset+1:offset+10]), http.StatusConflict)
	// Resume: the rest in two PATCHes.
	mid := offset + (len(media)-offset)/2
	if r := s.tusPatch("ada", up, offset, media[offset:mid]); r.Status != http.StatusNoContent || r.Header.Get("Upload-Offset") != strconv.Itoa(mid) {
		t.Fatalf("PATCH: %d offset %q %s", r.Status, r.Header.Get("Upload-Offset"), r.Body)
	}
	if r := s.tusPatch("ada", up, mid, media[mid:]); r.Status != http.StatusNoContent {
		t.Fatalf("last PATCH: %d %s", r.Status, r.Body)
	}
	got := s.waitStatus("ada", c.ID, clips.StatusReady)
	if *got.SHA256 != sha(media) || *got.SizeBytes != int64(len(media)) {
		t.Errorf("after the resumed upload: sha %s size %d, want %s %d", *got.SHA256, *got.SizeBytes, sha(media), len(media))
	}
	served := s.srv.Want(s.t, http.StatusOK, servertest.Request{Method: "GET", Path: "/v1/clips/" + c.ID + "/media", Token: "bo"})
	if !bytes.Equal(served.Body, media) {
		t.Errorf("the media served differs from the upload")
	}
	// The finished upload is gone.
	s.srv.Want(s.t, http.StatusNotFound, servertest.Request{Method: "HEAD", Path: up, Token: "ada", Header: tusHeaders(nil)})
	// The clip has its media: another upload is refused.
	s.srv.Want(s.t, http.StatusConflict, servertest.Request{Method: "POST", Path: "/v1/uploads", Token: "ada", Header: tusHeaders(map[string]string{
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
			s.srv.Want(s.t, tc.status, servertest.Request{Method: "POST", Path: "/v1/uploads", Token: tc.user, Header: tc.header})
		})
	}
	t.Run("polyglot discarded", func(t *testing.T) {
		up := s.tusCreate("ada", c.ID, 5000)
		html := append([]byte("<html><script>x()</script>"), fakeMP4(1000)...)
		servertest.WantProblem(t, s.tusPatch("ada", up, 0, html), http.StatusUnsupportedMediaType)
		s.srv.Want(s.t, http.StatusNotFound, servertest.Request{Method: "HEAD", Path: up, Token: "ada", Header: tusHeaders(nil)})
	})
	t.Run("wrong patch type", func(t *testing.T) {
		up := s.tusCreate("ada", c.ID, 5000)
		r := s.srv.Do(s.t, servertest.Request{Method: "PATCH", Path: up, Token: "ada", Body: fakeMP4(100), Header: tusHeaders(map[string]string{"Upload-Offset": "0"})})
		servertest.WantProblem(t, r, http.StatusUnsupportedMediaType)
		// Termination.
		s.srv.Want(s.t, http.StatusNoContent, servertest.Request{Method: "DELETE", Path: up, Token: "ada", Header: tusHeaders(nil)})
		s.srv.Want(s.t, http.StatusNotFound, servertest.Request{Method: "HEAD", Path: up, Token: "ada", Header: tusHeaders(nil)})
	})
	t.Run("body past the length", func(t *testing.T) {
		up := s.tusCreate("ada", c.ID, 500)
		servertest.WantProblem(t, s.tusPatch("ada", up, 0, fakeMP4(600)), http.StatusRequestEntityTooLarge)
		if got := s.tusOffset("ada", up); got != 0 {
			t.Errorf("offset %d after a refused PATCH, want 0", got)
		}
	})
}
