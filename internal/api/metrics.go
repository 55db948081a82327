package api

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/khub-dev/khub/internal/resultcache"
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

// newResultCache creates the node's cache of search and lookup results
// and registers its metrics: khub_result_cache_hits_total and
// khub_result_cache_misses_total by kind ("search" or "lookup"), and the
// entries, estimated bytes and evictions of the whole cache. A request
// that waited for an identical request's computation counts as a hit.
// Call it once per Server.
func (s *Server) newResultCache(cfg resultcache.Config) *resultCache {
	c := &resultCache{
		cache: resultcache.New(cfg),
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "khub_result_cache_hits_total",
			Help: "Searches and lookups served from the node's result cache, by kind.",
		}, []string{"kind"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "khub_result_cache_misses_total",
			Help: "Searches and lookups that the node computed because its result cache had no result at the current change-log position, by kind.",
		}, []string{"kind"}),
	}
	s.cfg.Registry.MustRegister(c.hits, c.misses,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "khub_result_cache_entries",
			Help: "Results in the node's result cache.",
		}, func() float64 { return float64(c.cache.Stats().Entries) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "khub_result_cache_bytes",
			Help: "Estimated memory held by the results in the node's result cache, in bytes.",
		}, func() float64 { return float64(c.cache.Stats().Bytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "khub_result_cache_evictions_total",
			Help: "Results removed from the node's result cache for its bounds or because a commit made them unreachable.",
		}, func() float64 { return float64(c.cache.Stats().Evictions) }),
	)
	for _, kind := range []string{kindSearch, kindLookup} {
		c.hits.WithLabelValues(kind)
		c.misses.WithLabelValues(kind)
	}
	return c
}
