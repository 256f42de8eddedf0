package clips

import (
	_ "embed"
	"encoding/json"
)

//go:embed openapi.json
var openapiJSON []byte

// OpenAPI is one domain's part of the OpenAPI 3.1 document: its paths and
// the components they refer to. The server merges every domain's part
// into the document it serves at /v1/openapi.json.
type OpenAPI struct {
	Paths      map[string]json.RawMessage            `json:"paths"`
	Components map[string]map[string]json.RawMessage `json:"components"`
}

// OpenAPIDoc returns the clips API's part of the OpenAPI document: every
// route of Routes, HandleUpload, HandleUserClips and UploadRoutes, under
// their full paths.
func OpenAPIDoc() OpenAPI {
	var doc OpenAPI
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		panic("clips: openapi.json: " + err.Error()) // embedded and tested: cannot happen
	}
	return doc
}
