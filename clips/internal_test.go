package clips

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/partyline/partyline"
)

func TestSniffVideo(t *testing.T) {
	webm := []byte{0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81, 0x01, 0x42, 0x82, 0x84, 'w', 'e', 'b', 'm', 0x42, 0x87}
	for _, tc := range []struct {
		name string
		head []byte
		want string
	}{
		{"mp4 isom", []byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"), TypeMP4},
		{"mp4 by compatible brand", []byte("\x00\x00\x00\x1cftypXYZW\x00\x00\x00\x00abcdmp42efgh"), TypeMP4},
		{"quicktime", []byte("\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  "), ""},
		{"ftyp with a silly size", []byte("\xff\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"), ""},
		{"webm", webm, TypeWebM},
		{"matroska", bytes.Replace(webm, []byte("webm"), []byte("mkvx"), 1), ""},
		{"html", []byte("<!doctype html><html></html>"), ""},
		{"html then ftyp", []byte("<html>\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isom"), ""},
		{"short", []byte("\x00\x00"), ""},
		{"empty", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sniffVideo(tc.head); got != tc.want {
				t.Errorf("sniffVideo = %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzSniffVideo(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"))
	f.Add([]byte{0x1A, 0x45, 0xDF, 0xA3, 0x42, 0x82, 0xFF})
	f.Fuzz(func(t *testing.T, b []byte) { _ = sniffVideo(b) })
}

func TestLimiterBounded(t *testing.T) {
	l := newLimiter("likes", RateLimit{Burst: 2, Per: time.Hour}, RateLimit{}, 3)
	for i := range 10 {
		if err := l.allow(httptest.NewRecorder(), fmt.Sprint("u", i)); err != nil {
			t.Fatalf("first request of a user: %v", err)
		}
		if n := l.size(); n > 3 {
			t.Fatalf("%d limiters kept, want at most 3", n)
		}
	}
	w := httptest.NewRecorder()
	_ = l.allow(w, "u9")
	if err := l.allow(w, "u9"); !errors.Is(err, partyline.ErrRateLimited) {
		t.Errorf("third request within the burst of 2: %v, want rate limited", err)
	}
	off := newLimiter("x", RateLimit{Burst: -1}, RateLimit{Burst: 1, Per: time.Hour}, 3)
	for range 5 {
		if err := off.allow(httptest.NewRecorder(), "u"); err != nil {
			t.Fatalf("a limit turned off refused: %v", err)
		}
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, partyline.Errorf(partyline.ErrTooLarge, "boom")
	}
	m := min(len(p), r.n)
	r.n -= m
	return m, nil
}

func TestDirBlobs(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	// At start, a crashed Put's old temporary file is removed, but not a
	// recent one, which a node sharing the directory may be writing.
	tmp := filepath.Join(root, tmpDir)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"old", "fresh"} {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-staleTmpAge - time.Hour)
	if err := os.Chtimes(filepath.Join(tmp, "old"), long, long); err != nil {
		t.Fatal(err)
	}
	d, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if fmt.Sprint(left) != "[fresh]" {
		t.Errorf("NewDir left temporary files %v; want [fresh]", left)
	}
	if err := os.Remove(filepath.Join(tmp, "fresh")); err != nil {
		t.Fatal(err)
	}
	// A failed Put leaves nothing, and its error is the reader's.
	_, err = d.Put(ctx, "clips/c_1/media", &failingReader{n: 3 << 20})
	if !errors.Is(err, partyline.ErrTooLarge) {
		t.Errorf("Put with a failing reader: %v, want the reader's error", err)
	}
	if _, err := d.Get(ctx, "clips/c_1/media"); !errors.Is(err, partyline.ErrNotFound) {
		t.Errorf("Get after a failed Put: %v, want not found", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, tmpDir)); len(entries) != 0 {
		t.Errorf("a failed Put left %d temporary files", len(entries))
	}
	n, err := d.Put(ctx, "clips/c_1/media", bytes.NewReader([]byte("hello")))
	if err != nil || n != 5 {
		t.Fatalf("Put: %d, %v", n, err)
	}
	b, err := d.Get(ctx, "clips/c_1/media")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(b.Content)
	b.Content.Close()
	if string(got) != "hello" || b.Size != 5 {
		t.Errorf("Get = %q size %d", got, b.Size)
	}
	for range 2 {
		if err := d.Delete(ctx, "clips/c_1/media"); err != nil {
			t.Errorf("Delete: %v", err)
		}
	}
	for _, key := range []string{"", "../x", "a//b", ".tmp/x", "a/../../b", "a b"} {
		if _, err := d.Put(ctx, key, bytes.NewReader(nil)); !errors.Is(err, partyline.ErrInvalid) {
			t.Errorf("Put(%q): %v, want invalid", key, err)
		}
	}
}

// A node starting on a directory it shares must not break the Put another
// node has in progress there.
func TestDirStartKeepsPutsInProgress(t *testing.T) {
	root := t.TempDir()
	d, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := d.Put(context.Background(), "clips/c_1/media", pr)
		done <- result{n, err}
	}()
	// Put has its temporary file once it reads the first bytes.
	if _, err := pw.Write([]byte("hel")); err != nil {
		t.Fatal(err)
	}
	if _, err := NewDir(root); err != nil {
		t.Fatalf("NewDir on a shared directory: %v", err)
	}
	if _, err := pw.Write([]byte("lo")); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if r := <-done; r.err != nil || r.n != 5 {
		t.Fatalf("Put across another node's start: %d, %v; want 5, nil", r.n, r.err)
	}
	b, err := d.Get(context.Background(), "clips/c_1/media")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(b.Content)
	b.Content.Close()
	if string(got) != "hello" {
		t.Errorf("Get = %q; want hello", got)
	}
}

// TestTusLockAcrossNodes: two nodes sharing the upload directory (two
// tusStores here, each with its own in-process locks) keep each other out
// of an upload through the lock on its data file: neither writes, removes
// nor expires an upload the other holds.
func TestTusLockAcrossNodes(t *testing.T) {
	if !haveFlock {
		t.Skip("skipping: no flock here, so the lock is per process")
	}
	dir := t.TempDir()
	a, err := newTusStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newTusStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	info := tusInfo{ID: "u_1", Clip: "c_1", Owner: "ada", Length: 10, CreatedAt: time.Now()}
	if err := a.create(info); err != nil {
		t.Fatalf("create: %v", err)
	}
	mustLock := func(s *tusStore, who string) func() {
		t.Helper()
		unlock, ok, err := s.lock("u_1")
		if err != nil || !ok {
			t.Fatalf("%s: lock = %v, %v; want it taken", who, ok, err)
		}
		return unlock
	}
	mustNotLock := func(s *tusStore, who string) {
		t.Helper()
		if _, ok, err := s.lock("u_1"); err != nil || ok {
			t.Fatalf("%s: lock = %v, %v; want it held by the other", who, ok, err)
		}
	}

	unlock := mustLock(a, "node a")
	mustNotLock(a, "node a again") // the in-process lock
	mustNotLock(b, "node b")       // the file lock
	if n := b.expire(0); n != 0 {
		t.Errorf("node b expired %d uploads while node a held one", n)
	}
	if _, _, err := b.load("u_1"); err != nil {
		t.Fatalf("the upload is gone while node a held it: %v", err)
	}
	unlock()

	unlock = mustLock(b, "node b, once a let go")
	mustNotLock(a, "node a")
	unlock()

	// A lock taken on a data file that was removed and made again does not
	// count: the holder of the old file has no claim on the new one.
	stale, err := os.OpenFile(a.path("u_1", ".bin"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	a.remove("u_1")
	if err := a.create(info); err != nil {
		t.Fatalf("create again: %v", err)
	}
	if ok, err := tryFlock(stale); err != nil || !ok {
		t.Fatalf("flock of the removed file: %v, %v", ok, err)
	}
	unlock = mustLock(b, "node b, on the new file")
	unlock()

	// Gone: the lock is this process's only, and load says so.
	b.remove("u_1")
	unlock = mustLock(a, "node a, no upload")
	if _, _, err := a.load("u_1"); !errors.Is(err, partyline.ErrNotFound) {
		t.Errorf("load of a removed upload: %v, want ErrNotFound", err)
	}
	unlock()
	if n := a.expire(0); n != 0 {
		t.Errorf("expire found %d uploads, want none", n)
	}
}
