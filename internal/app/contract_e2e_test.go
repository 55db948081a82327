package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
)

// errorOf decodes the error body of a 4xx response.
func errorOf(t *testing.T, resp response) client.ErrorDetail {
	t.Helper()
	var eb client.ErrorBody
	if err := json.Unmarshal(resp.body, &eb); err != nil {
		t.Fatalf("error body is not JSON: %s", resp.body)
	}
	return eb.Error
}

func TestVersionsHideOutOfScope(t *testing.T) {
	_, c := startHub(t)
	// v1 is a policy, v2 the same article reclassed as a runbook.
	put(t, c, article("doc", "policy", "Access", "Secret policy text."))
	put(t, c, article("doc", "runbook", "Access", "Runbook text."))
	// The other way round: v1 a runbook, v2 a policy.
	put(t, c, article("moved", "runbook", "Moved", "Runbook text."))
	put(t, c, article("moved", "policy", "Moved", "Policy text."))
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})

	resp := do(t, mustRequest(t, http.MethodGet, pc, "/v1/articles/doc/versions", nil, "token"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("versions = %d: %s", resp.StatusCode, resp.body)
	}
	var list client.VersionList
	if err := json.Unmarshal(resp.body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Versions) != 1 || list.Versions[0].Version != 2 {
		t.Errorf("pull token sees %d versions %+v, want only version 2", len(list.Versions), list.Versions)
	}
	if strings.Contains(string(resp.body), "Secret policy text") {
		t.Error("the out-of-scope version's body reached the pull token")
	}
	if resp := do(t, mustRequest(t, http.MethodGet, pc, "/v1/articles/doc/versions/1", nil, "token")); resp.StatusCode != http.StatusNotFound {
		t.Errorf("out-of-scope version 1 = %d, want 404", resp.StatusCode)
	}
	if resp := do(t, mustRequest(t, http.MethodGet, pc, "/v1/articles/doc/versions/2", nil, "token")); resp.StatusCode != http.StatusOK {
		t.Errorf("in-scope version 2 = %d, want 200", resp.StatusCode)
	}
	// The current version is out of scope, so the whole history is hidden.
	if resp := do(t, mustRequest(t, http.MethodGet, pc, "/v1/articles/moved/versions", nil, "token")); resp.StatusCode != http.StatusNotFound {
		t.Errorf("versions of an article now out of scope = %d, want 404", resp.StatusCode)
	}

	// The admin can read every version.
	var all client.VersionList
	getJSON(t, c, "/v1/articles/doc/versions", &all)
	if len(all.Versions) != 2 {
		t.Errorf("admin sees %d versions, want 2", len(all.Versions))
	}
}

func TestFailedDeliveryKeepsStaleness(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	rv := newReceiver(t)
	rv.status = http.StatusBadRequest
	in := createPush(t, c, rv, client.IntegrationRequest{Name: "board", Freshness: "1s", Scope: client.Scope{Classes: []string{"safety"}}})
	if in.Pattern != "push" {
		t.Fatalf("pattern = %s, want push", in.Pattern)
	}
	first := put(t, c, article("s1", "safety", "Forklift lanes", "Keep lanes clear."))

	eventually(t, "a failed delivery", func() bool {
		ds, err := c.Deliveries(ctx, in.ID, 10)
		return err == nil && len(ds) == 1 && ds[0].Outcome == "failed"
	})
	// The push cursor moved past the change, yet the tool never got it: it
	// stays stale and falls outside its 1s window.
	eventually(t, "staleness outside the window", func() bool {
		got, err := c.GetIntegration(ctx, in.ID)
		return err == nil && got.PushCursor >= 1 && got.Freshness.StalenessSeconds > 1 && !got.Freshness.WithinWindow
	})

	// A delivered change of another article does not make up for it.
	rv.mu.Lock()
	rv.status = 0
	rv.mu.Unlock()
	put(t, c, article("s2", "safety", "Ladders", "Check the feet."))
	rv.waitFor("the second article", func(evs []client.Event) bool { return len(evs) == 1 })
	got, err := c.GetIntegration(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Freshness.StalenessSeconds == 0 || got.Freshness.OldestPendingCursor != 1 {
		t.Errorf("after another article was delivered: staleness %vs at cursor %d, want the failed change (cursor 1) still pending",
			got.Freshness.StalenessSeconds, got.Freshness.OldestPendingCursor)
	}

	// A later version of the failed article reaches the tool, so it is
	// caught up.
	first.Body = "Keep lanes clear at all times."
	put(t, c, first)
	rv.waitFor("the new version", func(evs []client.Event) bool { return len(evs) == 2 })
	eventually(t, "staleness back to zero", func() bool {
		got, err := c.GetIntegration(ctx, in.ID)
		return err == nil && got.Freshness.StalenessSeconds == 0 && got.Freshness.WithinWindow
	})
}

func TestChangesAfterBeyondHead(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	put(t, c, article("rb", "runbook", "Runbook", "r"))
	pc := createPull(t, c, "feed", client.Scope{Classes: []string{"runbook"}})

	for _, who := range []*client.Client{c, pc} {
		_, err := who.Changes(ctx, 999999, 10, 0)
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Field != "after" {
			t.Fatalf("after beyond the head: err = %v, want 400 on field after", err)
		}
		if !strings.Contains(apiErr.Message, "999999") || !strings.Contains(apiErr.Message, "cursor 1") {
			t.Errorf("message %q does not give the value and the head cursor 1", apiErr.Message)
		}
	}
	in, err := c.ListIntegrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in[0].PullCursor != 0 {
		t.Errorf("pull cursor = %d after a rejected read, want 0", in[0].PullCursor)
	}

	// The head itself is a valid cursor: nothing new yet.
	page, err := pc.Changes(ctx, 1, 10, 0)
	if err != nil || len(page.Changes) != 0 || page.Next != 1 {
		t.Errorf("after=head: %+v %v, want an empty page with next 1", page, err)
	}
}

func TestPullStalenessWithoutFeed(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	put(t, c, article("rb", "runbook", "Runbook", "r"))
	time.Sleep(20 * time.Millisecond)

	poller, err := c.CreateIntegration(ctx, client.IntegrationRequest{Name: "poller", Freshness: "15m", PollInterval: "1m",
		Scope: client.Scope{Classes: []string{"runbook"}}})
	if err != nil {
		t.Fatal(err)
	}
	if poller.Pattern != "pull" || poller.Lookups {
		t.Fatalf("pattern %s lookups %v, want pull without lookups", poller.Pattern, poller.Lookups)
	}
	// It has never read the feed, so it has received nothing.
	if poller.Freshness.StalenessSeconds <= 0 || poller.Freshness.OldestPendingCursor != 1 {
		t.Errorf("pull tool that never read the feed: staleness %vs at cursor %d, want > 0 at cursor 1",
			poller.Freshness.StalenessSeconds, poller.Freshness.OldestPendingCursor)
	}

	// A tool that looks knowledge up at query time is fresh without the feed.
	createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	all, err := c.ListIntegrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range all {
		if in.Name == "helpdesk" && in.Freshness.StalenessSeconds != 0 {
			t.Errorf("lookup tool: staleness %vs, want 0", in.Freshness.StalenessSeconds)
		}
	}

	// Reading the feed catches the poller up.
	pc := client.New(c.BaseURL(), poller.Token)
	if _, err := pc.Changes(ctx, 0, 10, 0); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetIntegration(ctx, poller.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Freshness.StalenessSeconds != 0 {
		t.Errorf("after reading the feed: staleness %vs, want 0", got.Freshness.StalenessSeconds)
	}
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	_, c := startHub(t)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		req := rawRequest(t, c, http.MethodGet, "/v1/integrations", nil)
		req.Header.Set("Authorization", scheme+" "+c.Token())
		if resp := do(t, req); resp.StatusCode != http.StatusOK {
			t.Errorf("scheme %q: status %d, want 200", scheme, resp.StatusCode)
		}
	}
	for _, h := range []string{"Basic " + c.Token(), "Bearer", "Bearer ", c.Token()} {
		req := rawRequest(t, c, http.MethodGet, "/v1/integrations", nil)
		req.Header.Set("Authorization", h)
		if resp := do(t, req); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d, want 401", h, resp.StatusCode)
		}
	}
}

func TestPutIfNoneMatchCreatesOnly(t *testing.T) {
	_, c := startHub(t)
	body := `{"title":"Passwords","body":"Use 14 characters.","collection":"handbook","class":"policy"}`
	send := func(b string) response {
		req := rawRequest(t, c, http.MethodPut, "/v1/articles/pw", strings.NewReader(b))
		req.Header.Set("If-None-Match", "*")
		return do(t, req)
	}

	resp := send(body)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Khub-Change") != client.OutcomeCreated {
		t.Fatalf("create-only PUT of a new article = %d %q: %s", resp.StatusCode, resp.Header.Get("Khub-Change"), resp.body)
	}
	resp = send(strings.Replace(body, "14", "16", 1))
	if resp.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("create-only PUT of an existing article = %d, want 412: %s", resp.StatusCode, resp.body)
	}
	if e := errorOf(t, resp); e.Field != "If-None-Match" || !strings.Contains(e.Message, "version 1") {
		t.Errorf("412 field %q message %q, want If-None-Match and the current version", e.Field, e.Message)
	}
	// Even the same content is refused: the article exists.
	if resp := send(body); resp.StatusCode != http.StatusPreconditionFailed {
		t.Errorf("create-only PUT of unchanged content = %d, want 412", resp.StatusCode)
	}
	cur, err := c.GetArticle(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version != 1 || cur.Body != "Use 14 characters." {
		t.Errorf("after refused writes: version %d body %q, want version 1 unchanged", cur.Version, cur.Body)
	}

	req := rawRequest(t, c, http.MethodPut, "/v1/articles/pw", strings.NewReader(body))
	req.Header.Set("If-None-Match", `"v1"`)
	if resp := do(t, req); resp.StatusCode != http.StatusBadRequest || errorOf(t, resp).Field != "If-None-Match" {
		t.Errorf("PUT with an ETag in If-None-Match = %d %s, want 400 on If-None-Match", resp.StatusCode, resp.body)
	}
}

func TestHybridPushesArticleBornDeprecated(t *testing.T) {
	_, c := startHub(t)
	rv := newReceiver(t)
	in := createPush(t, c, rv, client.IntegrationRequest{Name: "ops", Freshness: "10m"})
	if in.Pattern != "hybrid" {
		t.Fatalf("pattern = %s, want hybrid", in.Pattern)
	}
	put(t, c, article("rb-live", "runbook", "Live", "Not pushed."))
	old := article("rb-old", "runbook", "Old", "Use the new runbook.")
	old.Status = "deprecated"
	put(t, c, old)
	gone := article("rb-gone", "runbook", "Gone", "Removed.")
	gone.Status = "archived"
	put(t, c, gone)

	evs := rv.waitFor("deprecation and archival", func(evs []client.Event) bool { return len(evs) >= 2 })
	if len(evs) != 2 {
		t.Fatalf("hybrid pushed %d events, want 2", len(evs))
	}
	if evs[0].Type != "khub.article.deprecated" || evs[0].Subject != "rb-old" {
		t.Errorf("first event = %s %s, want deprecated rb-old", evs[0].Type, evs[0].Subject)
	}
	if evs[1].Type != "khub.article.archived" || evs[1].Subject != "rb-gone" {
		t.Errorf("second event = %s %s, want archived rb-gone", evs[1].Type, evs[1].Subject)
	}
}

func TestFieldNamesInErrors(t *testing.T) {
	_, c := startHub(t)
	cases := []struct {
		name, method, path, body string
		wantField                string
	}{
		{"search class", "GET", "/v1/search?q=x&class=Policy", "", "class"},
		{"search collection", "GET", "/v1/search?q=x&collection=Hand%20book", "", "collection"},
		{"search meta value", "GET", "/v1/search?q=x&meta.team=a%00b", "", "meta.team"},
		{"article metadata value", "PUT", "/v1/articles/m1", `{"title":"t","body":"b","collection":"c","class":"policy","metadata":{"owner":"a\u0000b"}}`, "metadata.owner"},
		{"article metadata key", "PUT", "/v1/articles/m2", `{"title":"t","body":"b","collection":"c","class":"policy","metadata":{"":"x"}}`, "metadata"},
		{"integration scope class", "POST", "/v1/integrations", `{"name":"x","freshness":"15m","lookups":true,"scope":{"classes":["Runbook"]}}`, "scope.classes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var req *http.Request
			if tc.body != "" {
				req = rawRequest(t, c, tc.method, tc.path, strings.NewReader(tc.body))
			} else {
				req = rawRequest(t, c, tc.method, tc.path, nil)
			}
			resp := do(t, req)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400: %s", resp.StatusCode, resp.body)
			}
			if e := errorOf(t, resp); e.Field != tc.wantField {
				t.Errorf("field = %q, want %q (message %q)", e.Field, tc.wantField, e.Message)
			}
		})
	}
}

func TestNotFoundNamesTheResource(t *testing.T) {
	_, c := startHub(t)
	resp := do(t, rawRequest(t, c, http.MethodDelete, "/v1/integrations/int_missing", nil))
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(errorOf(t, resp).Message, `integration "int_missing"`) {
		t.Errorf("DELETE of a missing integration = %d %s, want 404 naming it", resp.StatusCode, resp.body)
	}
	put(t, c, article("doc", "runbook", "Doc", "d"))
	resp = do(t, rawRequest(t, c, http.MethodGet, "/v1/articles/doc/versions/7", nil))
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(errorOf(t, resp).Message, `version 7 of article "doc"`) {
		t.Errorf("GET of a missing version = %d %s, want 404 naming it", resp.StatusCode, resp.body)
	}
}
