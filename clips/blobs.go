package clips

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/partyline/partyline"
)

// Blobs keeps clip media and thumbnails by key. Keys are slash-separated
// paths of [A-Za-z0-9._-] segments, such as "clips/c_01J.../media-3f9a".
// Implementations are safe for concurrent use; a local directory (Dir) is
// the default, and object storage (S3, GCS) fits the same shape: Put is a
// streaming upload, Get may answer with a signed URL instead of the bytes.
type Blobs interface {
	// Put stores everything r yields under key and returns the byte count.
	// It is atomic: until Put returns nil, Get does not find the key, and a
	// failed or abandoned Put (r returned an error, ctx ended, the process
	// died) leaves nothing visible. An error from r is returned wrapped, so
	// errors.Is finds it. Putting an existing key replaces it.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	// Get returns the blob, or an error wrapping partyline.ErrNotFound. The
	// caller closes Blob.Content when it is set.
	Get(ctx context.Context, key string) (Blob, error)
	// Delete removes the blob. It is idempotent: a missing key is not an
	// error.
	Delete(ctx context.Context, key string) error
	// LocalPath returns the local file that holds key, so ffprobe and
	// ffmpeg read it in place, or ok false when the blobs are not local
	// files (object storage): then the caller reads a copy through Get.
	// It does not check that the blob exists.
	LocalPath(key string) (path string, ok bool)
}

// Blob is what Blobs.Get returns: either the content itself or a URL the
// client is redirected to (a signed object-storage URL).
type Blob struct {
	// Content reads the blob; nil when URL is set.
	Content io.ReadSeekCloser
	Size    int64
	ModTime time.Time
	// URL, when set, is where the client fetches the blob instead.
	URL string
}

// Dir is Blobs in a local directory. Put writes a temporary file in the
// same directory tree, fsyncs it and renames it into place, so a blob is
// either complete or absent, even across a crash.
type Dir struct {
	root string
}

var _ Blobs = (*Dir)(nil)

// tmpDir is where Put writes before it renames; leftovers of a crash are
// removed by NewDir.
const tmpDir = ".tmp"

// staleTmpAge is how long a temporary file must have gone unwritten before
// NewDir removes it. Nodes may share the directory, and a Put in progress
// on another node writes to its file all the time, so only a file this old
// is surely a crash's leftover.
const staleTmpAge = 24 * time.Hour

// NewDir returns Blobs in root, creating it (mode 0700) when missing, and
// removes the temporary files a crashed Put left behind: those not written
// for staleTmpAge, so that Puts other nodes sharing root have in progress go
// on.
func NewDir(root string) (*Dir, error) {
	if root == "" {
		return nil, errors.New("clips: blobs directory is required")
	}
	tmp := filepath.Join(root, tmpDir)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("clips: blobs directory: %w", err)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return nil, fmt.Errorf("clips: blobs directory: %w", err)
	}
	for _, e := range entries {
		if st, err := e.Info(); err == nil && time.Since(st.ModTime()) > staleTmpAge {
			_ = os.Remove(filepath.Join(tmp, e.Name()))
		}
	}
	return &Dir{root: root}, nil
}

// validKey checks a key's shape, so no key escapes the root.
func validKey(key string) error {
	if key == "" || len(key) > 512 {
		return partyline.Errorf(partyline.ErrInvalid, "bad blob key")
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, ".") {
			return partyline.Errorf(partyline.ErrInvalid, "bad blob key %q", key)
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
				return partyline.Errorf(partyline.ErrInvalid, "bad blob key %q", key)
			}
		}
	}
	return nil
}

// Path returns the file of key.
func (d *Dir) Path(key string) (string, error) {
	if err := validKey(key); err != nil {
		return "", err
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// LocalPath returns the key's file in the directory; ok is false for an
// invalid key.
func (d *Dir) LocalPath(key string) (string, bool) {
	path, err := d.Path(key)
	return path, err == nil
}

// Put writes r to a temporary file, fsyncs it, renames it to the key's
// path and fsyncs the directory.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	path, err := d.Path(key)
	if err != nil {
		return 0, err
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(d.root, tmpDir, hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("clips: put %s: %w", key, err)
	}
	n, err := copyCtx(ctx, f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.MkdirAll(filepath.Dir(path), 0o700)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("clips: put %s: %w", key, err)
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	return n, nil
}

// copyBuf is the size of Put's copy buffer: large writes keep a disk busy.
const copyBuf = 1 << 20

// copyCtx copies r to w until EOF, an error, or the end of ctx.
func copyCtx(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	buf := make([]byte, copyBuf)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, rerr := r.Read(buf)
		if m > 0 {
			if _, err := w.Write(buf[:m]); err != nil {
				return n, err
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// Get opens the key's file.
func (d *Dir) Get(ctx context.Context, key string) (Blob, error) {
	path, err := d.Path(key)
	if err != nil {
		return Blob{}, err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Blob{}, partyline.Errorf(partyline.ErrNotFound, "no blob %s", key)
	}
	if err != nil {
		return Blob{}, fmt.Errorf("clips: get %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return Blob{}, fmt.Errorf("clips: get %s: %w", key, err)
	}
	return Blob{Content: f, Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Delete removes the key's file; a missing file is fine.
func (d *Dir) Delete(ctx context.Context, key string) error {
	path, err := d.Path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clips: delete %s: %w", key, err)
	}
	return nil
}
