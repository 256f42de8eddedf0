package httpx

import "github.com/go-chi/chi/v5"

// NewRouter returns a chi router that answers an unknown route and a
// known route's wrong method with problem+json (NotFound and
// MethodNotAllowed), as every REST router of the server does.
func NewRouter() *chi.Mux {
	r := chi.NewRouter()
	r.NotFound(NotFound)
	r.MethodNotAllowed(MethodNotAllowed)
	return r
}
