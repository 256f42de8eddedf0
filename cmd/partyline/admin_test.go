package main

import (
	"strings"
	"testing"
)

func TestAdminRoutes(t *testing.T) {
	s := startServer(t, nil)
	t.Run("profiles", func(t *testing.T) {
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine?debug=1", "/debug/pprof/allocs"} {
			if resp, body := do(t, "GET", s.admin+path, "", ""); resp.StatusCode != 200 {
				t.Errorf("GET %s = %d %s", path, resp.StatusCode, body)
			}
		}
	})
	t.Run("unknown profile is a 404 problem", func(t *testing.T) {
		resp, body := do(t, "GET", s.admin+"/debug/pprof/nope", "", "")
		wantProblem(t, resp, body, 404)
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("no X-Request-Id on the admin listener's answer")
		}
	})
	t.Run("unknown path is a 404 problem", func(t *testing.T) {
		resp, body := do(t, "GET", s.admin+"/nope", "", "")
		wantProblem(t, resp, body, 404)
	})
	t.Run("failures are logged to run's stderr", func(t *testing.T) {
		if !strings.Contains(s.logs.String(), `"path":"/debug/pprof/nope","status":404`) {
			t.Errorf("the admin listener's 404 is not in the log:\n%s", s.logs)
		}
	})
}
