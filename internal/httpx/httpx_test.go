package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/partyline/partyline"
)

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("x: %w", partyline.ErrInvalid), 400},
		{fmt.Errorf("x: %w", partyline.ErrUnauthorized), 401},
		{fmt.Errorf("x: %w", partyline.ErrForbidden), 403},
		{fmt.Errorf("x: %w", partyline.ErrNotFound), 404},
		{fmt.Errorf("x: %w", partyline.ErrConflict), 409},
		{fmt.Errorf("x: %w", partyline.ErrLimitExceeded), 409},
		{fmt.Errorf("x: %w", partyline.ErrTooLarge), 413},
		{fmt.Errorf("x: %w", partyline.ErrUnsupported), 415},
		{fmt.Errorf("x: %w", partyline.ErrRateLimited), 429},
		{fmt.Errorf("x: %w", partyline.ErrUnavailable), 503},
		{io.EOF, 500},
	} {
		if got := Status(tc.err); got != tc.want {
			t.Errorf("Status(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func decodeProblem(t *testing.T, rec *httptest.ResponseRecorder) Problem {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestErrorHidesInternals(t *testing.T) {
	h := RequestIDs(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Error(w, r, fmt.Errorf("query users: password=hunter2"))
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	p := decodeProblem(t, rec)
	if p.Status != 500 || strings.Contains(p.Detail, "hunter2") || p.RequestID == "" || !strings.Contains(p.Detail, p.RequestID) {
		t.Fatalf("problem = %+v", p)
	}
}

func TestRecover(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	h := RequestIDs(AccessLog(logger)(Recover(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("boom") }))))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	p := decodeProblem(t, rec)
	if p.Status != 500 || rec.Code != 500 {
		t.Fatalf("problem = %+v, code %d", p, rec.Code)
	}
	if !strings.Contains(logs.String(), "boom") || !strings.Contains(logs.String(), p.RequestID) {
		t.Fatalf("the panic was not logged with the request id:\n%s", logs.String())
	}
}

// TestServerErrorsUseTheServersLogger checks that panics, 5xx errors and
// encoding failures are logged through the logger AccessLog was given,
// never the process-wide default: several servers share one process.
func TestServerErrorsUseTheServersLogger(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		msg     string
		want    []string // attributes the line must carry
	}{
		{"panic", func(w http.ResponseWriter, r *http.Request) { panic("boom") },
			"panic in handler", []string{"panic", "stack"}},
		{"5xx error", func(w http.ResponseWriter, r *http.Request) { Error(w, r, io.ErrUnexpectedEOF) },
			"request failed", []string{"err"}},
		{"unencodable value", func(w http.ResponseWriter, r *http.Request) { JSON(w, r, 200, func() {}) },
			"encoding a response failed", []string{"err"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, nil))
			h := RequestIDs(AccessLog(logger)(Recover(tc.handler)))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
			if rec.Code != 500 {
				t.Fatalf("status = %d, want 500", rec.Code)
			}
			id := rec.Header().Get("X-Request-Id")
			var line map[string]any
			for _, l := range bytes.Split(bytes.TrimSpace(logs.Bytes()), []byte("\n")) {
				var m map[string]any
				if err := json.Unmarshal(l, &m); err != nil {
					t.Fatalf("log line is not JSON: %s", l)
				}
				if m["msg"] == tc.msg {
					line = m
				}
			}
			if line == nil {
				t.Fatalf("no %q line in the server's log:\n%s", tc.msg, logs.String())
			}
			if line["request_id"] != id || line["level"] != "ERROR" {
				t.Errorf("line = %v, want level ERROR and request_id %q", line, id)
			}
			for _, k := range tc.want {
				if v, _ := line[k].(string); v == "" {
					t.Errorf("line lacks %q: %v", k, line)
				}
			}
		})
	}
}

func TestLoggerFallsBackToDefault(t *testing.T) {
	if got := Logger(context.Background()); got != slog.Default() {
		t.Errorf("Logger of a bare context = %p, want slog.Default()", got)
	}
	l := slog.New(slog.DiscardHandler)
	if got := Logger(WithLogger(context.Background(), l)); got != l {
		t.Errorf("Logger(WithLogger(l)) = %p, want %p", got, l)
	}
}

func TestRequestIDs(t *testing.T) {
	var seen string
	h := RequestIDs(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = RequestID(r.Context()) }))
	for _, tc := range []struct{ in, want string }{
		{"abc-123", "abc-123"},
		{"", ""},
		{"bad id with spaces", ""},
		{strings.Repeat("x", 65), ""},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if tc.in != "" {
			r.Header.Set("X-Request-Id", tc.in)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if tc.want != "" && seen != tc.want {
			t.Errorf("id %q became %q", tc.in, seen)
		}
		if tc.want == "" && !strings.HasPrefix(seen, "req_") {
			t.Errorf("id %q was not replaced: %q", tc.in, seen)
		}
		if rec.Header().Get("X-Request-Id") != seen {
			t.Errorf("the response does not echo the id")
		}
	}
}

func TestAccessLogNeverLogsTokens(t *testing.T) {
	var logs bytes.Buffer
	h := AccessLog(slog.New(slog.NewJSONHandler(&logs, nil)))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(204)
	}))
	r := httptest.NewRequest("GET", "/v1/ws?token=secret-in-query", nil)
	r.Header.Set("Authorization", "Bearer secret-in-header")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if strings.Contains(logs.String(), "secret") {
		t.Fatalf("a token reached the log: %s", logs.String())
	}
	if !strings.Contains(logs.String(), `"status":204`) || !strings.Contains(logs.String(), `"path":"/v1/ws"`) {
		t.Fatalf("log line lacks status or path: %s", logs.String())
	}
}

func TestBodyLimitsAndDecode(t *testing.T) {
	type body struct {
		Name string `json:"name"`
	}
	h := MaxBody(16)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b body
		if err := DecodeJSON(r, &b); err != nil {
			Error(w, r, err)
			return
		}
		JSON(w, r, 200, b)
	}))
	for _, tc := range []struct {
		body, ct string
		want     int
	}{
		{`{"name":"a"}`, "application/json", 200},
		{`{"name":"a"}`, "", 200},
		{`{"name":"a"}`, "text/plain", 415},
		{`{"name":"aaaaaaaaaaaaaaaaaaaaa"}`, "application/json", 413},
		{`{"nam":"a"}`, "application/json", 400},
		{`{"name":1}`, "application/json", 400},
		{`{} {}`, "application/json", 400},
		{``, "application/json", 400},
	} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
		if tc.ct != "" {
			r.Header.Set("Content-Type", tc.ct)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != tc.want {
			t.Errorf("%q (%s) = %d, want %d: %s", tc.body, tc.ct, rec.Code, tc.want, rec.Body)
		}
		if tc.want != 200 {
			decodeProblem(t, rec)
		}
	}
	// A body whose declared length is over the limit is refused before reading.
	r := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", 100)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != 413 {
		t.Fatalf("declared oversize body = %d, want 413", rec.Code)
	}
}

func TestNewServerLimits(t *testing.T) {
	s := NewServer(http.NotFoundHandler(), ServerOptions{})
	if s.ReadHeaderTimeout == 0 || s.IdleTimeout == 0 || s.MaxHeaderBytes == 0 {
		t.Fatalf("server without limits: %+v", s)
	}
}

func TestAccessLogQuietPaths(t *testing.T) {
	var logs bytes.Buffer
	status := 200
	h := AccessLog(slog.New(slog.NewJSONHandler(&logs, nil)), "/v1/server/")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/server/publish", nil))
	if logs.Len() != 0 {
		t.Fatalf("a successful quiet request was logged at Info: %s", logs.String())
	}
	status = 401
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/server/publish", nil))
	if !strings.Contains(logs.String(), `"status":401`) {
		t.Fatalf("a failed quiet request was not logged: %q", logs.String())
	}
}
