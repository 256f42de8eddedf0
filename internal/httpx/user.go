package httpx

import (
	"net/http"

	"github.com/partyline/partyline/internal/auth"
)

// UserHandler serves a route for the signed-in user, whose id is user.
type UserHandler func(w http.ResponseWriter, r *http.Request, user string)

// SignedIn is the preamble of a route that needs a signed-in user: it
// answers 401 when the request carries none (auth.RequireUserID), and
// otherwise calls h with the user's id.
func SignedIn(h UserHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user, err := auth.RequireUserID(r.Context())
		if err != nil {
			Error(w, r, err)
			return
		}
		h(w, r, user)
	}
}
