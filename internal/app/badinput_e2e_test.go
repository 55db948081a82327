package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/app"
)

// wantError checks that a response is a JSON error with the status and the
// field, and returns its detail.
func wantError(t *testing.T, resp response, status int, field string) client.ErrorDetail {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d: %s", resp.StatusCode, status, resp.body)
	}
	var eb client.ErrorBody
	if err := json.Unmarshal(resp.body, &eb); err != nil {
		t.Fatalf("error body is not JSON: %q", resp.body)
	}
	if eb.Error.Field != field {
		t.Errorf("field = %q, want %q (message %q)", eb.Error.Field, field, eb.Error.Message)
	}
	if eb.Error.Message == "" || eb.Error.Code == "" {
		t.Errorf("error has no code or message: %s", resp.body)
	}
	return eb.Error
}

// TestBadQueryParameters sends query parameters that once reached the
// store or were ignored. Each must be a 400 naming the parameter on both
// store back-ends, never a 500.
func TestBadQueryParameters(t *testing.T) {
	longKey := strings.Repeat("k", 101)
	cases := []struct {
		name, path, field string
	}{
		{"NUL in q", "/v1/search?q=a%00b", "q"},
		{"control character in q", "/v1/search?q=a%01b", "q"},
		{"DEL in q", "/v1/search?q=a%7Fb", "q"},
		{"invalid UTF-8 in q", "/v1/search?q=%ff%fe", "q"},
		{"only emoji and symbols in q", "/v1/search?q=%F0%9F%9A%A8+*+%22%22", "q"},
		{"bad escape in a filter", "/v1/search?q=data&class=policy%", "class"},
		{"bad escape in a key", "/v1/search?q=data&cl%zzass=policy", "cl%zzass"},
		{"semicolon", "/v1/search?q=data;class=policy", "q"},
		{"bad escape in after", "/v1/changes?after=0%&limit=1", "after"},
		{"NUL in tag", "/v1/search?tag=a%00b", "tag"},
		{"empty tag", "/v1/search?tag=", "tag"},
		{"NUL in meta value", "/v1/search?meta.team=a%00b", "meta.team"},
		{"control character in meta key", "/v1/search?meta.a%01b=x", "meta.a\x01b"},
		{"NUL in meta key", "/v1/search?meta.a%00b=x", "meta.a\x00b"},
		{"overlong meta key", "/v1/search?meta." + longKey + "=x", "meta." + longKey},
		{"repeated after", "/v1/changes?after=0&after=1", "after"},
		{"repeated limit", "/v1/changes?limit=1&limit=2", "limit"},
		{"repeated wait", "/v1/changes?wait=1s&wait=2s", "wait"},
	}
	stores := []struct {
		name  string
		setup func(t *testing.T) []func(*app.Config)
	}{
		{"sqlite", func(*testing.T) []func(*app.Config) { return nil }},
		{"postgres", func(t *testing.T) []func(*app.Config) { return []func(*app.Config){sharedPostgres(t)} }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			_, c := startHub(t, st.setup(t)...)
			put(t, c, article("rb-1", "runbook", "Disk full", "Delete old logs."))
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					wantError(t, do(t, rawRequest(t, c, http.MethodGet, tc.path, nil)), http.StatusBadRequest, tc.field)
				})
			}
			// One metadata key in both of its forms is given twice.
			resp := do(t, rawRequest(t, c, http.MethodGet, "/v1/search?meta.team=a&meta%5Bteam%5D=b", nil))
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(resp.body), "give it once") {
				t.Errorf("meta.team and meta[team]: status %d, %s; want a 400 saying to give the key once", resp.StatusCode, resp.body)
			}
			// A value that cannot be decoded is not quoted back: it may
			// be a token.
			resp = do(t, rawRequest(t, c, http.MethodGet, "/v1/changes?after=0&token=khub_secret%", nil))
			if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(resp.body), "khub_secret") {
				t.Errorf("undecodable token parameter: status %d, %s; want a 400 without the value", resp.StatusCode, resp.body)
			}
			// The dashboard's page still loads with a query it cannot
			// decode, such as a tracking parameter.
			if resp := do(t, mustRequest(t, http.MethodGet, c, "/?utm=50%", nil, "")); resp.StatusCode != http.StatusOK {
				t.Errorf("dashboard with an undecodable query: status %d, want 200", resp.StatusCode)
			}

			// Tabs and line breaks separate terms like spaces.
			var res client.SearchResult
			getJSON(t, c, "/v1/search?q=disk%09full%0Alogs", &res)
			if len(res.Hits) != 1 {
				t.Errorf("search with a tab and a line break found %d hits, want 1", len(res.Hits))
			}
		})
	}
}

// TestUnmatchedRoutesReturnJSONErrors checks that the mux's own 404 and 405
// responses use the API's error format.
func TestUnmatchedRoutesReturnJSONErrors(t *testing.T) {
	_, c := startHub(t)
	resp := do(t, rawRequest(t, c, http.MethodGet, "/v1/nothing-here", nil))
	e := wantError(t, resp, http.StatusNotFound, "")
	if e.Code != "not_found" {
		t.Errorf("404 code = %q, want not_found", e.Code)
	}
	if !strings.Contains(e.Message, "/v1/nothing-here") {
		t.Errorf("404 message %q does not name the path", e.Message)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("404 Content-Type = %q, want application/json", ct)
	}

	resp = do(t, rawRequest(t, c, http.MethodPost, "/v1/search", strings.NewReader("{}")))
	e = wantError(t, resp, http.StatusMethodNotAllowed, "")
	if e.Code != "method_not_allowed" {
		t.Errorf("405 code = %q, want method_not_allowed", e.Code)
	}
	if !strings.Contains(e.Message, "GET") {
		t.Errorf("405 message %q does not name the allowed method GET", e.Message)
	}
	if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "GET") {
		t.Errorf("405 Allow = %q, want GET listed", allow)
	}
	wantError(t, do(t, rawRequest(t, c, http.MethodDelete, "/v1/changes", nil)), http.StatusMethodNotAllowed, "")

	// A handler's own 404 keeps its message.
	resp = do(t, rawRequest(t, c, http.MethodGet, "/v1/articles/missing", nil))
	if e := wantError(t, resp, http.StatusNotFound, ""); !strings.Contains(e.Message, `"missing"`) {
		t.Errorf("article 404 message = %q, want it to name the article", e.Message)
	}
}

// TestUpperCaseTagsMatch checks that tags in search filters and integration
// scopes are lower-cased like the tags of articles.
func TestUpperCaseTagsMatch(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	a := article("pki-rotate", "runbook", "Rotate the CA", "Rotate yearly.")
	a.Tags = []string{"PKI"}
	put(t, c, a)

	for _, tags := range [][]string{{"PKI"}, {"pki"}, {" Pki "}} {
		res, err := c.Search(ctx, "", client.SearchOptions{Tags: tags})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) != 1 {
			t.Errorf("search with tag %q found %d hits, want 1", tags, len(res.Hits))
		}
	}

	in, err := c.CreateIntegration(ctx, client.IntegrationRequest{Name: "pki-desk", Freshness: "15m", Lookups: true,
		Scope: client.Scope{Classes: []string{"runbook"}, Tags: []string{"PKI", "pki"}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := in.Scope.Tags; len(got) != 1 || got[0] != "pki" {
		t.Errorf("stored scope tags = %q, want [pki]", got)
	}
	pc := client.New(c.BaseURL(), in.Token)
	if _, err := pc.GetArticle(ctx, "pki-rotate"); err != nil {
		t.Errorf("integration scoped to tag PKI cannot read the article tagged PKI: %v", err)
	}
}

// TestStrictJSONBodies checks the request bodies that encoding/json would
// accept silently: invalid UTF-8, lone surrogates, keys that differ in case
// from the field names, duplicate keys, foreign media types, compressed
// bodies and null; and a leading byte order mark, which is skipped.
func TestStrictJSONBodies(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	const fields = `"collection":"c","class":"runbook"`
	putBody := func(id, body, contentType string) response {
		req := rawRequest(t, c, http.MethodPut, "/v1/articles/"+id, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		return do(t, req)
	}

	t.Run("invalid UTF-8", func(t *testing.T) {
		e := wantError(t, putBody("u1", `{"title":"bad `+"\xff"+` byte","body":"b",`+fields+`}`, ""), http.StatusBadRequest, "")
		if !strings.Contains(e.Message, "UTF-8") {
			t.Errorf("message %q does not name UTF-8", e.Message)
		}
		if !strings.Contains(e.Message, "byte 14") {
			t.Errorf("message %q does not give the offset 14", e.Message)
		}
	})
	t.Run("lone surrogates", func(t *testing.T) {
		for _, esc := range []string{`\ud800`, `\udc00`, `\ud800x`, `\ud800\u0041`, `\uDBFF\uDBFF`} {
			e := wantError(t, putBody("u2", `{"title":"t`+esc+`","body":"b",`+fields+`}`, ""), http.StatusBadRequest, "")
			if !strings.Contains(e.Message, "surrogate") {
				t.Errorf("%s: message %q does not explain the surrogate", esc, e.Message)
			}
		}
	})
	t.Run("surrogate pairs and escaped backslashes pass", func(t *testing.T) {
		resp := putBody("u3", `{"title":"smile \ud83d\ude00","body":"a literal \\ud800 and \ufffd",`+fields+`}`, "")
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("status = %d, want 201: %s", resp.StatusCode, resp.body)
		}
		a, err := c.GetArticle(ctx, "u3")
		if err != nil {
			t.Fatal(err)
		}
		if a.Title != "smile 😀" {
			t.Errorf("stored title %q, want the decoded surrogate pair", a.Title)
		}
		if want := `a literal \ud800 and ` + "\uFFFD"; a.Body != want {
			t.Errorf("stored body %q, want %q", a.Body, want)
		}
	})
	t.Run("key differs in case", func(t *testing.T) {
		e := wantError(t, putBody("u4", `{"Title":"t","body":"b",`+fields+`}`, ""), http.StatusBadRequest, "Title")
		if !strings.Contains(e.Message, `"title"`) {
			t.Errorf("message %q does not give the right spelling", e.Message)
		}
		req := rawRequest(t, c, http.MethodPost, "/v1/integrations", strings.NewReader(`{"name":"x","freshness":"15m","lookups":true,"scope":{"Classes":["runbook"]}}`))
		wantError(t, do(t, req), http.StatusBadRequest, "scope.Classes")
	})
	t.Run("duplicate keys", func(t *testing.T) {
		wantError(t, putBody("u5", `{"title":"a","title":"b","body":"b",`+fields+`}`, ""), http.StatusBadRequest, "title")
		wantError(t, putBody("u5", `{"title":"a","body":"b",`+fields+`,"metadata":{"k":"1","k":"2"}}`, ""), http.StatusBadRequest, "metadata.k")
	})
	t.Run("media types", func(t *testing.T) {
		for _, ct := range []string{"application/jsonx", "application/json-patch+json", "text/json", "application/json; charset=latin1", "application/json; =bad"} {
			wantError(t, putBody("u6", `{"title":"t","body":"b",`+fields+`}`, ct), http.StatusUnsupportedMediaType, "Content-Type")
		}
		for i, ct := range []string{"Application/JSON; charset=UTF-8", "application/json;charset=utf-8"} {
			resp := putBody(fmt.Sprintf("u7-%d", i), `{"title":"t","body":"b",`+fields+`}`, ct)
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("Content-Type %q: status = %d, want 201: %s", ct, resp.StatusCode, resp.body)
			}
		}
	})
	t.Run("compressed body", func(t *testing.T) {
		req := rawRequest(t, c, http.MethodPut, "/v1/articles/u8", strings.NewReader(`{"title":"t","body":"b",`+fields+`}`))
		req.Header.Set("Content-Encoding", "gzip")
		if e := wantError(t, do(t, req), http.StatusUnsupportedMediaType, "Content-Encoding"); !strings.Contains(e.Message, "uncompressed") {
			t.Errorf("message %q does not say to send the body uncompressed", e.Message)
		}
		// Every header line and list entry counts.
		for _, lines := range [][]string{{"identity", "gzip"}, {"", "br"}, {"identity, deflate"}} {
			req := rawRequest(t, c, http.MethodPut, "/v1/articles/u8", strings.NewReader(`{"title":"t","body":"b",`+fields+`}`))
			req.Header["Content-Encoding"] = lines
			wantError(t, do(t, req), http.StatusUnsupportedMediaType, "Content-Encoding")
		}
	})
	t.Run("null body", func(t *testing.T) {
		e := wantError(t, putBody("u9", " null\n", ""), http.StatusBadRequest, "")
		if !strings.Contains(e.Message, "JSON object") {
			t.Errorf("message %q does not ask for an object", e.Message)
		}
		req := rawRequest(t, c, http.MethodPost, "/v1/lookup", strings.NewReader("null"))
		wantError(t, do(t, req), http.StatusBadRequest, "")
	})
	t.Run("null in a map or a list", func(t *testing.T) {
		wantError(t, putBody("u11", `{"title":"t","body":"b",`+fields+`,"metadata":{"a":null}}`, ""), http.StatusBadRequest, "metadata.a")
		wantError(t, putBody("u11", `{"title":"t","body":"b",`+fields+`,"tags":["ok",null]}`, ""), http.StatusBadRequest, "tags[1]")
		// null for a whole optional field still means none.
		if resp := putBody("u12", `{"title":"t","body":"b",`+fields+`,"tags":null,"metadata":null}`, ""); resp.StatusCode != http.StatusCreated {
			t.Errorf("null tags and metadata: status = %d, want 201: %s", resp.StatusCode, resp.body)
		}
	})
	t.Run("byte order mark", func(t *testing.T) {
		resp := putBody("u10", "\uFEFF"+`{"title":"t","body":"b",`+fields+`}`, "")
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("body after a byte order mark: status = %d, want 201: %s", resp.StatusCode, resp.body)
		}
	})
	t.Run("nothing rejected was stored", func(t *testing.T) {
		for _, id := range []string{"u1", "u2", "u4", "u5", "u6", "u8", "u9", "u11"} {
			if _, err := c.GetArticle(ctx, id); !client.IsNotFound(err) {
				t.Errorf("rejected article %s: err = %v, want 404", id, err)
			}
		}
	})
}

// TestEscapedBodyFitsRequestLimit checks that a body at its 1 MiB limit fits
// in a request even when every character is a six-byte JSON escape, and
// that the field limit still applies to the decoded text.
func TestEscapedBodyFitsRequestLimit(t *testing.T) {
	_, c := startHub(t)
	escaped := strings.Repeat(`\u0001`, 1<<20)
	body := `{"title":"escapes","collection":"c","class":"runbook","body":"` + escaped + `"}`
	resp := do(t, rawRequest(t, c, http.MethodPut, "/v1/articles/esc", strings.NewReader(body)))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("1 MiB of escapes: status = %d, want 201: %.300s", resp.StatusCode, resp.body)
	}
	a, err := c.GetArticle(context.Background(), "esc")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Body) != 1<<20 {
		t.Errorf("stored body is %d bytes, want %d", len(a.Body), 1<<20)
	}

	over := `{"title":"escapes","collection":"c","class":"runbook","body":"` + escaped + `\u0001"}`
	wantError(t, do(t, rawRequest(t, c, http.MethodPut, "/v1/articles/esc2", strings.NewReader(over))), http.StatusBadRequest, "body")

	huge := `{"title":"t","collection":"c","class":"runbook","body":"` + strings.Repeat("a", 9<<20) + `"}`
	e := wantError(t, do(t, rawRequest(t, c, http.MethodPut, "/v1/articles/esc3", strings.NewReader(huge))), http.StatusRequestEntityTooLarge, "")
	if !strings.Contains(e.Message, "8388608 bytes") {
		t.Errorf("413 message %q does not name the request limit", e.Message)
	}
	if !strings.Contains(e.Message, "1 MiB") {
		t.Errorf("413 message %q does not name the article body limit", e.Message)
	}

	// The 413 of a body that is not an article does not mention
	// article bodies.
	e = wantError(t, do(t, rawRequest(t, c, http.MethodPost, "/v1/integrations", strings.NewReader(huge))), http.StatusRequestEntityTooLarge, "")
	if strings.Contains(e.Message, "article") {
		t.Errorf("413 of an integration %q speaks of article bodies", e.Message)
	}

	// A client that waits for 100 Continue before a body over the limit
	// gets the 413 without sending it.
	sent := &countingReader{r: strings.NewReader(huge)}
	req := rawRequest(t, c, http.MethodPut, "/v1/articles/esc4", sent)
	req.ContentLength = int64(len(huge))
	req.Header.Set("Expect", "100-continue")
	hc := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	hr, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	hr.Body.Close()
	if hr.StatusCode != http.StatusRequestEntityTooLarge || sent.n > 0 {
		t.Errorf("Expect: 100-continue with %d bytes: status %d after %d bytes sent, want 413 before any", len(huge), hr.StatusCode, sent.n)
	}
}

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestIfMatchLists checks If-Match against RFC 9110. Any listed strong tag
// may match, on one header line or several, and "*" needs an existing
// article. Weak and non-canonical tags never match.
func TestIfMatchLists(t *testing.T) {
	_, c := startHub(t)
	a := article("pol-1", "policy", "Travel", "Economy.")
	put(t, c, a)
	a.Body = "Economy or rail."
	put(t, c, a) // version 2

	n := 0
	send := func(method string, ifMatch ...string) response {
		n++
		var req = rawRequest(t, c, method, "/v1/articles/pol-1", nil)
		if method == http.MethodPut {
			body := fmt.Sprintf(`{"title":"Travel","body":"Edit %d.","collection":"handbook","class":"policy"}`, n)
			req = rawRequest(t, c, method, "/v1/articles/pol-1", strings.NewReader(body))
		}
		for _, h := range ifMatch {
			req.Header.Add("If-Match", h)
		}
		return do(t, req)
	}
	wantStatus := func(resp response, status int, etag string) {
		t.Helper()
		if resp.StatusCode != status {
			t.Fatalf("status = %d, want %d: %s", resp.StatusCode, status, resp.body)
		}
		if etag != "" && resp.Header.Get("ETag") != etag {
			t.Errorf("ETag = %q, want %q", resp.Header.Get("ETag"), etag)
		}
	}

	wantStatus(send(http.MethodPut, `"v1", "v2"`), http.StatusOK, `"v3"`)
	wantStatus(send(http.MethodPut, `"v1", "v2"`), http.StatusPreconditionFailed, "")
	wantStatus(send(http.MethodPut, `"v03"`), http.StatusPreconditionFailed, "")
	wantStatus(send(http.MethodPut, `"v+3"`), http.StatusPreconditionFailed, "")
	wantStatus(send(http.MethodPut, `W/"v3"`), http.StatusPreconditionFailed, "")
	wantStatus(send(http.MethodPut, `"v9"`, `"v3"`), http.StatusOK, `"v4"`)
	wantStatus(send(http.MethodPut, `"x,y", "v4"`), http.StatusOK, `"v5"`)
	wantStatus(send(http.MethodPut, `*`), http.StatusOK, `"v6"`)

	req := rawRequest(t, c, http.MethodPut, "/v1/articles/pol-new", strings.NewReader(`{"title":"t","body":"b","collection":"handbook","class":"policy"}`))
	req.Header.Set("If-Match", "*")
	wantStatus(do(t, req), http.StatusPreconditionFailed, "")

	get := rawRequest(t, c, http.MethodGet, "/v1/articles/pol-1", nil)
	get.Header.Set("If-None-Match", `"v06"`)
	wantStatus(do(t, get), http.StatusOK, `"v6"`)
	get.Header.Set("If-None-Match", `"v1", W/"v6"`)
	wantStatus(do(t, get), http.StatusNotModified, `"v6"`)

	wantStatus(send(http.MethodDelete, `"v5", "v6"`), http.StatusOK, `"v7"`)
}
