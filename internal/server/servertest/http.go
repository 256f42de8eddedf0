package servertest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/partyline/partyline/internal/httpx"
)

// Request is an HTTP request of a test.
type Request struct {
	Method string
	Path   string // below the server's base URL, with any query
	// Token is sent as the bearer token unless it is empty.
	Token string
	// Body is nil for none, a string sent as JSON text, a []byte sent as
	// it is, or any other value, encoded as JSON.
	Body any
	// Header is set on the request last, so it may replace Content-Type.
	Header map[string]string
}

// Response is the answer to a Request, its body read in full.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends r with c to the server at base (http://host:port) and returns
// the answer. It fails the test if the request cannot be made or sent.
func Do(t testing.TB, c *http.Client, base string, r Request) Response {
	t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := r.Body.(type) {
	case nil:
	case string:
		rd, ctype = strings.NewReader(b), "application/json"
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode body: %v", err)
		}
		rd, ctype = bytes.NewReader(enc), "application/json"
	}
	req, err := http.NewRequest(r.Method, base+r.Path, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, v := range r.Header {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.Method, r.Path, err)
	}
	return Response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// Want is Do that fails the test unless the answer has status. An error
// status must come as problem+json carrying it (see WantProblem), except
// in the answer to HEAD, which has no body.
func Want(t testing.TB, c *http.Client, base string, status int, r Request) Response {
	t.Helper()
	got := Do(t, c, base, r)
	if got.Status != status {
		t.Fatalf("%s %s as %q: status %d, want %d; body %s", r.Method, r.Path, r.Token, got.Status, status, got.Body)
	}
	if status >= 400 && r.Method != http.MethodHead {
		WantProblem(t, got, status)
	}
	return got
}

// WantProblem fails the test unless r is an application/problem+json
// answer whose problem carries status and a detail, and returns the
// problem.
func WantProblem(t testing.TB, r Response, status int) httpx.Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d: Content-Type %q, want application/problem+json; body %s", r.Status, ct, r.Body)
	}
	var p httpx.Problem
	if err := json.Unmarshal(r.Body, &p); err != nil || p.Status != status || p.Detail == "" {
		t.Fatalf("problem %s (err %v), want status %d and a detail", r.Body, err, status)
	}
	return p
}

// Do sends r to s; see the function Do.
func (s *Server) Do(t testing.TB, r Request) Response {
	t.Helper()
	return Do(t, s.HTTP, s.URL, r)
}

// Want sends r to s and checks the answer's status; see the function Want.
func (s *Server) Want(t testing.TB, status int, r Request) Response {
	t.Helper()
	return Want(t, s.HTTP, s.URL, status, r)
}

// Decode decodes the JSON in b into a T, failing the test if it cannot.
func Decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}
