package server

import (
	_ "embed"
	"encoding/json"
	"maps"
	"net/http"
	"sync"

	"github.com/partyline/partyline/chat"
	"github.com/partyline/partyline/clips"
	"github.com/partyline/partyline/feed"
	"github.com/partyline/partyline/internal/httpx"
)

// openapiJSON is the server's own part of the OpenAPI document: health,
// this document, /v1/me, the dev token, the WebSocket and the server API,
// with the security schemes.
//
//go:embed openapi.json
var openapiJSON []byte

// openAPIParts are the parts of the OpenAPI document: the server's own and
// the domains'. A domain adds its own here: paths under their full /v1
// path and the components they refer to. Parts share components by name
// (the Problem response), so no two may define one name differently.
func openAPIParts() []httpx.OpenAPI {
	return []httpx.OpenAPI{
		httpx.ParseOpenAPI("server", openapiJSON),
		clips.OpenAPIDoc(),
		feed.OpenAPIDoc(),
		chat.OpenAPIDoc(),
	}
}

// openAPIDocument assembles the OpenAPI 3.1 document served at
// /v1/openapi.json from every domain's part.
func openAPIDocument() map[string]any {
	paths := map[string]json.RawMessage{}
	components := map[string]map[string]json.RawMessage{}
	for _, part := range openAPIParts() {
		maps.Copy(paths, part.Paths)
		for kind, defs := range part.Components {
			if components[kind] == nil {
				components[kind] = map[string]json.RawMessage{}
			}
			maps.Copy(components[kind], defs)
		}
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "partyline",
			"version":     "1",
			"description": "The REST API of partyline. Requests carry Authorization: Bearer <JWT>, except health, this document, the dev token and the WebSocket (which authenticates with its hello message); the server API under /v1/server/ takes the API key instead. Errors are RFC 9457 application/problem+json; lists page with cursors (?cursor=&limit=, next_cursor in the body).",
		},
		"servers":    []map[string]string{{"url": "/"}},
		"paths":      paths,
		"components": components,
	}
}

var openAPIOnce = sync.OnceValue(func() []byte {
	b, err := json.Marshal(openAPIDocument())
	if err != nil {
		panic("openapi: " + err.Error()) // static parts, tested
	}
	return b
})

// handleOpenAPI serves the OpenAPI document.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPIOnce())
}
