package httpx

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics returns middleware that records REST latency by route pattern
// (never by raw path, so ids do not explode the label set) on reg as
// partyline_http_request_duration_seconds{method,route,code}.
func Metrics(reg prometheus.Registerer) (func(http.Handler) http.Handler, error) {
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "partyline_http_request_duration_seconds",
		Help:    "REST request latency by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method", "route", "code"})
	if err := reg.Register(hist); err != nil {
		return nil, err
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw, ok := w.(*statusWriter)
			if !ok {
				sw = &statusWriter{ResponseWriter: w}
			}
			next.ServeHTTP(sw, r)
			if sw.status == http.StatusSwitchingProtocols {
				return // a WebSocket lifetime is not a request latency
			}
			route := "unmatched"
			if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
				route = rc.RoutePattern()
			}
			code := sw.status
			if code == 0 {
				code = http.StatusOK
			}
			hist.WithLabelValues(r.Method, route, strconv.Itoa(code)).Observe(time.Since(start).Seconds())
		})
	}, nil
}
