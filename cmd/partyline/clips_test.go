package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestClipsWired runs the server and takes a clip through the real
// routes: a media upload past the 1 MiB JSON limit, anonymous reads, a
// range request, and the upload size flag.
func TestClipsWired(t *testing.T) {
	s := startServer(t, nil, "--max-upload-bytes", "3145728")
	tok := devToken(t, s, "ada")
	var c struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	doJSON(t, http.StatusCreated, "POST", s.base+"/v1/clips", tok, `{"title":"ace","game":"valorant"}`, &c)
	put := func(media []byte) int {
		req, err := http.NewRequest("PUT", s.base+"/v1/clips/"+c.ID+"/media", bytes.NewReader(media))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "video/mp4")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	media := make([]byte, 2<<20)
	copy(media, "\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2")
	if got := put(append(media, make([]byte, 2<<20)...)); got != http.StatusRequestEntityTooLarge {
		t.Errorf("4 MiB upload with a 3 MiB cap: %d, want 413", got)
	}
	if got := put(media); got != http.StatusOK {
		t.Fatalf("2 MiB upload: %d, want 200", got)
	}
	// The media is an ftyp box and zeros: without ffprobe it becomes ready,
	// with it, failed. Either way processing ends.
	deadline := time.Now().Add(15 * time.Second)
	for c.Status == "uploading" || c.Status == "processing" {
		if time.Now().After(deadline) {
			t.Fatalf("processing never ended (status %q)", c.Status)
		}
		time.Sleep(20 * time.Millisecond)
		_, body := do(t, "GET", s.base+"/v1/clips/"+c.ID, tok, "")
		_ = json.Unmarshal(body, &c)
	}
	anon := http.StatusOK
	if c.Status == "failed" {
		anon = http.StatusNotFound // a failed clip is its owner's only
	}
	if resp, body := do(t, "GET", s.base+"/v1/clips/"+c.ID, "", ""); resp.StatusCode != anon {
		t.Errorf("anonymous GET of a %s clip: %d %s, want %d", c.Status, resp.StatusCode, body, anon)
	}
	req, _ := http.NewRequest("GET", s.base+"/v1/clips/"+c.ID+"/media", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Range", "bytes=0-15")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusPartialContent || !bytes.Equal(got, media[:16]) {
		t.Errorf("range request: %d, % x", res.StatusCode, got)
	}
	resp, body := do(t, "GET", s.base+"/v1/clips/"+c.ID, "not-a-token", "")
	wantProblem(t, resp, body, http.StatusUnauthorized)
	resp, body = do(t, "GET", s.base+"/v1/users/ada/clips", tok, "")
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(c.ID)) {
		t.Errorf("the owner's listing: %d %s", resp.StatusCode, body)
	}
}
