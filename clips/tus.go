package clips

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/httpx"
	"github.com/partyline/partyline/realtime/wire"
)

// tusVersion is the only tus protocol version served.
const tusVersion = "1.0.0"

// tusStore keeps resumable uploads in progress: per upload, <id>.json
// with what it is for and <id>.bin with the bytes received so far. The
// size of the .bin file is the upload's offset, so there is no second
// record to keep in step.
//
// One request at a time writes or removes an upload: it holds the upload's
// lock, which is two locks. locks keeps out the other requests of this
// process; an advisory lock on the .bin file (flock) keeps out the other
// nodes that share the directory, which every node must (see
// docs/operations.md).
type tusStore struct {
	dir string

	mu    sync.Mutex
	locks map[string]bool
}

type tusInfo struct {
	ID        string    `json:"id"`
	Clip      string    `json:"clip"`
	Owner     string    `json:"owner"`
	Length    int64     `json:"length"`
	Type      string    `json:"type"` // the declared media type, "" for any
	CreatedAt time.Time `json:"created_at"`
}

func newTusStore(dir string) (*tusStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("clips: upload directory: %w", err)
	}
	return &tusStore{dir: dir, locks: map[string]bool{}}, nil
}

// uploadID is the id of a clip's resumable upload. There is at most one per
// clip, which bounds the disk a user can hold with unfinished uploads.
func uploadID(clipID string) string { return "u_" + strings.TrimPrefix(clipID, "c_") }

func (t *tusStore) path(id, ext string) string { return filepath.Join(t.dir, id+ext) }

// lock takes the upload's lock and returns its release, or ok false when
// another request of this process or of another node holds it. An upload
// that does not exist (any more) is locked in this process only: there is
// nothing to write, and whoever holds it finds that out (load).
func (t *tusStore) lock(id string) (unlock func(), ok bool, err error) {
	t.mu.Lock()
	if t.locks[id] {
		t.mu.Unlock()
		return nil, false, nil
	}
	t.locks[id] = true
	t.mu.Unlock()
	release := func() {
		t.mu.Lock()
		delete(t.locks, id)
		t.mu.Unlock()
	}
	if !haveFlock {
		return release, true, nil
	}
	f, err := t.lockFile(id)
	switch {
	case errors.Is(err, errLocked):
		release()
		return nil, false, nil
	case err != nil:
		release()
		return nil, false, err
	case f == nil: // no such upload
		return release, true, nil
	}
	return func() { f.Close(); release() }, true, nil
}

// errLocked is lockFile's answer when another process holds the lock.
var errLocked = errors.New("locked")

// lockFile takes the flock of the upload's data file, and returns the file
// that holds it (closing it releases the lock), nil when the upload does
// not exist, or errLocked. The file may be removed and made again between
// its open and its lock, so the lock counts only on the file the path still
// names.
func (t *tusStore) lockFile(id string) (*os.File, error) {
	for range 3 {
		// Read and write: over NFS the lock is a POSIX write lock, which
		// needs a file open for writing.
		f, err := os.OpenFile(t.path(id, ".bin"), os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		ok, err := tryFlock(f)
		if err != nil || !ok {
			f.Close()
			if err == nil {
				err = errLocked
			}
			return nil, err
		}
		held, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		now, err := os.Stat(t.path(id, ".bin"))
		if errors.Is(err, fs.ErrNotExist) {
			f.Close()
			return nil, nil
		}
		if err == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return nil, errLocked // made again and again under us: someone is busy with it
}

// load returns the upload's record and current offset, or ErrNotFound.
func (t *tusStore) load(id string) (tusInfo, int64, error) {
	var info tusInfo
	b, err := os.ReadFile(t.path(id, ".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return info, 0, partyline.Errorf(partyline.ErrNotFound, "no such upload")
	}
	if err != nil {
		return info, 0, err
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return info, 0, fmt.Errorf("upload %s: %w", id, err)
	}
	st, err := os.Stat(t.path(id, ".bin"))
	if err != nil {
		return info, 0, fmt.Errorf("upload %s: %w", id, err)
	}
	return info, st.Size(), nil
}

// create writes a new upload's record (atomically) and its empty data file.
func (t *tusStore) create(info tusInfo) error {
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(t.path(info.ID, ".bin"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return partyline.Errorf(partyline.ErrConflict, "the clip has a resumable upload already: %s", tusPath(info.ID))
	}
	if err != nil {
		return err
	}
	f.Close()
	tmp := t.path(info.ID, ".json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.remove(info.ID)
		return err
	}
	if err := os.Rename(tmp, t.path(info.ID, ".json")); err != nil {
		t.remove(info.ID)
		return err
	}
	return nil
}

// remove deletes an upload's files.
func (t *tusStore) remove(id string) {
	for _, ext := range []string{".json", ".json.tmp", ".bin"} {
		_ = os.Remove(t.path(id, ext))
	}
}

// expire removes uploads older than maxAge that nobody is writing.
func (t *tusStore) expire(maxAge time.Duration) int {
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".bin")
		if !ok {
			continue
		}
		st, err := e.Info()
		if err != nil || time.Since(st.ModTime()) < maxAge {
			continue
		}
		unlock, ok, err := t.lock(id)
		if err != nil || !ok {
			continue
		}
		t.remove(id)
		unlock()
		n++
	}
	return n
}

func tusPath(id string) string { return "/v1/uploads/" + id }

// tusForget drops the clip's resumable upload, if any.
func (s *Service) tusForget(clipID string) {
	if s.tus == nil {
		return
	}
	id := uploadID(clipID)
	if unlock, ok, err := s.tus.lock(id); err == nil && ok {
		s.tus.remove(id)
		unlock()
	}
}

// UploadRoutes returns the resumable upload API, tus 1.0.0 with the
// creation and termination extensions, which the caller mounts at
// /v1/uploads outside any small body limit and behind the same optional
// authentication as Routes:
//
//	OPTIONS /       the server's tus capabilities
//	POST    /       create: Upload-Length, Upload-Metadata "clip_id <base64>[,filetype <base64>]"
//	HEAD    /{id}   the offset to resume from
//	PATCH   /{id}   append application/offset+octet-stream at Upload-Offset
//	DELETE  /{id}   abandon the upload
//
// Only the clip's owner may touch its upload (404 otherwise). When the
// last byte arrives, the file goes through the same checks as
// PUT /v1/clips/{id}/media and becomes the clip's media. With
// Options.UploadDir empty, every route answers 404.
func (s *Service) UploadRoutes() http.Handler {
	r := httpx.NewRouter()
	r.Use(s.tusHeaders)
	r.Options("/", s.handleTusOptions)
	r.Post("/", httpx.SignedIn(s.handleTusCreate))
	r.Options("/{id}", s.handleTusOptions)
	r.Head("/{id}", httpx.SignedIn(s.handleTusHead))
	r.Patch("/{id}", httpx.SignedIn(s.handleTusPatch))
	r.Delete("/{id}", httpx.SignedIn(s.handleTusDelete))
	return r
}

// tusHeaders sets Tus-Resumable on every answer and refuses requests of
// another protocol version (412), except OPTIONS, which asks what is served.
func (s *Service) tusHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.tus == nil {
			httpx.WriteProblem(w, r, http.StatusNotFound, "resumable uploads are off on this server")
			return
		}
		w.Header().Set("Tus-Resumable", tusVersion)
		if r.Method != http.MethodOptions && r.Header.Get("Tus-Resumable") != tusVersion {
			w.Header().Set("Tus-Version", tusVersion)
			httpx.WriteProblem(w, r, http.StatusPreconditionFailed, "Tus-Resumable must be "+tusVersion)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Service) handleTusOptions(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Tus-Version", tusVersion)
	h.Set("Tus-Extension", "creation,termination")
	h.Set("Tus-Max-Size", strconv.FormatInt(s.opts.MaxUploadBytes, 10))
	w.WriteHeader(http.StatusNoContent)
}

// parseMetadata decodes Upload-Metadata: comma-separated "key base64value"
// pairs (the value may be missing).
func parseMetadata(h string) (map[string]string, error) {
	md := map[string]string{}
	for _, pair := range strings.Split(h, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, " ")
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil || k == "" {
			return nil, partyline.Errorf(partyline.ErrInvalid, "Upload-Metadata must be key base64 pairs")
		}
		md[k] = string(b)
	}
	return md, nil
}

func headerInt(r *http.Request, name string) (int64, error) {
	v, err := strconv.ParseInt(r.Header.Get(name), 10, 64)
	if err != nil || v < 0 {
		return 0, partyline.Errorf(partyline.ErrInvalid, "%s must be a non-negative integer", name)
	}
	return v, nil
}

func (s *Service) handleTusCreate(w http.ResponseWriter, r *http.Request, user string) {
	length, err := headerInt(r, "Upload-Length")
	if err == nil && length == 0 {
		err = partyline.Errorf(partyline.ErrInvalid, "Upload-Length must be above 0")
	}
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	md, err := parseMetadata(r.Header.Get("Upload-Metadata"))
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	if md["clip_id"] == "" {
		httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "Upload-Metadata must carry clip_id"))
		return
	}
	declared, err := declaredType(md["filetype"])
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	c, err := s.owned(r.Context(), md["clip_id"], user)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	if err := s.checkUpload(c, length); err != nil {
		httpx.Error(w, r, err)
		return
	}
	info := tusInfo{ID: uploadID(c.ID), Clip: c.ID, Owner: user, Length: length, Type: declared, CreatedAt: time.Now().UTC()}
	if err := s.tus.create(info); err != nil {
		if errors.Is(err, partyline.ErrConflict) {
			w.Header().Set("Location", tusPath(info.ID))
		} else {
			err = depError("create upload", err)
		}
		httpx.Error(w, r, err)
		return
	}
	w.Header().Set("Location", tusPath(info.ID))
	w.WriteHeader(http.StatusCreated)
}

// ownedUpload loads the upload when user owns it; otherwise it does not
// exist.
func (s *Service) ownedUpload(id, user string) (tusInfo, int64, error) {
	noUpload := partyline.Errorf(partyline.ErrNotFound, "no such upload")
	if !strings.HasPrefix(id, "u_") || !wire.ValidID(id) {
		return tusInfo{}, 0, noUpload
	}
	info, offset, err := s.tus.load(id)
	switch {
	case errors.Is(err, partyline.ErrNotFound):
		return tusInfo{}, 0, noUpload
	case err != nil:
		return tusInfo{}, 0, depError("load upload", err)
	case info.Owner != user:
		return tusInfo{}, 0, noUpload
	}
	return info, offset, nil
}

// lockUpload takes the upload's lock for a request, or answers 409 when
// another request holds it.
func (s *Service) lockUpload(id string) (unlock func(), err error) {
	unlock, ok, err := s.tus.lock(id)
	if err != nil {
		return nil, depError("lock upload", err)
	}
	if !ok {
		return nil, partyline.Errorf(partyline.ErrConflict, "another request is writing this upload")
	}
	return unlock, nil
}

func (s *Service) handleTusHead(w http.ResponseWriter, r *http.Request, user string) {
	info, offset, err := s.ownedUpload(chi.URLParam(r, "id"), user)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	h.Set("Upload-Length", strconv.FormatInt(info.Length, 10))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (s *Service) handleTusPatch(w http.ResponseWriter, r *http.Request, user string) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/offset+octet-stream" {
		uploadError(w, r, partyline.Errorf(partyline.ErrUnsupported, "PATCH needs Content-Type application/offset+octet-stream"))
		return
	}
	at, err := headerInt(r, "Upload-Offset")
	if err != nil {
		uploadError(w, r, err)
		return
	}
	id := chi.URLParam(r, "id")
	if _, _, err := s.ownedUpload(id, user); err != nil {
		uploadError(w, r, err)
		return
	}
	unlock, err := s.lockUpload(id)
	if err != nil {
		uploadError(w, r, err)
		return
	}
	defer unlock()
	info, offset, err := s.ownedUpload(id, user) // again, under the lock
	if err != nil {
		uploadError(w, r, err)
		return
	}
	if at != offset {
		w.Header().Set("Upload-Offset", strconv.FormatInt(offset, 10))
		uploadError(w, r, partyline.Errorf(partyline.ErrConflict, "Upload-Offset is %d, the upload is at %d", at, offset))
		return
	}
	remaining := info.Length - offset
	if r.ContentLength > remaining {
		uploadError(w, r, partyline.Errorf(partyline.ErrTooLarge, "the body is longer than the %d bytes left", remaining))
		return
	}
	offset, err = s.tusAppend(id, offset, remaining, r.Body)
	w.Header().Set("Upload-Offset", strconv.FormatInt(offset, 10))
	if err == nil {
		err = s.tusCheckHead(id, info, offset)
	}
	if err == nil && offset == info.Length {
		err = s.tusFinish(r.Context(), info, user)
	}
	if err != nil {
		uploadError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// tusAppend appends body to the upload's data, at most remaining bytes,
// and returns the new offset. What arrived before the body broke off is
// kept (and synced), so the client resumes from there.
func (s *Service) tusAppend(id string, offset, remaining int64, body io.Reader) (int64, error) {
	f, err := os.OpenFile(s.tus.path(id, ".bin"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return offset, depError("open upload", err)
	}
	defer f.Close()
	n, rerr := io.Copy(f, io.LimitReader(body, remaining+1))
	if rerr != nil {
		rerr = readErr(rerr)
	}
	if n > remaining {
		if err := f.Truncate(offset + remaining); err != nil {
			return offset, depError("truncate upload", err)
		}
		n = remaining
		rerr = partyline.Errorf(partyline.ErrTooLarge, "the body is longer than the %d bytes left", remaining)
	}
	if err := f.Sync(); err != nil {
		return offset, depError("sync upload", err)
	}
	return offset + n, rerr
}

// tusCheckHead sniffs the upload as soon as its first bytes are in, so a
// file that is not MP4 or WebM is refused (and discarded) early rather than
// after the whole of it arrived.
func (s *Service) tusCheckHead(id string, info tusInfo, offset int64) error {
	if offset < sniffLen && offset < info.Length {
		return nil
	}
	f, err := os.Open(s.tus.path(id, ".bin"))
	if err != nil {
		return depError("open upload", err)
	}
	defer f.Close()
	head := make([]byte, sniffLen)
	n, _ := io.ReadFull(f, head)
	ctype := sniffVideo(head[:n])
	if ctype == "" || (info.Type != "" && info.Type != ctype) {
		s.tus.remove(id)
		return partyline.Errorf(partyline.ErrUnsupported, "the content is not an MP4 or WebM video of the declared type; the upload is discarded")
	}
	return nil
}

// tusFinish turns a complete upload into its clip's media through the same
// path as a direct upload, and removes the upload unless the failure was
// the server's own (then a PATCH of zero bytes retries).
func (s *Service) tusFinish(ctx context.Context, info tusInfo, user string) error {
	c, err := s.owned(ctx, info.Clip, user)
	if err == nil {
		err = s.checkUpload(c, info.Length)
	}
	if err == nil && !s.startReceiving(c.ID) {
		return partyline.Errorf(partyline.ErrConflict, "the clip's media is being uploaded already")
	}
	if err == nil {
		defer s.stopReceiving(c.ID)
		var f *os.File
		if f, err = os.Open(s.tus.path(info.ID, ".bin")); err != nil {
			return depError("open upload", err)
		}
		_, err = s.ingestMedia(ctx, c, f, info.Type)
		f.Close()
	}
	if err != nil && httpx.Status(err) >= 500 {
		return err
	}
	s.tus.remove(info.ID)
	return err
}

func (s *Service) handleTusDelete(w http.ResponseWriter, r *http.Request, user string) {
	id := chi.URLParam(r, "id")
	if _, _, err := s.ownedUpload(id, user); err != nil {
		httpx.Error(w, r, err)
		return
	}
	unlock, err := s.lockUpload(id)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	s.tus.remove(id)
	unlock()
	w.WriteHeader(http.StatusNoContent)
}
