package server

import (
	"context"
	"net/http"
	"net/http/pprof"
	runtimepprof "runtime/pprof"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/internal/auth"
	"github.com/partyline/partyline/internal/httpx"
)

// maxJSONBody caps JSON request bodies on the main listener.
const maxJSONBody = 1 << 20

// Handler returns the main listener's handler: every route of the
// WebSocket, REST and server API, mounted on one screen.
func (s *Server) Handler() (http.Handler, error) {
	metrics, err := httpx.Metrics(s.registry)
	if err != nil {
		return nil, err
	}
	r := httpx.NewRouter()
	r.Use(httpx.RequestIDs, httpx.AccessLog(s.logger, "/v1/server/"), httpx.Recover, metrics)

	r.Get("/healthz", s.handleHealthz)
	r.Get("/readyz", s.handleReadyz)

	r.Handle("/v1/ws", s.node)
	// Clip media uploads stream up to --max-upload-bytes, so they live
	// outside the /v1 group and its JSON body limit.
	r.Group(func(r chi.Router) {
		r.Use(s.optionalUser)
		r.Put("/v1/clips/{id}/media", s.clips.HandleUpload)
		r.Mount("/v1/uploads", s.clips.UploadRoutes())
	})
	r.Route("/v1", func(r chi.Router) {
		r.Use(httpx.MaxBody(maxJSONBody))
		r.Mount("/server", s.node.ServerAPI())
		if s.opts.Dev && s.signer != nil {
			r.Post("/dev/token", s.handleDevToken)
		}
		r.Get("/openapi.json", s.handleOpenAPI)
		// Clips: reads serve public clips to anonymous callers, so the user
		// is optional here and the handlers decide.
		r.Group(func(r chi.Router) {
			r.Use(s.optionalUser)
			r.Mount("/clips", s.clips.Routes())
			r.Get("/users/{id}/clips", s.clips.HandleUserClips)
		})
		r.Group(func(r chi.Router) {
			r.Use(s.requireUser)
			r.Get("/me", s.handleMe)
			r.Get("/me/rooms", s.chat.HandleMyRooms)
			r.Mount("/rooms", s.chat.RoomRoutes())
			// Feed: follows and profiles under /users/{id} (beside clips'
			// /users/{id}/clips) and the feeds under /feed.
			s.feed.MountUsers(r)
			r.Mount("/feed", s.feed.Routes())
		})
	})
	return r, nil
}

// AdminHandler returns the admin listener's handler: Prometheus metrics
// and pprof. Its access log keeps scrapes and profiles at Debug and logs
// failures.
func (s *Server) AdminHandler() http.Handler {
	r := chi.NewRouter()
	r.NotFound(httpx.NotFound)
	r.Use(httpx.RequestIDs, httpx.AccessLog(s.logger, "/metrics", "/debug/pprof/"), httpx.Recover)
	r.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry}))
	r.HandleFunc("/debug/pprof/", pprof.Index)
	r.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	r.HandleFunc("/debug/pprof/profile", pprof.Profile)
	r.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	r.HandleFunc("/debug/pprof/trace", pprof.Trace)
	r.HandleFunc("/debug/pprof/{profile}", handleProfile)
	return r
}

// handleProfile serves one named runtime profile (heap, goroutine, ...).
// pprof.Index would answer an unknown name in plain text, so it is a
// problem here.
func handleProfile(w http.ResponseWriter, r *http.Request) {
	if runtimepprof.Lookup(chi.URLParam(r, "profile")) == nil {
		httpx.NotFound(w, r)
		return
	}
	pprof.Index(w, r)
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	httpx.JSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz is ready while the server is not draining and the store answers.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		httpx.WriteProblem(w, r, http.StatusServiceUnavailable, "draining")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		httpx.WriteProblem(w, r, http.StatusServiceUnavailable, "store unreachable")
		return
	}
	httpx.JSON(w, r, http.StatusOK, map[string]string{"status": "ready"})
}

// requireUser authenticates the bearer token and puts the user in the
// request context; without a valid token it answers 401.
func (s *Server) requireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := auth.BearerToken(r)
		if !ok {
			httpx.Error(w, r, partyline.Errorf(partyline.ErrUnauthorized, "missing bearer token"))
			return
		}
		u, _, err := s.authn.Authenticate(r.Context(), tok)
		if err != nil {
			httpx.Error(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithUser(r.Context(), u)))
	})
}

type userJSON struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	u, _ := auth.UserFrom(r.Context())
	httpx.JSON(w, r, http.StatusOK, userJSON{ID: u.ID, CreatedAt: u.CreatedAt.UTC()})
}

type devTokenRequest struct {
	User string `json:"user"`
	// TTL is a Go duration such as "1h"; empty means 24h.
	TTL string `json:"ttl,omitempty"`
}

type devTokenResponse struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expires_at"`
}

// handleDevToken mints a token for any user. It exists only in dev mode.
func (s *Server) handleDevToken(w http.ResponseWriter, r *http.Request) {
	var req devTokenRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		httpx.Error(w, r, err)
		return
	}
	ttl := 24 * time.Hour
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > 30*24*time.Hour {
			httpx.Error(w, r, partyline.Errorf(partyline.ErrInvalid, "ttl must be a positive duration up to 720h"))
			return
		}
		ttl = d
	}
	tok, exp, err := s.signer.Sign(req.User, ttl)
	if err != nil {
		httpx.Error(w, r, err)
		return
	}
	httpx.JSON(w, r, http.StatusOK, devTokenResponse{Token: tok, ExpiresAt: exp.UTC().Format(time.RFC3339)})
}

// optionalUser authenticates the bearer token when there is one, as
// requireUser does (an invalid token is 401), and lets requests without an
// Authorization header through anonymously: clip reads are public.
func (s *Server) optionalUser(next http.Handler) http.Handler {
	authed := s.requireUser(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			next.ServeHTTP(w, r)
			return
		}
		authed.ServeHTTP(w, r)
	})
}
