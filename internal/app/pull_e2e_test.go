package app_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
)

func createPull(t *testing.T, c *client.Client, name string, scope client.Scope) *client.Client {
	t.Helper()
	in, err := c.CreateIntegration(context.Background(), client.IntegrationRequest{Name: name, Freshness: "15m", Lookups: true, Scope: scope})
	if err != nil {
		t.Fatalf("create pull integration: %v", err)
	}
	if in.Pattern != "pull" || in.Token == "" {
		t.Fatalf("pattern %s token %q, want pull with a token", in.Pattern, in.Token)
	}
	return client.New(c.BaseURL(), in.Token)
}

func TestPullScopeEnforced(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	put(t, c, article("rb-db", "runbook", "Database failover", "Promote the replica."))
	acme := article("ref-acme", "reference", "Acme account notes", "Acme buys fleet tracking.")
	acme.Metadata = map[string]string{"account": "acme"}
	put(t, c, acme)
	put(t, c, article("pol-db", "policy", "Database access policy", "Only DBAs touch the failover."))

	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook", "reference"}})

	if _, err := pc.GetArticle(ctx, "rb-db"); err != nil {
		t.Errorf("in-scope article: %v", err)
	}
	_, err := pc.GetArticle(ctx, "pol-db")
	if !client.IsNotFound(err) {
		t.Errorf("out-of-scope article: err = %v, want 404", err)
	}

	res, err := pc.Search(ctx, "failover", client.SearchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 1 || res.Hits[0].ID != "rb-db" {
		t.Errorf("scoped search hits = %+v, want only rb-db", res.Hits)
	}
	if res.AnyTerm {
		t.Error("a one-word search reports any_term")
	}
	// No article has both words, so the hits match either, and the
	// response reports it.
	res, err = pc.Search(ctx, "failover nonexistentword", client.SearchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 1 || !res.AnyTerm {
		t.Errorf("search of a word no article has = %d hits, any_term %v; want rb-db with any_term", len(res.Hits), res.AnyTerm)
	}
	res, err = pc.Search(ctx, "", client.SearchOptions{Metadata: map[string]string{"account": "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 1 || res.Hits[0].ID != "ref-acme" {
		t.Errorf("metadata filter hits = %+v, want only ref-acme", res.Hits)
	}

	page, err := pc.Changes(ctx, 0, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 2 {
		t.Errorf("scoped change feed has %d entries, want 2", len(page.Changes))
	}
	if page.Next != 3 {
		t.Errorf("next = %d, want 3 (past the out-of-scope entry)", page.Next)
	}

	// A pull token cannot write or manage integrations.
	req := mustRequest(t, http.MethodGet, pc, "/v1/integrations", nil, "token")
	if resp := do(t, req); resp.StatusCode != http.StatusForbidden {
		t.Errorf("pull token on admin call = %d, want 403", resp.StatusCode)
	}
}

func TestLongPollWakesOnChange(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})

	type result struct {
		page client.ChangesPage
		err  error
	}
	done := make(chan result, 1)
	go func() {
		page, err := pc.Changes(ctx, 0, 10, 30*time.Second)
		done <- result{page, err}
	}()

	// An out-of-scope change must not end the wait.
	put(t, c, article("pol", "policy", "Policy", "p"))
	select {
	case r := <-done:
		t.Fatalf("long poll returned on an out-of-scope change: %+v %v", r.page, r.err)
	case <-time.After(200 * time.Millisecond):
	}

	put(t, c, article("rb", "runbook", "Runbook", "r"))
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if len(r.page.Changes) != 1 || r.page.Changes[0].ArticleID != "rb" {
			t.Errorf("long poll returned %+v, want the runbook change", r.page.Changes)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long poll did not wake on a new change")
	}
}

func TestSearchFollowsEdits(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	put(t, c, article("rb-tls", "runbook", "Certificates", "Steps to rotate the TLS cert on the edge proxies."))
	put(t, c, article("rb-tls", "runbook", "Certificates", "Steps to rotate the mTLS certificate on the edge proxies."))

	res, err := c.Search(ctx, "mTLS", client.SearchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 1 {
		t.Errorf("search for the new word found %d hits, want 1", len(res.Hits))
	}
	res, err = c.Search(ctx, `"TLS cert"`, client.SearchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 0 {
		t.Errorf("search for the old phrase found %d hits, want 0", len(res.Hits))
	}

	tagged := article("rb-tls", "runbook", "Certificates", "Steps to rotate the mTLS certificate on the edge proxies.")
	tagged.Tags = []string{"pki"}
	put(t, c, tagged)
	res, err = c.Search(ctx, "", client.SearchOptions{Tags: []string{"pki"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 1 {
		t.Errorf("search by the new tag found %d hits, want 1", len(res.Hits))
	}
}

func TestNonASCIIRoundTrip(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	a := client.Article{
		ID:         "incident-cafe",
		Title:      "Incident 🚨 playbook – naïve café",
		Body:       "Page the owner 👩‍💻\u00a0at once.\u00a0Then brief the café staff.",
		Collection: "handbook",
		Class:      "safety",
		Tags:       []string{"incident"},
	}
	put(t, c, a)
	got, err := c.GetArticle(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != a.Title || got.Body != a.Body {
		t.Errorf("round trip changed the text:\n got %q %q\nwant %q %q", got.Title, got.Body, a.Title, a.Body)
	}
	for _, q := range []string{"naïve", "café", "playbook"} {
		res, err := c.Search(ctx, q, client.SearchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) != 1 || res.Hits[0].Title != a.Title {
			t.Errorf("search %q = %+v, want the article with its exact title", q, res.Hits)
		}
	}
}
