package feed

import (
	_ "embed"
	"encoding/json"

	"github.com/partyline/partyline/clips"
)

//go:embed openapi.json
var openapiJSON []byte

// OpenAPIDoc returns the feed API's part of the OpenAPI document: every
// route of Routes and MountUsers, under their full paths. It refers to the
// Problem response and the Cursor parameter of the clips part, so it is
// complete only merged with that part, as the server serves it.
func OpenAPIDoc() clips.OpenAPI {
	var doc clips.OpenAPI
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		panic("feed: openapi.json: " + err.Error()) // embedded and tested: cannot happen
	}
	return doc
}
