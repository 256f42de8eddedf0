package clips

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/httpx"
)

// blobKey returns a new key for a blob of the clip. Each upload gets a key
// of its own, so a losing concurrent upload never overwrites the winner's.
func blobKey(clipID, kind, ext string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "clips/" + clipID + "/" + kind + "-" + hex.EncodeToString(b[:]) + ext
}

// declaredType maps an upload's Content-Type to the media type the content
// must sniff as: "" (anything accepted) for none or
// application/octet-stream, or TypeMP4 / TypeWebM. Anything else is
// unsupported.
func declaredType(ct string) (string, error) {
	if ct == "" {
		return "", nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case err != nil:
	case mt == "application/octet-stream":
		return "", nil
	case mt == TypeMP4, mt == TypeWebM:
		return mt, nil
	}
	return "", partyline.Errorf(partyline.ErrUnsupported, "upload video/mp4 or video/webm, not %q", ct)
}

// HandleUpload serves PUT /v1/clips/{id}/media: the owner uploads the
// clip's media once, as the raw request body. The body is streamed to
// Blobs while it is sniffed (MP4 or WebM only: 415), hashed and counted
// (over MaxUploadBytes: 413, refused up front when Content-Length says
// so). A second upload is 409. The answer is the clip, now processing.
// Mount it with the same optional authentication as Routes, but outside
// any small body limit.
func (s *Service) HandleUpload(w http.ResponseWriter, r *http.Request) {
	s.withClip(forOwner, nil, s.upload)(w, r)
}

func (s *Service) upload(w http.ResponseWriter, r *http.Request, c Clip, _ string) {
	if err := s.checkUpload(c, r.ContentLength); err != nil {
		uploadError(w, r, err)
		return
	}
	declared, err := declaredType(r.Header.Get("Content-Type"))
	if err != nil {
		uploadError(w, r, err)
		return
	}
	if !s.startReceiving(c.ID) {
		uploadError(w, r, partyline.Errorf(partyline.ErrConflict, "the clip's media is being uploaded already"))
		return
	}
	defer s.stopReceiving(c.ID)
	c, err = s.ingestMedia(r.Context(), c, r.Body, declared)
	if err != nil {
		uploadError(w, r, err)
		return
	}
	httpx.JSON(w, r, http.StatusOK, ToResource(c))
}

// checkUpload refuses an upload to a clip that has its media, or whose
// announced length is over the cap.
func (s *Service) checkUpload(c Clip, length int64) error {
	if c.Status != StatusUploading {
		return partyline.Errorf(partyline.ErrConflict, "the clip's media was uploaded already")
	}
	if length > s.opts.MaxUploadBytes {
		return partyline.Errorf(partyline.ErrTooLarge, "the upload is over the limit of %d bytes", s.opts.MaxUploadBytes)
	}
	return nil
}

// uploadError answers a failed upload and closes the connection, so an
// unread body is not drained.
func uploadError(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("Connection", "close")
	httpx.Error(w, r, err)
}

// startReceiving claims the clip for one upload in this process.
func (s *Service) startReceiving(id string) bool {
	s.recvMu.Lock()
	defer s.recvMu.Unlock()
	if s.receiving[id] {
		return false
	}
	s.receiving[id] = true
	return true
}

func (s *Service) stopReceiving(id string) {
	s.recvMu.Lock()
	delete(s.receiving, id)
	s.recvMu.Unlock()
}

// ingestMedia streams body into Blobs as the media of c (sniffed, capped,
// hashed), then moves the clip from uploading to processing and queues it
// for processing. The move is conditional, so of two uploads only one
// wins; the other's blob is deleted and it gets ErrConflict. On any
// failure nothing of the upload remains.
func (s *Service) ingestMedia(ctx context.Context, c Clip, body io.Reader, declared string) (Clip, error) {
	g := newIngest(body, s.opts.MaxUploadBytes, declared)
	key := blobKey(c.ID, "media", "")
	n, err := s.blobs.Put(ctx, key, g)
	if err != nil {
		if g.err != nil {
			return Clip{}, g.err
		}
		return Clip{}, depError("store media of clip "+c.ID, err)
	}
	c.Status, c.SizeBytes, c.ContentType, c.SHA256, c.MediaKey = StatusProcessing, n, g.ctype, g.sum(), key
	c.UpdatedAt = time.Time{}
	if err := s.store.TransitionClip(ctx, c, StatusUploading); err != nil {
		s.deleteBlobs(context.WithoutCancel(ctx), key)
		switch {
		case errors.Is(err, partyline.ErrConflict):
			return Clip{}, partyline.Errorf(partyline.ErrConflict, "the clip's media was uploaded already")
		case errors.Is(err, partyline.ErrNotFound):
			return Clip{}, errNoClip
		}
		return Clip{}, depError("accept media of clip "+c.ID, err)
	}
	s.enqueue(c.ID)
	if got, err := s.store.GetClip(ctx, c.ID); err == nil {
		c = got
	}
	return c, nil
}

// problemWriter turns the error statuses http.ServeContent writes itself
// (416 for a range it cannot satisfy, 412) into problem+json.
type problemWriter struct {
	http.ResponseWriter
	r       *http.Request
	problem bool
}

func (w *problemWriter) WriteHeader(code int) {
	if code < 400 || w.problem {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.problem = true
	detail := http.StatusText(code)
	if code == http.StatusRequestedRangeNotSatisfiable {
		detail = "the range is not satisfiable; see Content-Range for the size"
	}
	w.Header().Del("Content-Length")
	httpx.WriteProblem(w.ResponseWriter, w.r, code, detail)
}

func (w *problemWriter) Write(b []byte) (int, error) {
	if w.problem {
		return len(b), nil // ServeContent's plain-text body is replaced
	}
	return w.ResponseWriter.Write(b)
}

// serveBlob answers GET for a blob: a redirect when Blobs gives a URL,
// otherwise the bytes with Range, ETag and If-None-Match support.
func (s *Service) serveBlob(w http.ResponseWriter, r *http.Request, c Clip, key, ctype, etag string) {
	b, err := s.blobs.Get(r.Context(), key)
	if errors.Is(err, partyline.ErrNotFound) {
		httpx.Error(w, r, partyline.Errorf(partyline.ErrNotFound, "the clip has no such media"))
		return
	}
	if err != nil {
		httpx.Error(w, r, depError("get blob of clip "+c.ID, err))
		return
	}
	h := w.Header()
	h.Set("Vary", "Authorization")
	if c.Visibility == Public && c.Status == StatusReady {
		h.Set("Cache-Control", "public, no-cache")
	} else {
		h.Set("Cache-Control", "private, no-cache")
	}
	if b.URL != "" {
		http.Redirect(w, r, b.URL, http.StatusTemporaryRedirect)
		return
	}
	defer b.Content.Close()
	h.Set("Content-Type", ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	// Media is never a document: a polyglot file cannot run as one.
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Content-Disposition", "inline")
	if etag != "" {
		h.Set("ETag", `"`+etag+`"`)
	}
	http.ServeContent(&problemWriter{ResponseWriter: w, r: r}, r, "", b.ModTime, b.Content)
}

func (s *Service) handleMedia(w http.ResponseWriter, r *http.Request, c Clip, _ string) {
	if c.MediaKey == "" {
		httpx.Error(w, r, partyline.Errorf(partyline.ErrNotFound, "the clip has no media yet"))
		return
	}
	s.serveBlob(w, r, c, c.MediaKey, c.ContentType, c.SHA256)
}

func (s *Service) handleThumbnail(w http.ResponseWriter, r *http.Request, c Clip, _ string) {
	if c.ThumbnailKey == "" {
		httpx.Error(w, r, partyline.Errorf(partyline.ErrNotFound, "the clip has no thumbnail"))
		return
	}
	// The key is unique per thumbnail, so it serves as its ETag.
	s.serveBlob(w, r, c, c.ThumbnailKey, "image/jpeg", strings.ReplaceAll(c.ThumbnailKey, "/", "."))
}
