package feed

import (
	_ "embed"

	"github.com/partyline/partyline/internal/httpx"
)

//go:embed openapi.json
var openapiJSON []byte

// OpenAPIDoc returns the feed API's part of the OpenAPI document: every
// route of Routes and MountUsers, under their full paths. It refers to the
// Problem response and the Cursor parameter of the clips part, so it is
// complete only merged with that part, as the server serves it.
func OpenAPIDoc() httpx.OpenAPI {
	return httpx.ParseOpenAPI("feed", openapiJSON)
}
