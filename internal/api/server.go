// Package api serves khub's HTTP API: article writes and integration
// management for the admin token, and the pull side (get, search, change
// feed) for integration tokens within their scope. Handlers stay thin and
// call the hub.
package api

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/hub"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/resultcache"
	"github.com/khub-dev/khub/internal/store"
)

// Config sets the server's limits. Zero values take the defaults.
type Config struct {
	// AdminToken authorizes every call. Required.
	AdminToken string
	// MaxBodyBytes is the maximum size of a request body, in bytes. The
	// default is DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxWait is the maximum wait parameter of the change feed. The
	// default is 60s.
	MaxWait time.Duration
	// Registry receives the HTTP and stream metrics and serves /metrics.
	// When it is nil, New creates a new registry for them.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Version is reported by /healthz.
	Version string
	// StreamHeartbeat is the time between heartbeats of an idle stream of
	// GET /v1/stream. The default is DefaultStreamHeartbeat (15s).
	StreamHeartbeat time.Duration
	// ResultCache bounds the node's cache of search and lookup results;
	// see resultcache.Config for the defaults and how to turn it off.
	ResultCache resultcache.Config
}

// DefaultMaxBodyBytes is the default request body limit, 8 MiB. A JSON
// escape such as \u0001 takes six bytes for one byte of text, so a
// maximum-size article (a 1 MiB body with the longest title, tags and
// metadata) fits even when every character in it is escaped. Field limits
// apply to the decoded text.
const DefaultMaxBodyBytes = 8 << 20

// Server is the HTTP API.
type Server struct {
	hub     *hub.Hub
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	latency *prometheus.HistogramVec
	streams streamSet
	results *resultCache
}

// New builds the API server over a hub.
func New(h *hub.Hub, cfg Config) *Server {
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = 60 * time.Second
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &Server{hub: h, cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "khub_http_request_duration_seconds",
		Help:    "Time to serve API requests, by route and status code.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	}, []string{"route", "code"})
	cfg.Registry.MustRegister(s.latency)
	s.results = s.newResultCache(cfg.ResultCache)
	s.initStreams()
	s.routes()
	return s
}

func (s *Server) routes() {
	admin, pull := s.requireAdmin, s.requireToken
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /openapi.json", serveOpenAPI())
	s.mux.Handle("GET /metrics", admin(promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}).ServeHTTP))

	s.mux.Handle("POST /v1/articles", admin(s.createArticle))
	s.mux.Handle("PUT /v1/articles/{id}", admin(s.putArticle))
	s.mux.Handle("DELETE /v1/articles/{id}", admin(s.archiveArticle))
	s.mux.Handle("GET /v1/articles/{id}", pull(s.getArticle))
	s.mux.Handle("GET /v1/articles/{id}/versions", pull(s.listVersions))
	s.mux.Handle("GET /v1/articles/{id}/versions/{version}", pull(s.getVersion))

	s.mux.Handle("GET /v1/search", pull(s.timeSearch(s.search)))
	s.mux.Handle("GET /v1/changes", pull(s.changes))
	s.mux.Handle("POST /v1/lookup", pull(s.lookup))
	s.mux.Handle("GET /v1/stream", pull(s.stream))
	s.mux.Handle("GET /v1/cursor", pull(s.getCursor))
	s.mux.Handle("POST /v1/cursor", pull(s.reportCursor))

	s.mux.Handle("POST /v1/integrations", admin(s.createIntegration))
	s.mux.Handle("GET /v1/integrations", admin(s.listIntegrations))
	s.mux.Handle("GET /v1/integrations/{id}", admin(s.getIntegration))
	s.mux.Handle("PATCH /v1/integrations/{id}", admin(s.updateIntegration))
	s.mux.Handle("DELETE /v1/integrations/{id}", admin(s.deleteIntegration))
	s.mux.Handle("GET /v1/integrations/{id}/deliveries", admin(s.listDeliveries))
	s.mux.Handle("GET /v1/integrations/{id}/staleness", admin(s.staleness))
	s.mux.Handle("POST /v1/integrations/{id}/resume", admin(s.resumeIntegration))
	s.mux.Handle("POST /v1/integrations/{id}/rotate-secret", admin(s.rotateSecret))
	s.mux.Handle("POST /v1/integrations/{id}/replay", admin(s.replay))
	s.mux.Handle("POST /v1/plan", admin(s.plan))

	s.dashboardRoutes()
	s.receiptRoutes()
}

// ServeHTTP records the latency of every request under its route pattern.
// A request that matches no route gets the 404 or 405 of the mux in the
// JSON error format of the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	var out http.ResponseWriter = rec
	_, pattern := s.mux.Handler(r)
	if pattern == "" {
		pattern = "unmatched"
		out = &routeErrorWriter{ResponseWriter: rec, r: r}
	}
	if err := malformedQuery(r.URL.RawQuery); err != nil && strings.Contains(pattern, " /v1/") {
		// url.Values drops a pair it cannot decode, so a filter such as
		// class=policy% would vanish and widen the result. The dashboard's
		// pages read no parameters from the server, so they still load.
		s.writeError(rec, r, err)
	} else {
		s.mux.ServeHTTP(out, r)
	}
	s.latency.WithLabelValues(pattern, strconv.Itoa(rec.status)).Observe(time.Since(start).Seconds())
}

// malformedQuery returns a 400 naming the parameter of the first part of a
// query string that cannot be decoded, or nil when every part can. The
// message quotes no value, which may be a token.
func malformedQuery(raw string) error {
	// Only a percent escape or a semicolon can make a query string
	// invalid, so most requests skip the parse.
	if !strings.ContainsAny(raw, "%;") {
		return nil
	}
	if _, err := url.ParseQuery(raw); err == nil {
		return nil
	}
	for part := range strings.SplitSeq(raw, "&") {
		key, value, _ := strings.Cut(part, "=")
		name, err := url.QueryUnescape(key)
		if err != nil {
			name = key
		}
		name = clipText(name, 100)
		if strings.Contains(part, ";") {
			return badRequest(name, "the query parameter %q contains a semicolon, which does not separate parameters: separate them with & and percent-encode a semicolon in a value as %%3B", name)
		}
		if err == nil {
			_, err = url.QueryUnescape(value)
		}
		if err != nil {
			return badRequest(name, "the query parameter %q cannot be decoded: percent-encode %% as %%25 and other reserved characters as %%XX", name)
		}
	}
	return badRequest("", "the query string cannot be decoded: percent-encode reserved characters as %%XX and separate parameters with &")
}

// routeErrorWriter replaces the plain-text 404 and 405 responses of the mux
// to a request that matches no route with the API's JSON error body. The
// mux sets the Allow header of a 405 before it writes the status, so the
// header stays.
type routeErrorWriter struct {
	http.ResponseWriter
	r        *http.Request
	replaced bool
}

func (w *routeErrorWriter) WriteHeader(code int) {
	var detail client.ErrorDetail
	switch code {
	case http.StatusNotFound:
		detail = client.ErrorDetail{Code: "not_found",
			Message: fmt.Sprintf("no API route matches %s %s: check the path, such as /v1/articles/{id}, /v1/search or /v1/changes", w.r.Method, w.r.URL.EscapedPath())}
	case http.StatusMethodNotAllowed:
		detail = client.ErrorDetail{Code: "method_not_allowed",
			Message: fmt.Sprintf("method %s is not allowed on %s: use %s", w.r.Method, w.r.URL.Path, w.Header().Get("Allow"))}
	default:
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.replaced = true
	writeJSON(w.ResponseWriter, code, client.ErrorBody{Error: detail})
}

// Write drops the plain-text body of a replaced response.
func (w *routeErrorWriter) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer, which
// long polls need to extend their write deadline.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.hub.Store.HeadCursor(ctx); err != nil {
		s.log.Error("health check failed", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": "the store did not respond: see the hub's log for the cause"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.cfg.Version})
}

// principal is the caller of a request: the admin, or one integration.
type principal struct {
	admin       bool
	integration *store.IntegrationState
}

// scope returns the filters that limit the articles the caller can read.
func (p principal) scope() []knowledge.Scope {
	if p.admin {
		return nil
	}
	return []knowledge.Scope{p.integration.Scope}
}

// canSee reports whether the caller may read the article.
func (p principal) canSee(a *knowledge.Article) bool {
	return p.admin || p.integration.Scope.Matches(a)
}

type principalKey struct{}

func principalFrom(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// bearer returns the token of an Authorization header in the Bearer
// scheme. The scheme name is case-insensitive (RFC 9110, section 11.1), so
// "bearer" and "BEARER" work too.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func (s *Server) isAdmin(token string) bool {
	return subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) == 1
}

var errUnauthorized = &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Field: "Authorization",
	Message: "missing or invalid token: send Authorization: Bearer TOKEN with the admin token or an integration's pull token"}

// requireAdmin lets only the admin token through.
func (s *Server) requireAdmin(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			s.writeError(w, r, errUnauthorized)
			return
		}
		if !s.isAdmin(token) {
			if _, err := s.hub.Authenticate(r.Context(), token); err == nil {
				s.writeError(w, r, &apiError{Status: http.StatusForbidden, Code: "forbidden", Message: "this call requires the admin token, because an integration's pull token can only read"})
				return
			}
			s.writeError(w, r, errUnauthorized)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, principal{admin: true})))
	})
}

// requireToken lets the admin token or a pull token through, and records
// which integration is calling.
func (s *Server) requireToken(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			s.writeError(w, r, errUnauthorized)
			return
		}
		p := principal{admin: s.isAdmin(token)}
		if !p.admin {
			in, err := s.hub.Authenticate(r.Context(), token)
			if err != nil {
				s.writeError(w, r, errUnauthorized)
				return
			}
			p.integration = &in
		}
		next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}
