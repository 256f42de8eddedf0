package main

import (
	"encoding/json"
	"maps"
	"net/http"
	"sync"

	"github.com/partyline/partyline/clips"
)

// openAPIParts are the domains' parts of the OpenAPI document. A domain
// adds its own here: paths under their full /v1 path and the components
// they refer to.
func openAPIParts() []clips.OpenAPI {
	return []clips.OpenAPI{
		clips.OpenAPIDoc(),
	}
}

// openAPIDocument assembles the OpenAPI 3.1 document served at
// /v1/openapi.json from every domain's part.
func openAPIDocument() map[string]any {
	paths := map[string]json.RawMessage{
		"/v1/openapi.json": json.RawMessage(`{"get":{"operationId":"openapi","summary":"This document","security":[{}],
			"responses":{"200":{"description":"The OpenAPI 3.1 document","content":{"application/json":{"schema":{"type":"object"}}}}}}}`),
	}
	components := map[string]map[string]json.RawMessage{
		"securitySchemes": {"bearerAuth": json.RawMessage(`{"type":"http","scheme":"bearer","bearerFormat":"JWT"}`)},
	}
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
			"description": "The REST API of partyline. Errors are RFC 9457 application/problem+json; lists use keyset cursors (?cursor=&limit=, next_cursor in the body).",
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
func (a *app) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openAPIOnce())
}
