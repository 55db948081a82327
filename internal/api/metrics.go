package api

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Request latency by route is khub_http_request_duration_seconds, which
// ServeHTTP records for every request under the pattern of the route that
// matched, such as "GET /v1/changes", and never under the raw path. The
// middleware here adds the metrics of single handlers.

// timeSearch wraps the search handler and records its latency in
// khub_search_duration_seconds, after authentication and by outcome: "ok"
// for a 2xx or 304 response, "error" for any other status. It registers
// the histogram, so call it once per Server.
func (s *Server) timeSearch(next http.HandlerFunc) http.HandlerFunc {
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "khub_search_duration_seconds",
		Help:    "Time to serve a search after authentication: query validation, the store's full-text query and the JSON response.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"outcome"})
	s.cfg.Registry.MustRegister(latency)
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next(rec, r)
		outcome := "error"
		if rec.status/100 == 2 || rec.status == http.StatusNotModified {
			outcome = "ok"
		}
		latency.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	}
}
