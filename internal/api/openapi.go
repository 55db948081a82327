package api

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"go.yaml.in/yaml/v3"
)

// openAPIYAML is the OpenAPI 3.1 description of the API. It is kept as
// YAML, which is easier to read and review, and served as JSON.
//
//go:embed openapi/openapi.yaml
var openAPIYAML []byte

// openAPIDocument is the description as served: its JSON and a strong
// entity tag of that JSON.
type openAPIDocument struct {
	body []byte
	etag string
}

// loadOpenAPI converts the embedded description to JSON. The document is
// part of the binary, so a conversion failure is a build defect and
// panics, as a broken embedded dashboard does.
func loadOpenAPI() *openAPIDocument {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		panic("embedded OpenAPI description is not valid YAML: " + err.Error())
	}
	body, err := json.Marshal(doc)
	if err != nil {
		panic("embedded OpenAPI description does not convert to JSON: " + err.Error())
	}
	sum := sha256.Sum256(body)
	return &openAPIDocument{body: body, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
}

// serveOpenAPI returns the handler of GET /openapi.json. The document contains
// no secrets, so it needs no token and any cache may keep it, but it
// changes with the hub's version, so caches revalidate it with the ETag.
func serveOpenAPI() http.HandlerFunc {
	doc := loadOpenAPI()
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("ETag", doc.etag)
		h.Set("Cache-Control", "public, no-cache")
		if notModified(r, doc.etag, time.Time{}) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(doc.body)
		}
	}
}
