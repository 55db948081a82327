package app_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/importer"
)

// importExamples imports the project's example knowledge base into the
// hub as collection "examples".
func importExamples(t *testing.T, c *client.Client) {
	t.Helper()
	res, err := importer.Scan("../../examples/kb", importer.Options{Collection: "examples"})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Documents {
		a := d.Article
		put(t, c, client.Article{ID: a.ID, Title: a.Title, Body: a.Body, Collection: a.Collection, Class: string(a.Class),
			Tags: a.Tags, Metadata: a.Metadata, Status: string(a.Status)})
	}
}

func TestLookupReplacesDeprecatedArticle(t *testing.T) {
	_, c := startHub(t)
	importExamples(t, c)
	ctx := context.Background()

	res, err := c.Lookup(ctx, client.LookupRequest{
		Text: "VPN access for a new warehouse contractor\n\nHi team, the new contractor at the Rotterdam warehouse needs remote access through the VPN client. Please set up the VPN account. Thanks!",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) == 0 {
		t.Fatal("lookup found nothing")
	}
	first := res.Hits[0]
	if first.ID != "policy-access-review" || first.Deprecated {
		t.Errorf("first hit = %s (deprecated %v), want the replacement policy-access-review", first.ID, first.Deprecated)
	}
	if !strings.Contains(first.Reason, "replaces deprecated policy-remote-access-vpn") {
		t.Errorf("first hit reason = %q, want it to name the deprecated article it replaces", first.Reason)
	}
	i := slices.IndexFunc(res.Hits, func(h client.LookupHit) bool { return h.ID == "policy-remote-access-vpn" })
	if i < 0 {
		t.Fatalf("hits = %v, want the deprecated VPN policy after its replacement", hitIDsOf(res.Hits))
	}
	vpn := res.Hits[i]
	if !vpn.Deprecated || vpn.ReplacedBy != "policy-access-review" || !strings.Contains(vpn.Reason, "deprecated: use policy-access-review instead") {
		t.Errorf("deprecated hit = %+v, want deprecated, replaced_by policy-access-review and a reason saying so", vpn)
	}
	// Terms are reported as the ticket wrote them.
	if !slices.Contains(vpn.MatchedTerms, "VPN") {
		t.Errorf("deprecated hit matched terms = %q, want VPN among them", vpn.MatchedTerms)
	}
	if !slices.Contains(res.Terms, "VPN") || slices.Contains(res.Terms, "thanks") || slices.Contains(res.Terms, "the") {
		t.Errorf("searched terms = %q, want VPN and no stop words", res.Terms)
	}
}

func TestLookupAttributes(t *testing.T) {
	_, c := startHub(t)
	importExamples(t, c)
	ctx := context.Background()

	res, err := c.Lookup(ctx, client.LookupRequest{
		Text:       "Customers cannot pay\n\nCheckout fails for many customers since 10:30, lots of 500 errors.",
		Attributes: map[string]string{"service": "payments-api", "severity": "sev1", "account": "acme-retail"},
		Limit:      5,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) != 5 {
		t.Fatalf("hits = %v, want 5", hitIDsOf(res.Hits))
	}
	if res.Hits[0].ID != "runbook-payments-api-errors" {
		t.Errorf("hits = %v, want runbook-payments-api-errors first", hitIDsOf(res.Hits))
	}
	h := res.Hits[0]
	for _, want := range []string{"service=payments-api (metadata)", "severity=sev1 (metadata)", "service=payments-api (title)"} {
		if !slices.Contains(h.MatchedAttributes, want) {
			t.Errorf("matched attributes = %q, want %q among them", h.MatchedAttributes, want)
		}
	}
	if h.Class != "runbook" || h.Status != "published" || h.Version != 1 || h.Snippet == "" || h.Reason == "" {
		t.Errorf("first hit = %+v, want class, status, version, snippet and reason", h)
	}
	// The account's contract is found by its metadata alone.
	if !slices.ContainsFunc(res.Hits, func(h client.LookupHit) bool { return h.ID == "compliance-acme-retail-obligations" }) {
		t.Errorf("hits = %v, want compliance-acme-retail-obligations for account=acme-retail", hitIDsOf(res.Hits))
	}
}

func TestLookupScope(t *testing.T) {
	_, c := startHub(t)
	importExamples(t, c)
	ctx := context.Background()
	in, err := c.CreateIntegration(ctx, client.IntegrationRequest{Name: "safety-desk", Freshness: "15m", Pattern: "pull",
		AcceptRisk: true, Lookups: true, Scope: client.Scope{Classes: []string{"safety"}}})
	if err != nil {
		t.Fatalf("create pull integration: %v", err)
	}
	pc := client.New(c.BaseURL(), in.Token)

	res, err := pc.Lookup(ctx, client.LookupRequest{Text: "forklift collided with a pallet rack, also need VPN access"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) == 0 {
		t.Fatal("scoped lookup found nothing")
	}
	for _, h := range res.Hits {
		if h.Class != "safety" {
			t.Errorf("scoped lookup returned %s of class %s, outside the safety scope", h.ID, h.Class)
		}
	}
	// The replacement of a deprecated article outside the scope is not
	// shown either.
	in, err = c.CreateIntegration(ctx, client.IntegrationRequest{Name: "policy-desk", Freshness: "15m", Pattern: "pull",
		AcceptRisk: true, Lookups: true, Scope: client.Scope{Tags: []string{"vpn"}}})
	if err != nil {
		t.Fatalf("create pull integration: %v", err)
	}
	pc = client.New(c.BaseURL(), in.Token)
	res, err = pc.Lookup(ctx, client.LookupRequest{Text: "VPN access for a contractor"})
	if err != nil {
		t.Fatal(err)
	}
	if got := hitIDsOf(res.Hits); !slices.Equal(got, []string{"policy-remote-access-vpn"}) || !res.Hits[0].Deprecated {
		t.Errorf("lookup in the vpn tag scope = %v, want only the deprecated VPN policy, marked", got)
	}
}

func TestLookupBadRequests(t *testing.T) {
	_, c := startHub(t)
	cases := []struct {
		name, body, field string
	}{
		{"nothing to look up", `{"text": "  "}`, "text"},
		{"limit too large", `{"text": "disk", "limit": 50}`, "limit"},
		{"negative limit", `{"text": "disk", "limit": -1}`, "limit"},
		{"empty attribute", `{"text": "disk", "attributes": {"service": ""}}`, "attributes.service"},
		{"unknown field", `{"text": "disk", "severity": "high"}`, "severity"},
		{"wrong type", `{"text": "disk", "attributes": {"service": 5}}`, "attributes.service"},
		{"text too long", `{"text": "` + strings.Repeat("a", 70000) + `"}`, "text"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, do(t, rawRequest(t, c, http.MethodPost, "/v1/lookup", strings.NewReader(tc.body))), http.StatusBadRequest, tc.field)
		})
	}
	resp := do(t, mustRequest(t, http.MethodPost, c, "/v1/lookup", strings.NewReader(`{"text": "disk"}`), ""))
	wantError(t, resp, http.StatusUnauthorized, "Authorization")
}

func TestSearchFacetsAndCursorOverHTTP(t *testing.T) {
	_, c := startHub(t)
	importExamples(t, c)
	ctx := context.Background()

	res, err := c.Search(ctx, "warehouse", client.SearchOptions{Limit: 2, Facets: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Facets == nil || len(res.Facets.Classes) == 0 || res.Next == "" {
		t.Fatalf("first page = %+v, want facets and a next cursor", res)
	}
	total := int64(0)
	for _, f := range res.Facets.Classes {
		total += f.Count
	}
	var ids []string
	for page := 0; ; page++ {
		for _, h := range res.Hits {
			if slices.Contains(ids, h.ID) {
				t.Errorf("page %d repeats %s", page, h.ID)
			}
			ids = append(ids, h.ID)
			if !slices.Contains(h.Matched, "warehouse") {
				t.Errorf("hit %s matched %q, want warehouse", h.ID, h.Matched)
			}
		}
		if res.Next == "" {
			break
		}
		// An unrelated write between pages changes nothing.
		put(t, c, article("unrelated-"+string(rune('a'+page)), "reference", "Coffee machine", "Descale monthly."))
		if res, err = c.Search(ctx, "warehouse", client.SearchOptions{Limit: 2, Cursor: res.Next}); err != nil {
			t.Fatal(err)
		}
	}
	if int64(len(ids)) != total {
		t.Errorf("paged %d hits, facets count %d matches", len(ids), total)
	}

	resp := do(t, rawRequest(t, c, http.MethodGet, "/v1/search?q=other&cursor=garbage", nil))
	wantError(t, resp, http.StatusBadRequest, "cursor")
	resp = do(t, rawRequest(t, c, http.MethodGet, "/v1/search?q=other&facets=maybe", nil))
	wantError(t, resp, http.StatusBadRequest, "facets")
}

func hitIDsOf(hits []client.LookupHit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.ID
	}
	return out
}
