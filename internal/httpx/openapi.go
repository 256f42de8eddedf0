package httpx

import "encoding/json"

// OpenAPI is one part of the OpenAPI 3.1 document: some paths and the
// components they refer to. The server and each domain own a part, and
// the server merges them into the document it serves at /v1/openapi.json.
type OpenAPI struct {
	Paths      map[string]json.RawMessage            `json:"paths"`
	Components map[string]map[string]json.RawMessage `json:"components"`
}

// ParseOpenAPI parses a part of the OpenAPI document that its package
// embeds; name says whose it is. It panics when the part is not valid
// JSON: parts are embedded and tested, so that cannot happen at run time.
func ParseOpenAPI(name string, doc []byte) OpenAPI {
	var part OpenAPI
	if err := json.Unmarshal(doc, &part); err != nil {
		panic(name + ": openapi.json: " + err.Error())
	}
	return part
}
