package chat

import (
	_ "embed"
	"encoding/json"
)

//go:embed openapi.json
var openapiJSON []byte

// OpenAPI is chat's part of the OpenAPI 3.1 document: its paths and the
// components they refer to. It has the JSON shape of the other domains'
// parts, which chat cannot import, and the server merges them all into the
// document it serves at /v1/openapi.json.
type OpenAPI struct {
	Paths      map[string]json.RawMessage            `json:"paths"`
	Components map[string]map[string]json.RawMessage `json:"components"`
}

// OpenAPIDoc returns the rooms API's part of the OpenAPI document: every
// route of RoomRoutes and HandleMyRooms, under their full paths. It refers
// to the shared Problem response, which another part of the merged
// document defines.
func OpenAPIDoc() OpenAPI {
	var doc OpenAPI
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		panic("chat: openapi.json: " + err.Error()) // embedded and tested: cannot happen
	}
	return doc
}
