package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// apiError is an error with a status and a message safe to show the
// client. The cause, if any, is logged and never sent.
type apiError struct {
	Status  int
	Code    string
	Field   string
	Message string
	Cause   error
}

func (e *apiError) Error() string { return e.Message }

func badRequest(field, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Field: field, Message: fmt.Sprintf(format, args...)}
}

// writeError maps an error to its HTTP answer: field errors are 400, store
// sentinels 404 and 409, anything else 500 with the cause logged.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var fe *knowledge.FieldError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &fe):
		ae = &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Field: fe.Field, Message: fe.Error()}
	case errors.Is(err, store.ErrNotFound):
		// Handlers name the missing resource themselves; this covers the
		// rest, such as a resource deleted while the request ran.
		ae = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("%s not found: it does not exist or was deleted while the request ran", r.URL.Path)}
	case errors.Is(err, store.ErrConflict):
		ae = &apiError{Status: http.StatusConflict, Code: "conflict", Message: "the resource changed or already exists"}
	case errors.Is(err, r.Context().Err()) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		return
	default:
		ae = &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; the hub's log has the cause", Cause: err}
	}
	if ae.Status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", ae.Cause)
	}
	writeJSON(w, ae.Status, client.ErrorBody{Error: client.ErrorDetail{Code: ae.Code, Message: ae.Message, Field: ae.Field}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	// Article bodies are Markdown with HTML in them; escaping <, > and &
	// would make every body larger for no gain in a JSON API.
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// decodeJSON reads one JSON object into v. Unknown fields, trailing data,
// wrong types and bodies over the limit are 4xx errors that name the field.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: fmt.Sprintf("Content-Type %q is not supported: send application/json", ct)}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, limit)
	}
	if dec.More() {
		return badRequest("", "the body contains more than one JSON value: send a single object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("", "the body has data after the JSON object: send a single object")
	}
	return nil
}

func decodeError(err error, limit int64) error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: fmt.Sprintf("the body is larger than the %d-byte limit", limit)}
	case errors.Is(err, io.EOF):
		return badRequest("", "the body is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "the body ends in the middle of a JSON value")
	case errors.As(err, &syntax):
		return badRequest("", "the body is not valid JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return badRequest("", "the body must be a JSON object, not %s", typeErr.Value)
		}
		return badRequest(field, "%s must be %s, not %s", field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return badRequest(name, "unknown field %q: check its spelling against the API", name)
	}
	return badRequest("", "the body is not valid JSON: %v", err)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "a list"
	case "map", "struct":
		return "an object"
	case "int", "int64", "float64", "uint", "uint64":
		return "a number"
	}
	return goKind
}
