package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestPullMaxAge(t *testing.T) {
	cases := []struct {
		window time.Duration
		want   time.Duration
	}{
		{time.Second, 0},
		{1999 * time.Millisecond, 0},
		{3 * time.Second, time.Second},
		{time.Minute, 30 * time.Second},
		{10 * time.Minute, 5 * time.Minute},
		{24 * time.Hour, 5 * time.Minute},
	}
	for _, tc := range cases {
		if got := pullMaxAge(tc.window); got != tc.want {
			t.Errorf("pullMaxAge(%s) = %s, want %s", tc.window, got, tc.want)
		}
	}
}

func TestCacheControlValue(t *testing.T) {
	cases := map[time.Duration]string{
		0:                "private, no-cache",
		time.Second:      "private, max-age=1",
		5 * time.Minute:  "private, max-age=300",
		-1 * time.Second: "private, no-cache",
	}
	for maxAge, want := range cases {
		if got := cacheControl(maxAge); got != want {
			t.Errorf("cacheControl(%s) = %q, want %q", maxAge, got, want)
		}
	}
}

func TestNotModifiedConditions(t *testing.T) {
	modified := time.Date(2025, 3, 4, 10, 0, 0, 700_000_000, time.UTC)
	const tag = `"r7-abc"`
	cases := []struct {
		name   string
		method string
		header [][2]string
		want   bool
	}{
		{"no conditions", http.MethodGet, nil, false},
		{"matching tag", http.MethodGet, [][2]string{{"If-None-Match", tag}}, true},
		{"weak form of the tag", http.MethodGet, [][2]string{{"If-None-Match", `W/"r7-abc"`}}, true},
		{"tag on a second line", http.MethodGet, [][2]string{{"If-None-Match", `"x"`}, {"If-None-Match", tag}}, true},
		{"star", http.MethodGet, [][2]string{{"If-None-Match", "*"}}, true},
		{"other tag", http.MethodGet, [][2]string{{"If-None-Match", `"r8-abc"`}}, false},
		{"unquoted tag", http.MethodGet, [][2]string{{"If-None-Match", `r7-abc`}}, false},
		{"HEAD", http.MethodHead, [][2]string{{"If-None-Match", tag}}, true},
		{"POST", http.MethodPost, [][2]string{{"If-None-Match", tag}}, false},
		{"date of the same second", http.MethodGet, [][2]string{{"If-Modified-Since", "Tue, 04 Mar 2025 10:00:00 GMT"}}, true},
		{"later date", http.MethodGet, [][2]string{{"If-Modified-Since", "Tue, 04 Mar 2025 10:00:01 GMT"}}, true},
		{"earlier date", http.MethodGet, [][2]string{{"If-Modified-Since", "Tue, 04 Mar 2025 09:59:59 GMT"}}, false},
		{"RFC 850 date", http.MethodGet, [][2]string{{"If-Modified-Since", "Tuesday, 04-Mar-25 10:00:00 GMT"}}, true},
		{"invalid date", http.MethodGet, [][2]string{{"If-Modified-Since", "2025-03-04T10:00:00Z"}}, false},
		{"date sent twice", http.MethodGet, [][2]string{{"If-Modified-Since", "Tue, 04 Mar 2025 10:00:00 GMT"}, {"If-Modified-Since", "Tue, 04 Mar 2025 10:00:00 GMT"}}, false},
		{"tag mismatch overrides the date", http.MethodGet, [][2]string{{"If-None-Match", `"r8-abc"`}, {"If-Modified-Since", "Tue, 04 Mar 2025 11:00:00 GMT"}}, false},
		{"tag match overrides the date", http.MethodGet, [][2]string{{"If-None-Match", tag}, {"If-Modified-Since", "Tue, 04 Mar 2025 09:00:00 GMT"}}, true},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(tc.method, "/v1/search?q=x", nil)
		for _, h := range tc.header {
			r.Header.Add(h[0], h[1])
		}
		if got := notModified(r, tag, modified); got != tc.want {
			t.Errorf("%s: notModified = %v, want %v", tc.name, got, tc.want)
		}
	}

	r := httptest.NewRequest(http.MethodGet, "/v1/search?q=x", nil)
	r.Header.Set("If-Modified-Since", "Tue, 04 Mar 2025 11:00:00 GMT")
	if notModified(r, tag, time.Time{}) {
		t.Errorf("notModified without a Last-Modified time = true, want false")
	}
}

func TestWriteCachedNotModified(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/v1/articles/a", nil)
	r.Header.Set("If-None-Match", `"v3"`)
	w := httptest.NewRecorder()
	writeCached(w, r, `"v3"`, time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC), time.Minute, map[string]string{"id": "a"})
	if w.Code != http.StatusNotModified {
		t.Fatalf("status = %d, want 304", w.Code)
	}
	want := map[string]string{"ETag": `"v3"`, "Cache-Control": "private, max-age=60", "Vary": "Authorization", "Content-Type": "", "Last-Modified": ""}
	for name, value := range want {
		if got := w.Header().Get(name); got != value {
			t.Errorf("304 header %s = %q, want %q", name, got, value)
		}
	}
	if w.Body.Len() != 0 {
		t.Errorf("304 body = %q, want none", w.Body.String())
	}
}

func TestResultETagCanonicalQuery(t *testing.T) {
	a := httptest.NewRequest(http.MethodGet, "/v1/search?q=db&class=runbook", nil)
	b := httptest.NewRequest(http.MethodGet, "/v1/search?class=runbook&q=db", nil)
	if ta, tb := resultETag(a, 5, ""), resultETag(b, 5, ""); ta != tb {
		t.Errorf("parameters in another order give %s and %s, want one tag", ta, tb)
	}
	if ta, tc := resultETag(a, 5, ""), resultETag(a, 6, ""); ta == tc {
		t.Errorf("positions 5 and 6 give one tag %s", ta)
	}
	if _, ok := entityTags(resultETag(a, 5, "")); !ok {
		t.Errorf("resultETag = %s, which is not an entity tag", resultETag(a, 5, ""))
	}
}
