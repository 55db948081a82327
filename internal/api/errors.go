package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/hub"
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

// writeError maps an error to its HTTP response: field errors are 400,
// store sentinels 404 and 409, and anything else 500 with the cause logged.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var fe *knowledge.FieldError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &fe):
		ae = &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Field: fe.Field, Message: fe.Error()}
	case errors.Is(err, store.ErrNotFound):
		// Handlers name the missing resource themselves, so this covers the
		// rest, such as a resource deleted while the request ran.
		ae = &apiError{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("%s not found: it does not exist or was deleted while the request ran", r.URL.Path)}
	case errors.Is(err, store.ErrConflict):
		ae = &apiError{Status: http.StatusConflict, Code: "conflict", Message: "the resource changed or already exists"}
	case errors.Is(err, r.Context().Err()) && r.Context().Err() != nil:
		// The client went away, so nobody reads the response.
		return
	default:
		ae = &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error: see the hub's log for the cause", Cause: err}
	}
	if ae.Status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", ae.Cause)
	}
	if ae.Status == http.StatusUnauthorized {
		// RFC 9110 requires the scheme with every 401, and RFC 6750
		// names it for bearer tokens.
		w.Header().Set("WWW-Authenticate", `Bearer realm="khub"`)
	}
	// Messages and fields quote the request, which may be megabytes long.
	writeJSON(w, ae.Status, client.ErrorBody{Error: client.ErrorDetail{Code: ae.Code,
		Message: clipText(ae.Message, maxErrorMessage), Field: clipText(ae.Field, maxErrorField)}})
}

// Bounds of an error response's text, in bytes.
const (
	maxErrorMessage = 2000
	maxErrorField   = 200
)

// clipText returns s cut to at most n bytes, at a character boundary and
// ending in "…", or s when it is shorter.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if status >= 400 {
		// An error describes one moment, such as a missing token or a
		// failed store, and no cache may reuse it.
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	if a, ok := v.(jsonAppender); ok {
		bp := jsonBuffers.Get().(*[]byte)
		b := a.appendJSON((*bp)[:0])
		// An io.Writer keeps no part of what it is given, so the
		// buffer serves the next response.
		_, _ = w.Write(b)
		if cap(b) <= maxPooledJSON {
			*bp = b[:0]
			jsonBuffers.Put(bp)
		}
		return
	}
	enc := json.NewEncoder(w)
	// Article bodies are Markdown with HTML in them, and escaping <, > and &
	// would make every body larger for no gain in a JSON API.
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// jsonBuffers is the pool of buffers that writeJSON encodes search and
// lookup results into, a few kilobytes each.
var jsonBuffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledJSON bounds the buffers that jsonBuffers keeps, so that a
// page of a thousand hits leaves its buffer to the collector.
const maxPooledJSON = 256 << 10

// decodeJSON reads one JSON object of at most limit bytes into v. The
// body must be UTF-8 and sent as application/json or without a
// Content-Type. Unknown fields, wrong types and trailing data are 4xx
// errors that name the field.
//
// encoding/json accepts keys that differ in case from a field name and
// keys given twice, and it turns invalid UTF-8 and escaped lone UTF-16
// surrogates into U+FFFD. decodeJSON rejects all four with a 400. It also
// rejects a compressed body and a JSON null, which encoding/json leaves
// as an empty object, and it skips a leading byte order mark, as RFC 8259
// allows, because some editors and shells write one.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	return decodeBody(w, r, limit, v, false)
}

// decodeOptionalJSON is decodeJSON for bodies whose fields are all
// optional: an empty body, or one of white space only, reads as {}.
func decodeOptionalJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	return decodeBody(w, r, limit, v, true)
}

// decodeBody is decodeJSON, and with optional decodeOptionalJSON.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any, optional bool) error {
	if optional && r.ContentLength == 0 {
		return nil
	}
	// An optional body's headers are checked once it is known not to be
	// empty, as a chunked body's emptiness is known only when read.
	if !optional {
		if err := checkBodyHeaders(r); err != nil {
			return err
		}
	}
	if r.ContentLength > limit {
		// Refused before a byte is read, so a client that sent
		// Expect: 100-continue learns it without sending the body.
		return decodeError(&http.MaxBytesError{Limit: limit}, limit, reflect.TypeOf(v))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return decodeError(err, limit, reflect.TypeOf(v))
	}
	// Offsets in messages count the byte order mark, as the client sent it.
	trimmed := bytes.TrimPrefix(body, []byte("\uFEFF"))
	bom := len(body) - len(trimmed)
	body = trimmed
	if optional {
		if len(bytes.Trim(body, jsonSpace)) == 0 {
			return nil
		}
		if err := checkBodyHeaders(r); err != nil {
			return err
		}
	}
	if err := checkListLength(body, reflect.TypeOf(v)); err != nil {
		return err
	}
	if !utf8.Valid(body) {
		return badRequest("", "the body is not valid UTF-8 at byte %d: send JSON text encoded as UTF-8", bom+invalidUTF8At(body))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			// encoding/json marks this fault only in its message.
			if strings.Contains(syntax.Error(), "exceeded max depth") {
				return badRequest("", "the body nests objects and lists more than 10000 deep: no request of this API needs more than 5 levels, so send the fields that its description names")
			}
			if syntax.Offset > 0 {
				// encoding/json counts the bytes read, the bad one too,
				// while messages give the bad byte's offset from 0.
				syntax.Offset += int64(bom) - 1
			}
		}
		var typeErr *json.UnmarshalTypeError
		unknown := strings.HasPrefix(err.Error(), "json: unknown field ")
		if unknown || errors.As(err, &typeErr) {
			// The decoder read the first value whole, so it is valid
			// JSON. A value after it is no part of the object.
			first := body[:dec.InputOffset()]
			if err := checkSurrogates(first, bom); err != nil {
				return err
			}
			// encoding/json names neither the place of an unknown key
			// nor the key of a map whose value has another type, and
			// checkKeys names both. It skips what is nested too deep,
			// since the decoder's error is more specific. encoding/json
			// reports the first fault in the body, so after a type error
			// every unknown key comes later.
			// NOTE: of several faults, the one named may not be the first
			// in the body. A key given twice or in another case is named
			// before an earlier type error. A bad time is named before
			// earlier keys that are unknown, given twice or in another case.
			doc := gjson.ParseBytes(first)
			c := keyChecker{unknown: unknown}
			if err := c.value(doc, reflect.TypeOf(v), nil, false, 0); err != nil {
				return err
			}
			if typeErr != nil {
				typeErr.Field = locateField(doc, reflect.TypeOf(v), typeErr)
			}
		} else if err := checkTimes(body[:dec.InputOffset()], reflect.TypeOf(v)); err != nil {
			// A time's own decoder names no field.
			return err
		}
		return decodeError(err, limit, reflect.TypeOf(v))
	}
	end := int(dec.InputOffset())
	if bytes.Equal(bytes.Trim(body[:end], jsonSpace), []byte("null")) {
		return badRequest("", "the body is null: send a JSON object")
	}
	if rest := bytes.TrimLeft(body[end:], jsonSpace); len(rest) > 0 {
		at := bom + len(body) - len(rest)
		var second json.RawMessage
		if json.NewDecoder(bytes.NewReader(rest)).Decode(&second) == nil {
			return badRequest("", "the body contains more than one JSON value, the second at byte %d: send a single object", at)
		}
		return badRequest("", "the body has data after the JSON object, at byte %d: send a single object", at)
	}
	if err := checkSurrogates(body, bom); err != nil {
		return err
	}
	return checkKeys(gjson.ParseBytes(body), reflect.TypeOf(v))
}

// checkBodyHeaders rejects a body's Content-Type and Content-Encoding
// unless they are JSON and identity.
func checkBodyHeaders(r *http.Request) error {
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	return checkContentEncoding(r.Header.Values("Content-Encoding"))
}

// checkTimes rejects the first time that does not decode in the JSON
// object text, in the order of the body, because the decoder stops there.
// A time is the value of a key that names a field of type time.Time of
// the struct that target points to. It returns nil for invalid JSON.
func checkTimes(text []byte, target reflect.Type) error {
	if !json.Valid(text) {
		return nil
	}
	fields := structFields(target)
	var err error
	gjson.ParseBytes(text).ForEach(func(k, raw gjson.Result) bool {
		for name, t := range fields {
			for t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
			if t != timeType || !strings.EqualFold(k.Str, name) {
				continue
			}
			var at time.Time
			if raw.Type != gjson.Null && json.Unmarshal([]byte(raw.Raw), &at) != nil {
				err = badRequest(k.Str, "%s must be a time in RFC 3339 form, such as \"2026-12-05T09:00:00Z\", not %.40s", k.Str, raw.Raw)
				return false
			}
		}
		return true
	})
	return err
}

var timeType = reflect.TypeFor[time.Time]()

// listLimit is the maximum number of entries of a request's list.
type listLimit struct {
	field string
	max   int
	fix   string
}

// listLimits are the lists of requests that have a limit, by the type the
// request decodes into. encoding/json would build every entry before the
// handler counts them: 8 MiB of empty entries take gigabytes.
var listLimits = map[reflect.Type]listLimit{
	reflect.TypeFor[*client.PlanRequest]():    {"integrations", hub.MaxPlanEntries, "split the plan into several files"},
	reflect.TypeFor[*client.ReceiptRequest](): {"receipts", client.MaxReceipts, "send them in several requests"},
}

// checkListLength rejects a body whose limited list has too many entries,
// counted without decoding them. Every copy of the key counts, in any
// case, since encoding/json decodes each copy that matches the field
// without regard to case. The body is not validated first, so a list
// that is too long is reported before any other fault of the body.
func checkListLength(body []byte, target reflect.Type) error {
	l, ok := listLimits[target]
	if !ok {
		return nil
	}
	var err error
	gjson.ParseBytes(body).ForEach(func(k, list gjson.Result) bool {
		if !list.IsArray() || !strings.EqualFold(k.Str, l.field) {
			return true
		}
		n := 0
		list.ForEach(func(_, _ gjson.Result) bool {
			n++
			return n <= l.max
		})
		if n > l.max {
			err = badRequest(k.Str, "%s has more than %d entries, the maximum: %s", k.Str, l.max, l.fix)
			return false
		}
		return true
	})
	return err
}

// jsonSpace is the white space of JSON, which RFC 8259 limits to these.
const jsonSpace = " \t\r\n"

// checkSurrogates rejects an escaped half of a UTF-16 surrogate pair
// without the other half in valid JSON text. encoding/json turns it into
// U+FFFD, so two such keys would also read as one key given twice. bom is
// the length of the byte order mark before the text, which offsets count.
func checkSurrogates(text []byte, bom int) error {
	if at := loneSurrogate(text); at >= 0 {
		return badRequest("", "the body has the escape %s at byte %d, half of a UTF-16 surrogate pair without the other half, which is no character: send the character as UTF-8 or escape it as a complete pair", text[at:at+6], bom+at)
	}
	return nil
}

// checkContentEncoding accepts no coding but identity, on any number of
// header lines and in lists, as RFC 9110, section 8.4, allows.
func checkContentEncoding(lines []string) error {
	for _, line := range lines {
		for ce := range strings.SplitSeq(line, ",") {
			if ce = strings.TrimSpace(ce); ce != "" && !strings.EqualFold(ce, "identity") {
				return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Field: "Content-Encoding",
					Message: fmt.Sprintf("Content-Encoding %.40q is not supported: send the body uncompressed, without Content-Encoding", ce)}
			}
		}
	}
	return nil
}

// checkContentType accepts an empty Content-Type and application/json with
// no charset or the UTF-8 one, in any case (RFC 9110, section 8.3.1).
func checkContentType(ct string) error {
	if ct == "" {
		return nil
	}
	unsupported := func(why string) error {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Field: "Content-Type",
			Message: fmt.Sprintf("Content-Type %q %s: send application/json", ct, why)}
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	switch {
	case err != nil:
		return unsupported("cannot be parsed")
	case mediaType != "application/json":
		return unsupported("is not supported")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return unsupported("names a charset other than UTF-8")
	}
	return nil
}

// invalidUTF8At returns the offset of the first byte of b that does not
// start a valid UTF-8 sequence, or len(b).
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// loneSurrogate returns the offset of the first \u escape in a valid JSON
// text that encodes half of a UTF-16 surrogate pair without the other
// half, or -1 when there is none.
func loneSurrogate(b []byte) int {
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !inString {
			inString = c == '"'
			continue
		}
		switch {
		case c == '"':
			inString = false
		case c != '\\' || i+1 >= len(b):
		case b[i+1] != 'u':
			i++ // a one-character escape such as \" or \\
		default:
			r, ok := hex4(b[i+2:])
			switch {
			case !ok:
				return -1 // not valid JSON, which the decoder has reported already
			case r >= 0xDC00 && r <= 0xDFFF:
				return i
			case r >= 0xD800 && r <= 0xDBFF:
				if len(b) < i+12 || b[i+6] != '\\' || b[i+7] != 'u' {
					return i
				}
				if low, ok := hex4(b[i+8:]); !ok || low < 0xDC00 || low > 0xDFFF {
					return i
				}
				i += 11
			default:
				i += 5
			}
		}
	}
	return -1
}

// hex4 reads the four hexadecimal digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[:4]), 16, 16)
	return rune(n), err == nil
}

// keyPath is the place of a value in the body, built into a string only
// for an error: a string per key or element would make a long key cost
// its length once for each value under it.
type keyPath struct {
	parent *keyPath
	key    string // the key in an object, when index < 0
	index  int    // the place in a list, or -1
}

// String returns the path as errors name fields: "scope.metadata" or
// "receipts[1].version". The root is "".
func (p *keyPath) String() string {
	var steps []*keyPath
	for q := p; q != nil; q = q.parent {
		steps = append(steps, q)
	}
	var b strings.Builder
	for i := len(steps) - 1; i >= 0; i-- {
		if q := steps[i]; q.index >= 0 {
			b.WriteString("[" + strconv.Itoa(q.index) + "]")
		} else {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(q.key)
		}
	}
	return b.String()
}

// checkMapString rejects a value of a map of strings unless it is a
// string, naming the key in path.
func checkMapString(v gjson.Result, path *keyPath) error {
	kind := "a number"
	switch {
	case v.Type == gjson.String:
		return nil
	case v.Type == gjson.Null:
		return badRequest(path.String(), "%s holds null where a string belongs: give a string, or leave the entry out", path)
	case v.IsObject():
		kind = "an object"
	case v.IsArray():
		kind = "an array"
	case v.Type == gjson.True || v.Type == gjson.False:
		kind = "a boolean"
	}
	return badRequest(path.String(), "%s must be a string, not %s: write the value in quotes", path, kind)
}

// checkKeys rejects the object keys of a JSON value that encoding/json
// accepts silently when it decodes the value into type t. These are a
// key that names a field only when case is ignored, such as "Title" for
// "title", and a key given twice in one object, of which encoding/json
// keeps the last. It also rejects null as a string in a map or a list,
// which encoding/json stores as "", and names the place of an unknown
// key.
//
// The value must be one valid JSON value, as one that encoding/json
// decoded is, because gjson walks it without checking, many times faster
// than json.Decoder.Token. An object or list where t is neither is left
// to encoding/json's type error.
//
// gjson reads a nested value once to find its end and again to walk it,
// so a walk costs the body's size times its depth. Objects and lists
// nested deeper than maxDepth are therefore not walked, and when the rest
// passes, checkKeys rejects the first of them, so that a body of
// thousands of levels, which encoding/json accepts, costs no more than a
// few reads.
func checkKeys(v gjson.Result, t reflect.Type) error {
	var c keyChecker
	if err := c.value(v, t, nil, false, 0); err != nil {
		return err
	}
	return c.deep
}

// keyChecker is the walk of checkKeys.
type keyChecker struct {
	// unknown names the first key that is no field of its struct, for
	// encoding/json's error, which gives only the key.
	unknown bool
	// deep is the error of the first value nested deeper than maxDepth.
	deep error
}

// value checks v, which decodes into t. path is the place of the value,
// nil for the body. element marks a value in a map or a list, and depth
// counts the objects and lists around the value.
func (c *keyChecker) value(v gjson.Result, t reflect.Type, path *keyPath, element bool, depth int) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	kind := reflect.Invalid // any JSON value, as for json.RawMessage
	if t != nil && t != rawMessage {
		kind = t.Kind()
	}
	object := v.IsObject() && (kind == reflect.Invalid || kind == reflect.Struct || kind == reflect.Map)
	list := v.IsArray() && (kind == reflect.Invalid || kind == reflect.Slice || kind == reflect.Array)
	if (object || list) && depth >= maxDepth {
		if c.deep == nil {
			c.deep = badRequest(path.String(), "the body nests objects and lists more than %d deep: no request of this API needs more than 5 levels, so send the fields that its description names", maxDepth)
		}
		return nil
	}
	switch {
	case object:
		return c.object(v, t, path, depth+1)
	case list:
		var elem reflect.Type
		if kind != reflect.Invalid {
			elem = t.Elem()
		}
		var err error
		i := 0
		v.ForEach(func(_, e gjson.Result) bool {
			err = c.value(e, elem, &keyPath{parent: path, index: i}, true, depth+1)
			i++
			return err == nil
		})
		return err
	case v.Type == gjson.Null && element && t != nil && t.Kind() == reflect.String:
		return badRequest(path.String(), "%s holds null where a string belongs: give a string, or leave the entry out", path)
	}
	return nil // a scalar, or a value of another kind than t
}

// rawMessage is the type of fields that take any JSON value.
var rawMessage = reflect.TypeFor[json.RawMessage]()

// maxDepth bounds the objects and lists that checkKeys walks into.
const maxDepth = 16

// object is value for an object at depth.
func (c *keyChecker) object(v gjson.Result, t reflect.Type, path *keyPath, depth int) error {
	var fields map[string]reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = jsonFields(t)
	}
	inMap := t != nil && t.Kind() == reflect.Map
	// Objects of requests have a few keys, which a list compares faster
	// than a map. The map takes over for large ones, where the list
	// would make a big body cost the square of its keys.
	const listed = 16
	var seen []string
	var seenMap map[string]bool
	var err error
	v.ForEach(func(k, val gjson.Result) bool {
		key := k.Str
		field := &keyPath{parent: path, key: key, index: -1}
		dup := false
		switch {
		case seenMap != nil:
			dup = seenMap[key]
			seenMap[key] = true
		case len(seen) < listed:
			dup = slices.Contains(seen, key)
			seen = append(seen, key)
		default:
			seenMap = make(map[string]bool, 2*listed)
			for _, s := range seen {
				seenMap[s] = true
			}
			dup = seenMap[key]
			seenMap[key] = true
		}
		if dup {
			err = badRequest(field.String(), "%s is given twice in one object: give each key once", field)
			return false
		}
		var next reflect.Type
		switch {
		case inMap && t.Elem().Kind() == reflect.String:
			// encoding/json names the map, not the key, in the error of
			// a value of another type.
			err = checkMapString(val, field)
			return err == nil
		case inMap:
			next = t.Elem()
		case fields != nil:
			ft, ok := fields[key]
			if !ok {
				for name := range fields {
					if strings.EqualFold(name, key) {
						err = badRequest(field.String(), "unknown field %q: field names are case-sensitive, so write %q", key, name)
						return false
					}
				}
				if c.unknown {
					err = badRequest(field.String(), "unknown field %q: check its spelling against the API", key)
					return false
				}
			}
			next = ft
		}
		err = c.value(val, next, field, inMap, depth)
		return err == nil
	})
	return err
}

// locateField returns the place of a type error's value in doc, the
// body's first value, as errors name fields: "integrations[1].name"
// where encoding/json gives "integrations.IntegrationRequest.name",
// naming each embedded struct and no place in a list. It finds each list
// element by the error's offset, which encoding/json gives just past the
// value.
func locateField(doc gjson.Result, target reflect.Type, e *json.UnmarshalTypeError) string {
	if e.Field == "" {
		return ""
	}
	at := int(e.Offset) - 1
	v, t := doc, target
	var b strings.Builder
	// intoLists steps into the element of each list that contains the value,
	// down to a list that is the value.
	intoLists := func() {
		for {
			for t != nil && t.Kind() == reflect.Pointer {
				t = t.Elem()
			}
			if t == nil || t == e.Type || t.Kind() != reflect.Slice && t.Kind() != reflect.Array || !v.IsArray() {
				return
			}
			i, found := 0, false
			v.ForEach(func(_, el gjson.Result) bool {
				if found = el.Index <= at && at < el.Index+len(el.Raw); found {
					v = el
					return false
				}
				i++
				return true
			})
			if !found {
				t = nil
				return
			}
			b.WriteString("[" + strconv.Itoa(i) + "]")
			t = t.Elem()
		}
	}
	for seg := range strings.SplitSeq(e.Field, ".") {
		intoLists()
		if t != nil && t.Kind() == reflect.Struct {
			if f, ok := t.FieldByName(seg); ok && f.Anonymous && f.Tag.Get("json") == "" {
				t = f.Type
				continue
			}
			t = jsonFields(t)[seg]
		} else {
			t = nil
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(seg)
		v = member(v, seg)
	}
	intoLists()
	return b.String()
}

// member returns the value of key in object v. It returns the last when
// the key recurs, and it matches a key in another case, as encoding/json
// does both.
func member(v gjson.Result, key string) gjson.Result {
	var out gjson.Result
	v.ForEach(func(k, val gjson.Result) bool {
		if k.Str == key || strings.EqualFold(k.Str, key) {
			out = val
		}
		return true
	})
	return out
}

// structFields returns the JSON fields of the struct that target points
// to, or nil for any other type.
func structFields(target reflect.Type) map[string]reflect.Type {
	if target == nil || target.Kind() != reflect.Pointer || target.Elem().Kind() != reflect.Struct {
		return nil
	}
	return jsonFields(target.Elem())
}

// isMapField reports whether the top-level JSON field name of the struct
// that target points to is a map.
func isMapField(target reflect.Type, name string) bool {
	t, ok := structFields(target)[name]
	return ok && t.Kind() == reflect.Map
}

// fieldCache maps a struct type to its JSON field names and their types.
var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields returns the JSON names of the exported fields of a struct
// type, including those promoted from embedded structs, as encoding/json
// reads them.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if cached, ok := fieldCache.Load(t); ok {
		return cached.(map[string]reflect.Type)
	}
	fields := map[string]reflect.Type{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || len(f.Index) > 1 && !promoted(t, f.Index) {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			continue // its fields are listed on their own
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	fieldCache.Store(t, fields)
	return fields
}

// promoted reports whether encoding/json promotes the field at index: every
// struct it is embedded through must be embedded without a JSON name.
func promoted(t reflect.Type, index []int) bool {
	for _, i := range index[:len(index)-1] {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" || f.Type.Kind() != reflect.Struct {
			return false
		}
		t = f.Type
	}
	return true
}

// decodeError turns an error of reading or decoding a body of at most
// limit bytes into v, of type target (nil before decoding), into a 4xx.
func decodeError(err error, limit int64, target reflect.Type) error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		msg := fmt.Sprintf("the request body is larger than this endpoint's limit of %d bytes (%s): send a smaller body", limit, byteSize(limit))
		if _, article := structFields(target)["body"]; article && limit > knowledge.MaxBodyLen {
			msg += fmt.Sprintf(". An article body may be at most %d bytes (1 MiB) once its JSON escapes are decoded", knowledge.MaxBodyLen)
		}
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: msg}
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
		// encoding/json names a number it could not store as "number 1.5".
		got := strings.TrimPrefix(typeErr.Value, "number ")
		if typeErr.Type.Kind() != reflect.Map && isMapField(target, field) {
			// encoding/json names the map, not the key whose value is wrong.
			return badRequest(field, "each value of %s must be %s, not %s: write every value in quotes", field, jsonKind(typeErr.Type.Kind().String()), got)
		}
		want := jsonKind(typeErr.Type.Kind().String())
		if got != typeErr.Value {
			// A number that the field's type cannot represent: a fraction, an
			// exponent or too many digits.
			switch typeErr.Type.Kind() {
			case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint64:
				return badRequest(field, "%s must be a whole number that fits in 64 bits, written in digits without a fraction or exponent, not %s", field, got)
			case reflect.Float64:
				return badRequest(field, "%s must be a number that fits in a 64-bit float, not %s", field, got)
			}
		}
		return badRequest(field, "%s must be %s, not %s: send %s", field, want, got, want)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		// encoding/json quotes the key as Go does.
		if key, err := strconv.Unquote(name); err == nil {
			name = key
		}
		return badRequest(name, "unknown field %q: check its spelling against the API", name)
	}
	return badRequest("", "the body is not valid JSON: %v", err)
}

// byteSize writes n bytes in MiB or KiB, rounded down.
func byteSize(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
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
	case "int", "int64", "uint", "uint64":
		return "a whole number"
	case "float64":
		return "a number"
	}
	return goKind
}
