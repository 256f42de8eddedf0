package chat

import (
	_ "embed"

	"github.com/partyline/partyline/internal/httpx"
)

//go:embed openapi.json
var openapiJSON []byte

// OpenAPIDoc returns the rooms API's part of the OpenAPI document: every
// route of RoomRoutes and HandleMyRooms, under their full paths. It refers
// to the shared Problem response, which another part of the merged
// document defines.
func OpenAPIDoc() httpx.OpenAPI {
	return httpx.ParseOpenAPI("chat", openapiJSON)
}
