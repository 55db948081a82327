package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/resultcache"
)

// TestErrorsStayShort checks that an error quoting a huge part of the
// request is cut, and that a body over the lookup's limit is reported in
// its own terms.
func TestErrorsStayShort(t *testing.T) {
	f := newCacheFixture(t, resultcache.Config{})
	decode := func(body []byte) client.ErrorDetail {
		t.Helper()
		var e client.ErrorBody
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("error body %.200q: %v", body, err)
		}
		return e.Error
	}

	key := strings.Repeat("k", 300000)
	w := f.do(t, testAdminToken, http.MethodPost, "/v1/lookup", `{"text":"x","`+key+`":1}`)
	if w.Code != http.StatusBadRequest || w.Body.Len() > maxErrorMessage+maxErrorField+200 {
		t.Errorf("unknown 300 KB key: status %d, %d bytes of response; want 400 and a short error", w.Code, w.Body.Len())
	}
	if e := decode(w.Body.Bytes()); !strings.HasSuffix(e.Field, "…") || len(e.Field) > maxErrorField {
		t.Errorf("field = %.60q… (%d bytes), want it cut to %d bytes", e.Field, len(e.Field), maxErrorField)
	}

	w = f.do(t, testAdminToken, http.MethodPost, "/v1/lookup", `{"text":"`+strings.Repeat("x", lookupBodyLimit)+`"}`)
	e := decode(w.Body.Bytes())
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(e.Message, "(512 KiB)") || strings.Contains(e.Message, "article") {
		t.Errorf("lookup over its limit: status %d, %q; want 413 naming 512 KiB and no article limit", w.Code, e.Message)
	}
}

// TestMapValueTypeError checks the message for a value of the wrong type
// inside a map, which names its key, and for a map of the wrong type.
func TestMapValueTypeError(t *testing.T) {
	f := newCacheFixture(t, resultcache.Config{})
	for _, c := range []struct {
		body, field, want string
	}{
		{`{"text":"x","attributes":{"service":5}}`, "attributes.service", "attributes.service must be a string, not a number"},
		{`{"text":"x","attributes":{"service":"a","team":{"x":1}}}`, "attributes.team", "attributes.team must be a string, not an object"},
		{`{"text":"x","attributes":{"service":true}}`, "attributes.service", "attributes.service must be a string, not a boolean"},
		{`{"text":"x","attributes":{"service":null}}`, "attributes.service", "attributes.service holds null"},
		{`{"text":"x","attributes":5}`, "attributes", "attributes must be an object, not number"},
	} {
		wantBadRequest(t, f, http.MethodPost, "/v1/lookup", c.body, c.field, c.want)
	}
}

// TestCheckKeys checks the keys that encoding/json accepts silently: a
// key given twice, in any object and however it is escaped, a key in
// another case, and null where a string belongs.
func TestCheckKeys(t *testing.T) {
	many := func(n int, repeat string) string {
		var b strings.Builder
		b.WriteString(`{"tags":["a"],"metadata":{`)
		for i := range n {
			fmt.Fprintf(&b, `"k%d":"v",`, i)
		}
		b.WriteString(`"` + repeat + `":"v"}}`)
		return b.String()
	}
	for _, c := range []struct {
		body, field string // field is empty when the body passes
	}{
		{`{"title":"a","body":"b","tags":["x","y"],"metadata":{"a":"1","b":"2"}}`, ""},
		{`{"title":"a","title":"b"}`, "title"},
		{`{"title":"a","\u0074itle":"b"}`, "title"},
		{`{"metadata":{"team":"a","team":"b"}}`, "metadata.team"},
		{`{"metadata":{"team":"a","Team":"b"}}`, ""},
		{`{"Title":"a"}`, "Title"},
		{`{"tags":["a",null]}`, "tags[1]"},
		{`{"tags":{"a":1,"a":2}}`, ""}, // a type error, which decodeError names
		{`{"metadata":["a","a"]}`, ""},
		{`{"metadata":{"team":null}}`, "metadata.team"},
		{many(15, "k3"), "metadata.k3"},
		{many(40, "k3"), "metadata.k3"},
		{many(40, "k39x"), ""},
	} {
		err := checkKeys(gjson.Parse(c.body), reflect.TypeOf(&client.Article{}))
		var ae *apiError
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%.80s: %v, want no error", c.body, err)
		case c.field != "" && (!errors.As(err, &ae) || ae.Field != c.field):
			t.Errorf("%.80s: %v, want an error on %s", c.body, err, c.field)
		}
	}
}

// TestDecodeChecksOneValue checks the keys of the first JSON value only
// when decoding fails on a type. It also checks that thousands of levels
// of nesting, which encoding/json accepts, are reported as the type error
// of their field.
func TestDecodeChecksOneValue(t *testing.T) {
	f := newCacheFixture(t, resultcache.Config{})
	nested := func(depth int, inner string) string {
		return `{"text":"x","attributes":{"a":` + strings.Repeat("[", depth) + inner + strings.Repeat("]", depth) + `}}`
	}
	for _, c := range []struct {
		body, field, want string
	}{
		{`{"text":1}{"text":"a","text":"b"}`, "text", "text must be a string"},
		{`{"text":1} {"Text":"x"}`, "text", "text must be a string"},
		{`[1]{"k":1,"k":2}`, "", "must be a JSON object"},
		{nested(14, `"x"`), "attributes.a", "must be a string, not an array"},
		{nested(9990, `"x"`), "attributes.a", "must be a string, not an array"},
		{`{"text":"x","limit":` + strings.Repeat("[", 9990) + strings.Repeat("]", 9990) + `}`, "limit", "limit must be a whole number, not array"},
	} {
		wantBadRequest(t, f, http.MethodPost, "/v1/lookup", c.body, c.field, c.want)
	}
}

// TestCheckKeysDepth checks that a value that takes any JSON, such as the
// name that PATCH /v1/integrations/{id} rejects, is walked only 16 levels
// deep.
func TestCheckKeysDepth(t *testing.T) {
	target := reflect.TypeOf(&integrationPatchRequest{})
	deep := func(n int) string {
		return `{"name":` + strings.Repeat(`[{"a":`, n) + `1` + strings.Repeat(`}]`, n) + `}`
	}
	if err := checkKeys(gjson.Parse(deep(7)), target); err != nil {
		t.Errorf("16 levels: %v, want no error", err)
	}
	var ae *apiError
	if err := checkKeys(gjson.Parse(deep(5000)), target); !errors.As(err, &ae) || !strings.Contains(ae.Message, "more than 16 deep") {
		t.Errorf("10,001 levels: %v, want an error on the depth", err)
	}
}

// TestDecodeErrorMessages checks the fields and offsets that decodeJSON
// reports: no embedded struct in a field, a key as sent, offsets that
// count the byte order mark, a lone surrogate before any other fault, and
// data after the object distinguished from a second value.
func TestDecodeErrorMessages(t *testing.T) {
	f := newCacheFixture(t, resultcache.Config{})
	for _, c := range []struct {
		method, path, body, field, want string
	}{
		{http.MethodPost, "/v1/plan", `{"integrations":[{"name":5}]}`, "integrations[0].name", "must be a string"},
		{http.MethodPost, "/v1/plan", `{"integrations":[{"name":"a"},{"name":"b","scope":{"tags":["x",1]}}]}`, "integrations[1].scope.tags[1]", "must be a string, not number"},
		{http.MethodPost, "/v1/lookup", `{"text":"x","attributes":{"a":"b"},"limit":[5]}`, "limit", "must be a whole number, not array"},
		{http.MethodPut, "/v1/articles/a1", `{"title":"t","body":"b","tags":["a",1]}`, "tags[1]", "must be a string, not number"},
		{http.MethodPost, "/v1/lookup", `x"\ud800"`, "", "not valid JSON at byte 0"},
		{http.MethodPost, "/v1/lookup", `{"text" "\ud800"}`, "", "not valid JSON at byte 8"},
		{http.MethodPost, "/v1/lookup", `{"limit":"x","x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`, "limit", "must be a whole number, not string"},
		{http.MethodPost, "/v1/lookup", "\u00a0null", "", "not valid JSON at byte 0"},
		{http.MethodPost, "/v1/lookup", `{"text":"x"} nonsense`, "", "data after the JSON object, at byte 13"},
		{http.MethodPost, "/v1/lookup", `null x`, "", "the body is null"},
		{http.MethodPost, "/v1/plan", `{"integrations":[` + strings.Repeat("{},", 600) + `{}]}`, "integrations", "more than 500 entries"},
		{http.MethodPost, "/v1/receipts", `{"receipts":[` + strings.Repeat("{},", 2000) + `{}]}`, "receipts", "more than 1000 entries"},
		{http.MethodPost, "/v1/plan", `{"Integrations":[` + strings.Repeat("{},", 600) + `{}]}`, "Integrations", "more than 500 entries"},
		{http.MethodPost, "/v1/plan", `{"integrations":[],"integrations":[` + strings.Repeat("{},", 600) + `{}]}`, "integrations", "more than 500 entries"},
		{http.MethodPut, "/v1/articles/a1", `{"title":"t","body":"b","created_at":"bad","created_at":"2026-12-05T09:00:00Z"}`, "created_at", "RFC 3339"},
		{http.MethodPut, "/v1/articles/a1", `{"title":"t","body":"b","created_at":5}`, "created_at", "RFC 3339"},
		{http.MethodPut, "/v1/articles/a1", `{"title":"t","body":"b","review_due":"2020-01-01"}`, "review_due", "RFC 3339"},
		{http.MethodPost, "/v1/lookup", `{"text":"x","limit":1e400}`, "limit", "fits in 64 bits"},
		{http.MethodPost, "/v1/lookup", `{"text":"x","limit":2.5}`, "limit", "without a fraction"},
		{http.MethodPost, "/v1/lookup", `{"text":"x","\udc00":1}`, "", "half of a UTF-16 surrogate pair"},
		{http.MethodPost, "/v1/receipts", `{"receipts":[{"article_id":"a","version":1},{"article_id":"b","version":1,"extra":1}]}`, "receipts[1].extra", "unknown field"},
		{http.MethodPost, "/v1/plan", `{"integrations":[{"name":"a","freshness":"1h"},{"name":"b","freshness":"1h","scope":{"bogus":1}}]}`, "integrations[1].scope.bogus", "unknown field"},
		{http.MethodPost, "/v1/plan", `{"integrations":[{"name":1}],"zz":` + strings.Repeat("[", 17) + strings.Repeat("]", 17) + `,"integrations":[{},{}]}`, "integrations", "given twice"},
		{http.MethodPost, "/v1/integrations", `{"name":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`, "", "more than 10000 deep"},
		{http.MethodPost, "/v1/lookup", `{"text":"x","a\"b":1}`, `a"b`, "unknown field"},
		{http.MethodPost, "/v1/lookup", "\uFEFF\uFEFF{}", "", "at byte 3"},
		{http.MethodPost, "/v1/lookup", `{"text":{"q":1},"\ud800":1,"\udc00":2}`, "", "half of a UTF-16 surrogate pair"},
		{http.MethodPost, "/v1/lookup", "{\"text\":\"x\"}\x00", "", "data after the JSON object, at byte 12"},
		{http.MethodPost, "/v1/lookup", `{"text":"x"} {"text":"y"}`, "", "more than one JSON value, the second at byte 13"},
		{http.MethodPost, "/v1/lookup", `[{"a":1,"a":2}]`, "", "must be a JSON object, not array"},
	} {
		wantBadRequest(t, f, c.method, c.path, c.body, c.field, c.want)
	}
}

// wantBadRequest sends body and checks that the response is a 400 on field
// whose message contains want.
func wantBadRequest(t *testing.T, f *cacheFixture, method, path, body, field, want string) {
	t.Helper()
	w := f.do(t, testAdminToken, method, path, body)
	var e client.ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("%s %.80q: %v", path, body, err)
	}
	if w.Code != http.StatusBadRequest {
		t.Errorf("%s %.80q: status %d, want 400", path, body, w.Code)
	}
	if e.Error.Field != field {
		t.Errorf("%s %.80q: field %q, want %q", path, body, e.Error.Field, field)
	}
	if !strings.Contains(e.Error.Message, want) {
		t.Errorf("%s %.80q: message %q, want it to contain %q", path, body, e.Error.Message, want)
	}
}

// TestCheckKeysLongKey checks that the place of a value is written out
// only for an error, so that a long key over a long list costs the size
// of the body, not the key's length once per element.
func TestCheckKeysLongKey(t *testing.T) {
	key := strings.Repeat("k", 1<<18)
	body := `{"scope":{"` + key + `":[` + strings.Repeat("0,", 1<<16) + `0]}}`
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := checkKeys(gjson.Parse(body), reflect.TypeOf(&integrationPatchRequest{})); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	// A copy of the key per element would be 16 GiB.
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
		t.Errorf("the check allocated %d MiB for a body of %d KiB", n>>20, len(body)>>10)
	}
}

// TestTimeErrorsInOrder checks that of several times that do not decode,
// the first in the body is named, as the decoder stops there.
func TestTimeErrorsInOrder(t *testing.T) {
	f := newCacheFixture(t, resultcache.Config{})
	for range 5 {
		wantBadRequest(t, f, http.MethodPut, "/v1/articles/a1", `{"title":"t","body":"b","updated_at":"x","review_due":"y","created_at":"z"}`, "updated_at", "RFC 3339")
	}
}

// TestOptionalBodyChunked checks that an empty body sent in chunks, which
// has no Content-Length, reads as no fields, as an empty body with one does.
func TestOptionalBodyChunked(t *testing.T) {
	for _, body := range []string{"", " \r\n"} {
		r := httptest.NewRequest(http.MethodPost, "/v1/integrations/x/rotate-secret", io.NopCloser(strings.NewReader(body)))
		r.ContentLength = -1
		// As with a Content-Length of 0, the headers of an empty body
		// do not matter.
		r.Header.Set("Content-Type", "text/plain")
		var v client.RotateSecretRequest
		if err := decodeOptionalJSON(httptest.NewRecorder(), r, 1<<20, &v); err != nil {
			t.Errorf("body %q: %v, want no error", body, err)
		}
	}
}
