package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"
)

// dashboardFiles contains the dashboard: one HTML page, its stylesheet, its
// script and an icon. Everything the page loads comes from here, so it
// works without network access beyond the hub.
//
//go:embed dashboard
var dashboardFiles embed.FS

// dashboardCSP allows the page to load scripts, styles and images from the
// hub only, and to call only the hub's API. It forbids inline scripts and
// style attributes, plugins, framing and form posts elsewhere, so that text
// from articles or webhook errors shown on the page cannot run as code.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// dashboardAsset is an embedded file with its strong ETag.
type dashboardAsset struct {
	body        []byte
	contentType string
	etag        string
}

// dashboard is the set of embedded files, keyed by name, read once at start.
type dashboard struct {
	index  dashboardAsset
	assets map[string]dashboardAsset
}

func loadDashboard() *dashboard {
	d := &dashboard{assets: map[string]dashboardAsset{}}
	entries, err := fs.ReadDir(dashboardFiles, "dashboard")
	if err != nil {
		panic("dashboard files are not embedded: " + err.Error())
	}
	for _, e := range entries {
		body, err := dashboardFiles.ReadFile(path.Join("dashboard", e.Name()))
		if err != nil {
			panic("read embedded dashboard file: " + err.Error())
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(e.Name()))
		if ct == "" {
			ct = "application/octet-stream"
		}
		a := dashboardAsset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		if e.Name() == "index.html" {
			d.index = a
			continue
		}
		d.assets[e.Name()] = a
	}
	return d
}

// dashboardRoutes serves the dashboard page at / and its files under
// /dashboard/. Neither needs a token, because they contain no data. The
// page prompts for the admin token and sends it as a bearer header on
// every API call.
func (s *Server) dashboardRoutes() {
	d := loadDashboard()
	s.mux.HandleFunc("GET /{$}", d.serveIndex)
	// A login form posted without JavaScript lands here. The token in the
	// body is ignored, never stored, and the page explains that the
	// dashboard needs JavaScript.
	s.mux.HandleFunc("POST /{$}", d.serveIndex)
	s.mux.HandleFunc("GET /dashboard/{file}", d.serveAsset)
}

// securityHeaders sets the headers every dashboard response carries. The
// page may be opened as /?token=..., so no-referrer keeps that URL out of
// the Referer header of any later request.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

func (d *dashboard) serveIndex(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	// The URL may carry the token, so neither the browser nor a proxy may
	// keep a copy of this response.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", d.index.contentType)
	if r.Method == http.MethodPost {
		// Read a small form body unparsed so that the connection can be
		// reused. The token in it is dropped.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(d.index.body)
	}
}

func (d *dashboard) serveAsset(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	a, ok := d.assets[r.PathValue("file")]
	if !ok {
		http.Error(w, "no such dashboard file", http.StatusNotFound)
		return
	}
	// Browsers revalidate on each load and get a 304 while the hub's build
	// is unchanged, so a new build is picked up without a stale script.
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("ETag", a.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
