package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// routesApp builds an app far enough to call routes(): a SQLite store in a
// temp dir, the memory backend, clips, feed and the node. Nothing runs.
func routesApp(t *testing.T) *app {
	t.Helper()
	var cfg config
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	if err := cfg.registerFlags(fs, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	a := &app{cfg: cfg, dev: true, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	st, _, err := openStore(context.Background(), cfg, a.logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a.store = st
	if err := a.setupAuth(); err != nil {
		t.Fatal(err)
	}
	a.registry = prometheus.NewRegistry()
	if a.backend, err = openBackend(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if err := a.setupClips(); err != nil {
		t.Fatal(err)
	}
	if err := a.setupFeed(); err != nil {
		t.Fatal(err)
	}
	if err := a.setupRealtime(); err != nil {
		t.Fatal(err)
	}
	return a
}

// clipsRoute reports whether a route pattern belongs to the clips API.
func clipsRoute(pattern string) bool {
	return strings.HasPrefix(pattern, "/v1/clips") || strings.HasPrefix(pattern, "/v1/uploads") ||
		(strings.HasPrefix(pattern, "/v1/users/") && strings.HasSuffix(pattern, "/clips")) || pattern == "/v1/openapi.json"
}

// TestOpenAPIMatchesRoutes walks the router and checks that every clips
// route is in the OpenAPI document, and every documented operation is
// routed.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	a := routesApp(t)
	h, err := a.routes()
	if err != nil {
		t.Fatal(err)
	}
	routed := map[string]bool{}
	err = chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.ReplaceAll(route, "/*/", "/")
		if route != "/" {
			route = strings.TrimSuffix(route, "/")
		}
		if clipsRoute(route) {
			routed[strings.ToLower(method)+" "+route] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&doc) != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("GET /v1/openapi.json: %d, openapi %q", res.StatusCode, doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			if method != "parameters" && clipsRoute(path) {
				documented[method+" "+path] = true
			}
		}
	}
	keys := func(m map[string]bool) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	if diff := cmp.Diff(keys(routed), keys(documented)); diff != "" {
		t.Errorf("clips routes (-routed +documented):\n%s", diff)
	}
	if len(routed) < 20 {
		t.Errorf("only %d clips routes found: %v", len(routed), keys(routed))
	}
}

// TestOpenAPIRefsResolve checks every $ref of the document points at a
// component it defines.
func TestOpenAPIRefsResolve(t *testing.T) {
	b, err := json.Marshal(openAPIDocument())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if ref, ok := x.(string); k == "$ref" && ok {
					var node any = doc
					for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
						m, _ := node.(map[string]any)
						node = m[part]
					}
					if node == nil {
						t.Errorf("$ref %s does not resolve", ref)
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}
