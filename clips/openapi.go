package clips

import (
	_ "embed"

	"github.com/partyline/partyline/internal/httpx"
)

//go:embed openapi.json
var openapiJSON []byte

// OpenAPIDoc returns the clips API's part of the OpenAPI document: every
// route of Routes, HandleUpload, HandleUserClips and UploadRoutes, under
// their full paths.
func OpenAPIDoc() httpx.OpenAPI {
	return httpx.ParseOpenAPI("clips", openapiJSON)
}
