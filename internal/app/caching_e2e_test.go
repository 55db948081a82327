package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// getWith sends a GET with the token of c and the given headers, given as
// name and value pairs.
func getWith(t *testing.T, c *client.Client, path string, header ...string) response {
	t.Helper()
	req := mustRequest(t, http.MethodGet, c, path, nil, "token")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return do(t, req)
}

// wantNotModified checks that resp is a 304 with the caching headers of a
// 200 and no body.
func wantNotModified(t *testing.T, resp response, etag, cacheControl string) {
	t.Helper()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("status = %d, want 304: %s", resp.StatusCode, resp.body)
	}
	if got := resp.Header.Get("ETag"); got != etag {
		t.Errorf("ETag on 304 = %q, want %q", got, etag)
	}
	if got := resp.Header.Get("Cache-Control"); got != cacheControl {
		t.Errorf("Cache-Control on 304 = %q, want %q", got, cacheControl)
	}
	if got := resp.Header.Get("Vary"); got != "Authorization" {
		t.Errorf("Vary on 304 = %q, want Authorization", got)
	}
	if len(resp.body) != 0 {
		t.Errorf("304 has a body of %d bytes: %q", len(resp.body), resp.body)
	}
}

func wantStatusOK(t *testing.T, resp response) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200: %s", resp.StatusCode, resp.body)
	}
}

func TestSearchETagFollowsChangeLog(t *testing.T) {
	_, c := startHub(t)
	put(t, c, article("rb-db", "runbook", "Database failover", "Promote the replica."))
	put(t, c, article("rb-dns", "runbook", "DNS failover", "Move the records."))
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	const path = "/v1/search?q=failover&class=runbook"

	first := getWith(t, pc, path)
	wantStatusOK(t, first)
	tag := first.Header.Get("ETag")
	if !strings.HasPrefix(tag, `"r`) || !strings.HasSuffix(tag, `"`) {
		t.Fatalf("search ETag = %q, want a strong tag such as \"r2-...\"", tag)
	}
	second := getWith(t, pc, path)
	wantStatusOK(t, second)
	if got := second.Header.Get("ETag"); got != tag {
		t.Errorf("ETag of the same search at the same log position = %q, want %q", got, tag)
	}
	if string(second.body) != string(first.body) {
		t.Errorf("same ETag %s on different bodies:\n%s\n%s", tag, first.body, second.body)
	}
	if got := getWith(t, pc, "/v1/search?q=failover").Header.Get("ETag"); got == tag {
		t.Errorf("another query got the same ETag %s", got)
	}
	if got := getWith(t, c, path).Header.Get("ETag"); got == tag {
		t.Errorf("the admin token got the pull token's ETag %s", got)
	}
	other := createPull(t, c, "chat", client.Scope{Classes: []string{"runbook"}})
	if got := getWith(t, other, path).Header.Get("ETag"); got == tag {
		t.Errorf("another integration got the same ETag %s", got)
	}

	// A commit changes the tag even when it leaves the hits alone.
	put(t, c, article("pol-db", "policy", "Database policy", "Only DBAs touch the failover."))
	after := getWith(t, pc, path)
	wantStatusOK(t, after)
	if got := after.Header.Get("ETag"); got == tag || got == "" {
		t.Errorf("ETag after a commit = %q, want a new tag, not %q", got, tag)
	}
	wantStatusOK(t, getWith(t, pc, path, "If-None-Match", tag))
}

func TestSearchIfNoneMatch(t *testing.T) {
	_, c := startHub(t)
	put(t, c, article("rb-db", "runbook", "Database failover", "Promote the replica."))
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	const path = "/v1/search?q=failover"

	resp := getWith(t, pc, path)
	wantStatusOK(t, resp)
	tag := resp.Header.Get("ETag")
	wantNotModified(t, getWith(t, pc, path, "If-None-Match", tag), tag, "private, max-age=300")
	wantNotModified(t, getWith(t, pc, path, "If-None-Match", `"x", W/`+tag), tag, "private, max-age=300")
	wantNotModified(t, getWith(t, pc, path, "If-None-Match", "*"), tag, "private, max-age=300")
	wantStatusOK(t, getWith(t, pc, path, "If-None-Match", `"r1-AAAAAAAAAAAAAAAA"`))

	put(t, c, article("rb-db", "runbook", "Database failover", "Promote the replica, then check lag."))
	changed := getWith(t, pc, path, "If-None-Match", tag)
	wantStatusOK(t, changed)
	if !strings.Contains(string(changed.body), `"version":2`) {
		t.Errorf("search after the update = %s, want the hit at version 2", changed.body)
	}
}

func TestArticleIfNoneMatch(t *testing.T) {
	_, c := startHub(t)
	put(t, c, article("rb-db", "runbook", "Database failover", "Promote the replica."))
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	const path = "/v1/articles/rb-db"

	resp := getWith(t, pc, path)
	wantStatusOK(t, resp)
	if got := resp.Header.Get("ETag"); got != `"v1"` {
		t.Fatalf("ETag = %q, want \"v1\"", got)
	}
	for _, inm := range []string{`"v1"`, `W/"v1"`, `"v9", "v1"`, "*"} {
		wantNotModified(t, getWith(t, pc, path, "If-None-Match", inm), `"v1"`, "private, max-age=300")
	}
	wantNotModified(t, getWith(t, c, path, "If-None-Match", `"v1"`), `"v1"`, "private, no-cache")
	for _, inm := range []string{`"v2"`, `"v01"`, `v1`} {
		resp := getWith(t, pc, path, "If-None-Match", inm)
		wantStatusOK(t, resp)
		var got client.Article
		if err := json.Unmarshal(resp.body, &got); err != nil || got.Body != "Promote the replica." || resp.Header.Get("ETag") != `"v1"` {
			t.Errorf("GET with If-None-Match %s = ETag %q, body %s; want the whole article at \"v1\"", inm, resp.Header.Get("ETag"), resp.body)
		}
	}

	// A tag that would match never reveals an article outside the scope,
	// nor one that does not exist.
	put(t, c, article("pol-db", "policy", "Database access", "Ask the owner."))
	for _, p := range []string{"/v1/articles/pol-db", "/v1/articles/missing"} {
		for _, inm := range []string{`"v1"`, "*"} {
			wantError(t, getWith(t, pc, p, "If-None-Match", inm), http.StatusNotFound, "")
		}
	}

	// Each version of the article has its own tag, also under its own URL.
	put(t, c, article("rb-db", "runbook", "Database failover", "Promote the replica, then check lag."))
	resp = getWith(t, pc, path, "If-None-Match", `"v1"`)
	wantStatusOK(t, resp)
	if got := resp.Header.Get("ETag"); got != `"v2"` {
		t.Errorf("ETag after the update = %q, want \"v2\"", got)
	}
	wantNotModified(t, getWith(t, pc, path+"/versions/1", "If-None-Match", `"v1"`), `"v1"`, "private, max-age=300")
	wantStatusOK(t, getWith(t, pc, path+"/versions/2", "If-None-Match", `"v1"`))
}

func TestArticleIfModifiedSince(t *testing.T) {
	a, c := startHub(t)
	ctx := context.Background()
	base := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	save := func(body string, at time.Time) {
		t.Helper()
		in := knowledge.Article{ID: "rb-db", Title: "Database failover", Body: body, Collection: "handbook", Class: "runbook"}
		if _, err := a.Hub.SaveArticle(ctx, in, store.SaveOptions{Now: at}); err != nil {
			t.Fatalf("save at %s: %v", at, err)
		}
	}
	save("Promote the replica.", base.Add(200*time.Millisecond))
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	const path = "/v1/articles/rb-db"

	resp := getWith(t, pc, path)
	wantStatusOK(t, resp)
	lastModified := resp.Header.Get("Last-Modified")
	if lastModified != "Tue, 04 Mar 2025 10:00:00 GMT" {
		t.Fatalf("Last-Modified = %q, want the version's second, Tue, 04 Mar 2025 10:00:00 GMT", lastModified)
	}
	wantNotModified(t, getWith(t, pc, path, "If-Modified-Since", lastModified), `"v1"`, "private, max-age=300")
	wantNotModified(t, getWith(t, pc, path, "If-Modified-Since", "Tue, 04 Mar 2025 11:00:00 GMT"), `"v1"`, "private, max-age=300")
	wantStatusOK(t, getWith(t, pc, path, "If-Modified-Since", "Tue, 04 Mar 2025 09:59:59 GMT"))
	wantStatusOK(t, getWith(t, pc, path, "If-Modified-Since", "yesterday"))

	// If-None-Match takes precedence over If-Modified-Since.
	wantStatusOK(t, getWith(t, pc, path, "If-None-Match", `"v0"`, "If-Modified-Since", lastModified))
	wantNotModified(t, getWith(t, pc, path, "If-None-Match", `"v1"`, "If-Modified-Since", "Tue, 04 Mar 2025 09:00:00 GMT"), `"v1"`, "private, max-age=300")

	// A version written in the same second as the one before has the same
	// date, so the date no longer validates.
	save("Promote the replica, then check lag.", base.Add(700*time.Millisecond))
	resp = getWith(t, pc, path, "If-Modified-Since", lastModified)
	wantStatusOK(t, resp)
	if got := resp.Header.Get("ETag"); got != `"v2"` {
		t.Errorf("ETag = %q, want \"v2\"", got)
	}
	if got := resp.Header.Get("Last-Modified"); got != "" {
		t.Errorf("Last-Modified of a version that shares its second with the previous one = %q, want none", got)
	}

	// An update in a later second gives a later date.
	save("Promote the replica, check lag, then tell the on-call.", base.Add(5*time.Second))
	resp = getWith(t, pc, path, "If-Modified-Since", lastModified)
	wantStatusOK(t, resp)
	if got := resp.Header.Get("Last-Modified"); got != "Tue, 04 Mar 2025 10:00:05 GMT" {
		t.Fatalf("Last-Modified after the update = %q, want Tue, 04 Mar 2025 10:00:05 GMT", got)
	}
	wantNotModified(t, getWith(t, pc, path, "If-Modified-Since", "Tue, 04 Mar 2025 10:00:05 GMT"), `"v3"`, "private, max-age=300")
}

func TestCacheControlByToken(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	put(t, c, article("rb-db", "runbook", "Database failover", "Promote the replica."))
	scope := client.Scope{Classes: []string{"runbook"}}
	pullWith := func(name, window string) *client.Client {
		t.Helper()
		in, err := c.CreateIntegration(ctx, client.IntegrationRequest{Name: name, Freshness: window, Lookups: true, Scope: scope})
		if err != nil {
			t.Fatalf("create integration with window %s: %v", window, err)
		}
		return client.New(c.BaseURL(), in.Token)
	}
	cases := []struct {
		name   string
		caller *client.Client
		want   string
	}{
		{"admin", c, "private, no-cache"},
		{"window 24h", pullWith("long", "24h"), "private, max-age=300"},
		{"window 15m", pullWith("medium", "15m"), "private, max-age=300"},
		{"window 1m", pullWith("short", "1m"), "private, max-age=30"},
		{"window 1s", pullWith("instant", "1s"), "private, no-cache"},
	}
	paths := []string{"/v1/articles/rb-db", "/v1/articles/rb-db/versions", "/v1/articles/rb-db/versions/1", "/v1/search?q=replica"}
	for _, tc := range cases {
		for _, path := range paths {
			resp := getWith(t, tc.caller, path)
			wantStatusOK(t, resp)
			if got := resp.Header.Get("Cache-Control"); got != tc.want {
				t.Errorf("%s: GET %s Cache-Control = %q, want %q", tc.name, path, got, tc.want)
			}
			if got := resp.Header.Get("Vary"); got != "Authorization" {
				t.Errorf("%s: GET %s Vary = %q, want Authorization", tc.name, path, got)
			}
			if resp.Header.Get("ETag") == "" {
				t.Errorf("%s: GET %s has no ETag", tc.name, path)
			}
		}
	}

	errs := []struct {
		name string
		resp response
	}{
		{"out of scope", getWith(t, cases[1].caller, "/v1/articles/missing")},
		{"no token", do(t, mustRequest(t, http.MethodGet, c, "/v1/articles/rb-db", nil, ""))},
		{"bad query", getWith(t, c, "/v1/search?q=x&limit=0")},
		{"no route", getWith(t, c, "/v1/nothing")},
	}
	for _, e := range errs {
		if e.resp.StatusCode < 400 {
			t.Errorf("%s: status = %d, want an error", e.name, e.resp.StatusCode)
		}
		if got := e.resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s: Cache-Control = %q, want no-store", e.name, got)
		}
	}
}

func TestVersionListETagByScope(t *testing.T) {
	_, c := startHub(t)
	// Version 1 is a policy, outside the pull scope, and version 2 a runbook.
	put(t, c, article("doc", "policy", "Access", "Policy text."))
	put(t, c, article("doc", "runbook", "Access", "Runbook text."))
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	const path = "/v1/articles/doc/versions"

	admin := getWith(t, c, path)
	pull := getWith(t, pc, path)
	wantStatusOK(t, admin)
	wantStatusOK(t, pull)
	tag := pull.Header.Get("ETag")
	if tag == admin.Header.Get("ETag") {
		t.Errorf("the admin and the pull token, who see different versions, got one ETag %s", tag)
	}
	wantNotModified(t, getWith(t, pc, path, "If-None-Match", tag), tag, "private, max-age=300")

	put(t, c, article("doc", "runbook", "Access", "Runbook text, revised."))
	resp := getWith(t, pc, path, "If-None-Match", tag)
	wantStatusOK(t, resp)
	if resp.Header.Get("ETag") == tag {
		t.Errorf("ETag of the version list did not change with a new version: %s", tag)
	}
}

func TestArticleETagFollowsReview(t *testing.T) {
	a, c := startHub(t)
	ctx := context.Background()
	now := time.Now().UTC()
	save := func(id string, at time.Time) {
		t.Helper()
		in := knowledge.Article{ID: id, Title: "Database failover", Body: "Promote the replica.", Collection: "handbook", Class: "runbook", ReviewEvery: 24 * time.Hour}
		if _, err := a.Hub.SaveArticle(ctx, in, store.SaveOptions{Now: at}); err != nil {
			t.Fatalf("save %s at %s: %v", id, at, err)
		}
	}
	// rb-overdue fell due an hour ago; rb-due-soon falls due in 100 seconds.
	save("rb-overdue", now.Add(-25*time.Hour))
	save("rb-due-soon", now.Add(-24*time.Hour+100*time.Second))
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})

	resp := getWith(t, pc, "/v1/articles/rb-overdue")
	wantStatusOK(t, resp)
	if got := resp.Header.Get("ETag"); got != `"v1-overdue"` {
		t.Errorf("ETag of an overdue article = %q, want \"v1-overdue\"", got)
	}
	if !strings.Contains(string(resp.body), `"review_overdue":true`) {
		t.Errorf("body of an overdue article = %s, want review_overdue true", resp.body)
	}
	due := now.Add(-time.Hour).Truncate(time.Second).Format(http.TimeFormat)
	if got := resp.Header.Get("Last-Modified"); got != due {
		t.Errorf("Last-Modified of an overdue article = %q, want the due time %q", got, due)
	}
	wantStatusOK(t, getWith(t, pc, "/v1/articles/rb-overdue", "If-None-Match", `"v1"`))
	wantNotModified(t, getWith(t, pc, "/v1/articles/rb-overdue", "If-None-Match", `"v1-overdue"`), `"v1-overdue"`, "private, max-age=300")
	wantStatusOK(t, getWith(t, pc, "/v1/articles/rb-overdue", "If-Modified-Since", now.Add(-25*time.Hour).Format(http.TimeFormat)))

	// A stored version has no review state, so it keeps the window's
	// max-age even when its review falls due sooner.
	resp = getWith(t, pc, "/v1/articles/rb-due-soon/versions/1")
	wantStatusOK(t, resp)
	if got := resp.Header.Get("Cache-Control"); got != "private, max-age=300" {
		t.Errorf("Cache-Control of a stored version = %q, want private, max-age=300", got)
	}

	// Writes accept the review-state tag as naming its version.
	req := rawRequest(t, c, http.MethodPut, "/v1/articles/rb-due-soon", strings.NewReader(`{"title":"Database failover","body":"Reviewed.","collection":"handbook","class":"runbook"}`))
	req.Header.Set("If-Match", `"v1-overdue"`)
	if resp := do(t, req); resp.StatusCode != http.StatusOK {
		t.Errorf("PUT with If-Match \"v1-overdue\" on version 1 = %d, want 200: %s", resp.StatusCode, resp.body)
	}
}

func TestArticleMaxAgeEndsAtReviewDue(t *testing.T) {
	a, c := startHub(t)
	now := time.Now().UTC()
	in := knowledge.Article{ID: "rb-db", Title: "Database failover", Body: "Promote the replica.", Collection: "handbook", Class: "runbook", ReviewEvery: 24 * time.Hour}
	if _, err := a.Hub.SaveArticle(context.Background(), in, store.SaveOptions{Now: now.Add(-24*time.Hour + 100*time.Second)}); err != nil {
		t.Fatal(err)
	}
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})

	resp := getWith(t, pc, "/v1/articles/rb-db")
	wantStatusOK(t, resp)
	if got := resp.Header.Get("ETag"); got != `"v1"` {
		t.Errorf("ETag before the review is due = %q, want \"v1\"", got)
	}
	var maxAge int
	if _, err := fmt.Sscanf(resp.Header.Get("Cache-Control"), "private, max-age=%d", &maxAge); err != nil || maxAge > 100 || maxAge < 90 {
		t.Errorf("Cache-Control 100 seconds before the review is due = %q, want max-age from 90 to 100", resp.Header.Get("Cache-Control"))
	}
}

func TestSearchMaxAgeEndsAtReviewDue(t *testing.T) {
	a, c := startHub(t)
	now := time.Now().UTC()
	in := knowledge.Article{ID: "rb-db", Title: "Database failover", Body: "Promote the replica.", Collection: "handbook", Class: "runbook", ReviewEvery: 24 * time.Hour}
	if _, err := a.Hub.SaveArticle(context.Background(), in, store.SaveOptions{Now: now.Add(-24*time.Hour + 100*time.Second)}); err != nil {
		t.Fatal(err)
	}
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})

	// The second search is served from the result cache and must be
	// capped the same way.
	for range 2 {
		resp := getWith(t, pc, "/v1/search?q=failover")
		wantStatusOK(t, resp)
		var maxAge int
		if _, err := fmt.Sscanf(resp.Header.Get("Cache-Control"), "private, max-age=%d", &maxAge); err != nil || maxAge > 100 || maxAge < 90 {
			t.Errorf("search Cache-Control 100 seconds before a hit's review is due = %q, want max-age from 90 to 100", resp.Header.Get("Cache-Control"))
		}
	}
}

func TestSearchETagFollowsReview(t *testing.T) {
	a, c := startHub(t)
	// The review of rb-db falls due two seconds after the first search.
	in := knowledge.Article{ID: "rb-db", Title: "Database failover", Body: "Promote the replica.", Collection: "handbook", Class: "runbook", ReviewEvery: 24 * time.Hour}
	due := time.Now().Add(2 * time.Second)
	if _, err := a.Hub.SaveArticle(context.Background(), in, store.SaveOptions{Now: due.Add(-24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	const path = "/v1/search?q=failover"

	before := getWith(t, pc, path)
	wantStatusOK(t, before)
	if strings.Contains(string(before.body), "review_overdue") {
		t.Fatalf("search before the due time = %s, want no overdue hit", before.body)
	}
	time.Sleep(time.Until(due) + 100*time.Millisecond)
	after := getWith(t, pc, path, "If-None-Match", before.Header.Get("ETag"))
	wantStatusOK(t, after)
	if !strings.Contains(string(after.body), `"review_overdue":true`) {
		t.Errorf("search after the due time = %s, want the hit overdue", after.body)
	}
	if got := after.Header.Get("ETag"); got == before.Header.Get("ETag") {
		t.Errorf("ETag %s did not change when the review fell due", got)
	}
	wantNotModified(t, getWith(t, pc, path, "If-None-Match", after.Header.Get("ETag")), after.Header.Get("ETag"), "private, max-age=300")
}

func TestFeedAndCursorNotCached(t *testing.T) {
	_, c := startHub(t)
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	for _, path := range []string{"/v1/changes?after=0", "/v1/cursor"} {
		resp := do(t, mustRequest(t, http.MethodGet, pc, path, nil, "token"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, resp.StatusCode, resp.body)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("GET %s Cache-Control = %q, want no-store", path, got)
		}
	}

	// A lookup is a POST, which no cache may keep, and carries no ETag.
	resp := do(t, mustRequest(t, http.MethodPost, c, "/v1/lookup", strings.NewReader(`{"text": "disk"}`), "token"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/lookup = %d %s", resp.StatusCode, resp.body)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("POST /v1/lookup Cache-Control = %q, want no-store", got)
	}
	if got := resp.Header.Get("ETag"); got != "" {
		t.Errorf("POST /v1/lookup ETag = %q, want none", got)
	}
}
