package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/partyline/partyline"
)

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Status maps a domain error to its HTTP status. Anything that wraps none of
// the partyline sentinel errors is a 500.
func Status(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, partyline.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, partyline.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, partyline.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, partyline.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, partyline.ErrConflict), errors.Is(err, partyline.ErrLimitExceeded):
		return http.StatusConflict
	case errors.Is(err, partyline.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, partyline.ErrUnsupported):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, partyline.ErrRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, partyline.ErrUnavailable):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Error writes err as a problem+json response with the status Status gives.
// Server errors (5xx) are logged through Logger(r.Context()) with the
// request id and answered with a generic detail, so internals never leak
// to clients.
func Error(w http.ResponseWriter, r *http.Request, err error) {
	status := Status(err)
	detail := err.Error()
	if status >= 500 {
		Logger(r.Context()).ErrorContext(r.Context(), "request failed",
			"request_id", RequestID(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
		detail = "internal error; see the server log for request " + RequestID(r.Context())
		if status == http.StatusServiceUnavailable {
			detail = "a dependency is unavailable; retry later"
		}
	}
	WriteProblem(w, r, status, detail)
}

// WriteProblem writes a problem+json response with the given status and detail.
func WriteProblem(w http.ResponseWriter, r *http.Request, status int, detail string) {
	p := Problem{
		Type:      "about:blank",
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    detail,
		Instance:  r.URL.Path,
		RequestID: RequestID(r.Context()),
	}
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		h.Set("WWW-Authenticate", `Bearer realm="partyline"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// NotFound answers unknown routes with a 404 problem.
func NotFound(w http.ResponseWriter, r *http.Request) {
	WriteProblem(w, r, http.StatusNotFound, "no route for "+r.Method+" "+r.URL.Path)
}

// MethodNotAllowed answers a known route with the wrong method with a 405 problem.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request) {
	WriteProblem(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.Path)
}

// JSON writes v as a JSON response with the given status. r is only for
// the log: a value JSON cannot encode is logged through Logger(r.Context())
// and answered with a 500 problem.
func JSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	// Encode into a pooled buffer first: the body goes out in one write
	// with its Content-Length instead of in chunks, and large pages
	// (a list of clips is about 30 KB) reuse their memory.
	buf := jsonBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledJSON {
			jsonBufs.Put(buf)
		}
	}()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		// Only a programming error gets here (a value JSON cannot hold).
		Logger(r.Context()).ErrorContext(r.Context(), "encoding a response failed",
			"request_id", RequestID(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"type":"about:blank","title":"Internal Server Error","status":500}` + "\n"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// jsonBufs holds response buffers; one bigger than maxPooledJSON is left
// to the garbage collector rather than kept.
var jsonBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledJSON = 256 << 10

// DecodeJSON decodes the request body into v strictly: the body must be one
// JSON value of the right shape with no unknown fields. Failures wrap
// partyline.ErrInvalid, or partyline.ErrTooLarge when the body is over the
// limit MaxBody set, or partyline.ErrUnsupported for a non-JSON content type.
func DecodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt := strings.TrimSpace(strings.ToLower(strings.SplitN(ct, ";", 2)[0]))
		if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
			return partyline.Errorf(partyline.ErrUnsupported, "content type must be application/json")
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return partyline.Errorf(partyline.ErrTooLarge, "request body is over the limit")
		}
		return partyline.Errorf(partyline.ErrInvalid, "invalid JSON body: %v", err)
	}
	if dec.More() {
		return partyline.Errorf(partyline.ErrInvalid, "invalid JSON body: more than one value")
	}
	return nil
}
