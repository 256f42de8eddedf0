package httpx

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	JSON(rec, httptest.NewRequest("POST", "/v1/clips", nil), http.StatusCreated, map[string]any{"id": "c_1", "tags": []string{"a"}})
	body := rec.Body.String()
	if rec.Code != http.StatusCreated || body != `{"id":"c_1","tags":["a"]}`+"\n" {
		t.Errorf("JSON wrote %d %q", rec.Code, body)
	}
	if got := rec.Header().Get("Content-Length"); got != strconv.Itoa(len(body)) {
		t.Errorf("Content-Length %q for a body of %d bytes", got, len(body))
	}
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}

	rec = httptest.NewRecorder()
	JSON(rec, httptest.NewRequest("GET", "/x", nil), http.StatusOK, map[string]any{"bad": func() {}})
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("a value JSON cannot hold gave %d %q", rec.Code, rec.Body.String())
	}
}
