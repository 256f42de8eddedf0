package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/go-cmp/cmp"
)

// routesServer builds a server far enough to call Handler: a SQLite store
// in a temp dir, the memory backend, and every domain. Dev mode and the
// server API key are on, so the optional routes exist. Nothing runs.
func routesServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(context.Background(), Options{
		NodeID:  "openapi-test",
		DataDir: t.TempDir(),
		Dev:     true,
		APIKey:  "openapi-test-key",
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// undocumented reports why the OpenAPI document leaves a route of the main
// router out on purpose, or "" when the route must be documented.
func undocumented(method, route string) string {
	if route == "/v1/ws" && method != http.MethodGet {
		// r.Handle mounts the WebSocket handler for every method chi
		// knows, but the handshake is GET only: any other method gets 405
		// from the WebSocket library. GET /v1/ws is documented.
		return "the WebSocket handshake is GET only"
	}
	return ""
}

// httpMethods are the keys of an OpenAPI path item that are operations.
var httpMethods = map[string]bool{
	"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true,
}

// openAPIDoc is the served document, as far as the tests read it.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components map[string]map[string]json.RawMessage `json:"components"`
}

// getOpenAPI fetches the document the way clients do.
func getOpenAPI(t *testing.T, h http.Handler) openAPIDoc {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc openAPIDoc
	if res.StatusCode != 200 || json.NewDecoder(res.Body).Decode(&doc) != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("GET /v1/openapi.json: %d, openapi %q", res.StatusCode, doc.OpenAPI)
	}
	return doc
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIMatchesRoutes walks the main router and checks that every
// route is in the OpenAPI document, but for the undocumented ones, and
// that every documented operation is routed.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	h, err := routesServer(t).Handler()
	if err != nil {
		t.Fatal(err)
	}
	routed := map[string]bool{}
	err = chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.ReplaceAll(route, "/*/", "/")
		if route != "/" {
			route = strings.TrimSuffix(route, "/")
		}
		if undocumented(method, route) == "" {
			routed[strings.ToLower(method)+" "+route] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	doc := getOpenAPI(t, h)
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			if httpMethods[method] {
				documented[method+" "+path] = true
			}
		}
	}
	if diff := cmp.Diff(sortedKeys(routed), sortedKeys(documented)); diff != "" {
		t.Errorf("routes (-routed +documented):\n%s", diff)
	}
	// The optional routes must be there, or the diff above proves little.
	for _, key := range []string{"post /v1/dev/token", "post /v1/server/publish", "get /v1/ws", "get /v1/me/rooms", "get /v1/feed/for-you"} {
		if !routed[key] {
			t.Errorf("%s is not routed", key)
		}
	}
	if len(routed) < 40 {
		t.Errorf("only %d routes found: %v", len(routed), sortedKeys(routed))
	}
}

// TestOpenAPIOperations checks that every operation has a unique
// operationId, a security requirement and responses, and that every
// {parameter} of its path is declared.
func TestOpenAPIOperations(t *testing.T) {
	doc := getOpenAPI(t, http.HandlerFunc((&Server{}).handleOpenAPI))
	type param struct{ Name, In, Ref string }
	decodeParams := func(raw json.RawMessage) []param {
		var ps []struct {
			Name string `json:"name"`
			In   string `json:"in"`
			Ref  string `json:"$ref"`
		}
		if raw != nil {
			if err := json.Unmarshal(raw, &ps); err != nil {
				t.Fatalf("parameters %s: %v", raw, err)
			}
		}
		out := make([]param, len(ps))
		for i, p := range ps {
			if name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/"); ok {
				if err := json.Unmarshal(doc.Components["parameters"][name], &p); err != nil {
					t.Fatalf("parameter %s: %v", p.Ref, err)
				}
			}
			out[i] = param{p.Name, p.In, p.Ref}
		}
		return out
	}
	pathParam := regexp.MustCompile(`\{([^}]+)\}`)
	ids := map[string]string{}
	for _, path := range sortedKeys(doc.Paths) {
		item := doc.Paths[path]
		shared := decodeParams(item["parameters"])
		for _, method := range sortedKeys(item) {
			if !httpMethods[method] {
				continue
			}
			op := method + " " + path
			var o struct {
				OperationID string                     `json:"operationId"`
				Security    []map[string][]string      `json:"security"`
				Parameters  json.RawMessage            `json:"parameters"`
				Responses   map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(item[method], &o); err != nil {
				t.Errorf("%s: %v", op, err)
				continue
			}
			switch prev, dup := ids[o.OperationID]; {
			case o.OperationID == "":
				t.Errorf("%s has no operationId", op)
			case dup:
				t.Errorf("operationId %s is on both %s and %s", o.OperationID, prev, op)
			default:
				ids[o.OperationID] = op
			}
			if o.Security == nil {
				t.Errorf("%s states no security", op)
			}
			for _, req := range o.Security {
				for scheme := range req {
					if doc.Components["securitySchemes"][scheme] == nil {
						t.Errorf("%s: security scheme %s is not defined", op, scheme)
					}
				}
			}
			if len(o.Responses) == 0 {
				t.Errorf("%s has no responses", op)
			}
			declared := map[string]bool{}
			for _, p := range append(decodeParams(o.Parameters), shared...) {
				if p.In == "path" {
					declared[p.Name] = true
				}
			}
			for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
				if !declared[m[1]] {
					t.Errorf("%s: path parameter %s is not declared", op, m[1])
				}
				delete(declared, m[1])
			}
			if len(declared) > 0 {
				t.Errorf("%s declares path parameters not in its path: %v", op, sortedKeys(declared))
			}
		}
	}
}

// TestOpenAPIPartsDisjoint checks that the parts merge without losing
// anything: no path is in two parts, and a component that two parts define
// is defined the same in both.
func TestOpenAPIPartsDisjoint(t *testing.T) {
	compact := func(raw json.RawMessage) string {
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	pathOwner := map[string]int{}
	components := map[string]string{}
	for i, part := range openAPIParts() {
		if len(part.Paths) == 0 {
			t.Errorf("part %d has no paths", i)
		}
		for path := range part.Paths {
			if j, dup := pathOwner[path]; dup {
				t.Errorf("path %s is in parts %d and %d", path, j, i)
			}
			pathOwner[path] = i
		}
		for kind, defs := range part.Components {
			for name, def := range defs {
				key, got := kind+"/"+name, compact(def)
				if want, dup := components[key]; dup && got != want {
					t.Errorf("part %d defines component %s differently:\n%s\nthan before:\n%s", i, key, got, want)
				}
				components[key] = got
			}
		}
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
