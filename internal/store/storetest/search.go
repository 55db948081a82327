package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

func runSearch(t *testing.T, open opener) {
	subtest(t, "TitleOutranksBody", open, testTitleOutranksBody)
	subtest(t, "AllTermsThenAny", open, testAllTermsThenAny)
	subtest(t, "Filters", open, testSearchFilters)
	subtest(t, "Snippet", open, testSnippet)
	subtest(t, "Statuses", open, testSearchStatuses)
	subtest(t, "FollowsBodyEdit", open, testSearchFollowsBodyEdit)
	subtest(t, "FollowsTagAndTitleEdit", open, testSearchFollowsTagAndTitleEdit)
	subtest(t, "OperatorInjection", open, testOperatorInjection)
	subtest(t, "EmptyTextNewestFirst", open, testEmptyTextNewestFirst)
	subtest(t, "Limit", open, testSearchLimit)
	runSearchMore(t, open)
}

// search runs a query and fails the test on error.
func search(t *testing.T, s store.Store, q store.SearchQuery) []store.SearchHit {
	t.Helper()
	res, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("Search(%q): %v", q.Text, err)
	}
	return res.Hits
}

func testTitleOutranksBody(t *testing.T, s store.Store) {
	body := newArticle("body-only")
	body.Title = "Cluster maintenance"
	body.Body = "Before the window, drain each node. Kubernetes upgrades need a drained node. Then check the pods."
	saveAt(t, s, body, 0)
	title := newArticle("in-title")
	title.Title = "Kubernetes upgrade"
	title.Body = "Drain the nodes one at a time and watch the pods come back."
	saveAt(t, s, title, 1)
	other := newArticle("unrelated")
	other.Title = "Coffee machine"
	other.Body = "Descale it monthly."
	saveAt(t, s, other, 2)

	hits := search(t, s, store.SearchQuery{Text: "kubernetes"})
	if got, want := hitIDs(hits), []string{"in-title", "body-only"}; !slices.Equal(got, want) {
		t.Fatalf("hits = %v, want %v", got, want)
	}
	if hits[0].Score <= hits[1].Score {
		t.Errorf("title match score %v is not above body match score %v", hits[0].Score, hits[1].Score)
	}
	h := hits[0]
	if h.Title != "Kubernetes upgrade" || h.Class != knowledge.ClassRunbook || h.Status != knowledge.StatusPublished || h.Version != 1 {
		t.Errorf("hit = %+v, want the fields of in-title version 1", h)
	}
}

func testAllTermsThenAny(t *testing.T, s store.Store) {
	both := newArticle("both")
	both.Title = "Database failover"
	both.Body = "Promote the replica during a failover of the primary database."
	saveAt(t, s, both, 0)
	partial := newArticle("one")
	partial.Title = "Network failover"
	partial.Body = "Switch the uplink."
	saveAt(t, s, partial, 1)

	hits := search(t, s, store.SearchQuery{Text: "failover replica"})
	if got, want := hitIDs(hits), []string{"both"}; !slices.Equal(got, want) {
		t.Errorf("all terms: hits = %v, want %v", got, want)
	}

	if res := searchPage(t, s, store.SearchQuery{Text: "failover replica"}); res.AnyTerm {
		t.Error("all terms: AnyTerm is set although an article has both")
	}
	if res := searchPage(t, s, store.SearchQuery{Text: "uplink replica", Any: true}); res.AnyTerm {
		t.Error("any term asked for: AnyTerm is set")
	}

	// No article has both terms, so either term may match, and the result
	// reports it.
	if res := searchPage(t, s, store.SearchQuery{Text: "uplink replica"}); !res.AnyTerm {
		t.Error("no article has both terms: AnyTerm is not set")
	}
	hits = search(t, s, store.SearchQuery{Text: "uplink replica"})
	got := hitIDs(hits)
	slices.Sort(got)
	if want := []string{"both", "one"}; !slices.Equal(got, want) {
		t.Errorf("any term: hits = %v, want %v", got, want)
	}

	hits = search(t, s, store.SearchQuery{Text: "nonexistentword"})
	if len(hits) != 0 {
		t.Errorf("unknown word: hits = %v, want none", hitIDs(hits))
	}
}

func testSearchFilters(t *testing.T, s store.Store) {
	seedScoped(t, s)
	for _, tc := range scopeCases {
		t.Run(tc.name, func(t *testing.T) {
			// Every seeded body contains "Body".
			hits := search(t, s, store.SearchQuery{Text: "body", Filters: tc.filters})
			got := hitIDs(hits)
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("text search ids = %v, want %v", got, want)
			}

			hits = search(t, s, store.SearchQuery{Filters: tc.filters})
			got = hitIDs(hits)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("empty-text ids = %v, want %v", got, want)
			}
		})
	}

	// Filters apply before the limit, so a limit of 1 still finds the one
	// matching article among many that do not match.
	for i := range 30 {
		a := newArticle(fmt.Sprintf("filler%d", i))
		a.Body = "Body of a filler article."
		saveAt(t, s, a, 100+i)
	}
	hits := search(t, s, store.SearchQuery{Text: "body", Limit: 1,
		Filters: []knowledge.Scope{{Metadata: map[string]string{"region": "us"}}}})
	if got := hitIDs(hits); !slices.Equal(got, []string{"hr-reference"}) {
		t.Errorf("filtered search with limit 1 = %v, want [hr-reference]", got)
	}
}

func testSnippet(t *testing.T, s store.Store) {
	a := newArticle("fox")
	a.Title = "Animals"
	a.Body = "The quick brown fox jumps over the lazy dog."
	saveAt(t, s, a, 0)
	b := newArticle("titled")
	b.Title = "Gateway timeouts"
	b.Body = "Raise the limit to sixty seconds."
	saveAt(t, s, b, 1)

	hits := search(t, s, store.SearchQuery{Text: "fox"})
	if len(hits) != 1 {
		t.Fatalf("hits = %v, want [fox]", hitIDs(hits))
	}
	if !strings.Contains(hits[0].Snippet, "[fox]") {
		t.Errorf("snippet = %q, want the match in [brackets]", hits[0].Snippet)
	}
	if !strings.Contains(hits[0].Snippet, "brown") {
		t.Errorf("snippet = %q, want the text around the match", hits[0].Snippet)
	}

	// A match only in the title shows the title.
	hits = search(t, s, store.SearchQuery{Text: "gateway"})
	if len(hits) != 1 {
		t.Fatalf("hits = %v, want [titled]", hitIDs(hits))
	}
	if !strings.Contains(hits[0].Snippet, "[Gateway]") {
		t.Errorf("title-only snippet = %q, want [Gateway]", hits[0].Snippet)
	}
}

func testSearchStatuses(t *testing.T, s store.Store) {
	for i, id := range []string{"live", "old", "gone"} {
		a := newArticle(id)
		a.Body = "Escalation path for " + id + "."
		saveAt(t, s, a, i)
	}
	old := newArticle("old")
	old.Body = "Escalation path for old."
	old.Status = knowledge.StatusDeprecated
	saveAt(t, s, old, 10)
	archived := newArticle("gone")
	archived.Body = "Escalation path for gone."
	archived.Status = knowledge.StatusArchived
	saveAt(t, s, archived, 11)

	for _, text := range []string{"escalation", ""} {
		hits := search(t, s, store.SearchQuery{Text: text})
		byID := map[string]store.SearchHit{}
		for _, h := range hits {
			byID[h.ID] = h
		}
		if _, ok := byID["gone"]; ok {
			t.Errorf("Search(%q) returned an archived article", text)
		}
		if h, ok := byID["old"]; !ok {
			t.Errorf("Search(%q) left out the deprecated article", text)
		} else if h.Status != knowledge.StatusDeprecated || h.Version != 2 {
			t.Errorf("Search(%q): deprecated hit = status %q version %d, want deprecated version 2", text, h.Status, h.Version)
		}
		if h, ok := byID["live"]; !ok || h.Status != knowledge.StatusPublished {
			t.Errorf("Search(%q): published hit = %+v, want status published", text, h)
		}
	}

	// Republishing an archived article makes it searchable again.
	archived.Status = knowledge.StatusPublished
	saveAt(t, s, archived, 12)
	hits := search(t, s, store.SearchQuery{Text: "gone"})
	if got := hitIDs(hits); !slices.Equal(got, []string{"gone"}) {
		t.Errorf("after republishing: hits = %v, want [gone]", got)
	}
}

func testSearchFollowsBodyEdit(t *testing.T, s store.Store) {
	a := newArticle("rb-tls")
	a.Title = "Certificates"
	a.Body = "Steps to rotate the TLS cert on the edge proxies."
	saveAt(t, s, a, 0)
	if hits := search(t, s, store.SearchQuery{Text: "TLS cert"}); !slices.Equal(hitIDs(hits), []string{"rb-tls"}) {
		t.Fatalf("before the edit: Search(TLS cert) = %v, want [rb-tls]", hitIDs(hits))
	}

	a.Body = "Steps to rotate the mTLS certificate on the edge proxies."
	saveAt(t, s, a, 1)
	hits := search(t, s, store.SearchQuery{Text: "mTLS"})
	if !slices.Equal(hitIDs(hits), []string{"rb-tls"}) {
		t.Errorf("Search(mTLS) = %v, want [rb-tls]", hitIDs(hits))
	} else if hits[0].Version != 2 {
		t.Errorf("Search(mTLS) hit version = %d, want 2", hits[0].Version)
	}
	for _, text := range []string{"TLS cert", "TLS", "cert"} {
		if hits := search(t, s, store.SearchQuery{Text: text}); len(hits) != 0 {
			t.Errorf("Search(%q) after the edit = %v, want none", text, hitIDs(hits))
		}
	}
}

func testSearchFollowsTagAndTitleEdit(t *testing.T, s store.Store) {
	a := newArticle("rb")
	a.Title = "Edge proxies"
	a.Body = "Restart them in order."
	a.Tags = []string{"network"}
	saveAt(t, s, a, 0)

	a.Tags = []string{"pki"}
	saveAt(t, s, a, 1)
	hits := search(t, s, store.SearchQuery{Filters: []knowledge.Scope{{Tags: []string{"pki"}}}})
	if !slices.Equal(hitIDs(hits), []string{"rb"}) {
		t.Errorf("filter by the new tag = %v, want [rb]", hitIDs(hits))
	}
	hits = search(t, s, store.SearchQuery{Text: "pki"})
	if !slices.Equal(hitIDs(hits), []string{"rb"}) {
		t.Errorf("text search for the new tag = %v, want [rb]", hitIDs(hits))
	}
	if hits := search(t, s, store.SearchQuery{Filters: []knowledge.Scope{{Tags: []string{"network"}}}}); len(hits) != 0 {
		t.Errorf("filter by the removed tag = %v, want none", hitIDs(hits))
	}
	if hits := search(t, s, store.SearchQuery{Text: "network"}); len(hits) != 0 {
		t.Errorf("text search for the removed tag = %v, want none", hitIDs(hits))
	}

	a.Title = "Ingress gateways"
	saveAt(t, s, a, 2)
	hits = search(t, s, store.SearchQuery{Text: "ingress"})
	if !slices.Equal(hitIDs(hits), []string{"rb"}) {
		t.Errorf("search for the new title = %v, want [rb]", hitIDs(hits))
	} else if hits[0].Title != "Ingress gateways" {
		t.Errorf("hit title = %q, want the new title", hits[0].Title)
	}
	if hits := search(t, s, store.SearchQuery{Text: "proxies"}); len(hits) != 0 {
		t.Errorf("search for the old title = %v, want none", hitIDs(hits))
	}
}

func testOperatorInjection(t *testing.T, s store.Store) {
	a := newArticle("rb")
	a.Title = "Rotate keys"
	a.Body = "Rotate the signing keys, then the near-line backups."
	saveAt(t, s, a, 0)

	inputs := []string{
		"AND", "OR", "NOT", "NEAR", `"`, `""`, `"unterminated`, "*", "rotate*", ":", "title:", "body:rotate",
		"NEAR(", "NEAR(rotate keys, 2)", "(", ")", "(rotate", "^rotate", "-rotate", "+rotate", "{title body}: rotate",
		"rotate AND", "AND rotate", "rotate OR", "NOT rotate", "'", `\`, "%", "_", ";", "--", "/*", "@", "$1", "?",
		"rotate -- DROP TABLE articles", `rotate" OR "1"="1`, "\u00a0", "🚨", "\t\n",
	}
	for _, in := range inputs {
		if _, err := s.Search(context.Background(), store.SearchQuery{Text: in}); err != nil {
			t.Errorf("Search(%q): %v", in, err)
		}
	}

	// Operators are searched for as words: NOT and a leading '-' would
	// exclude the article if they were read as operators.
	for _, text := range []string{"NOT rotate", "-rotate", "rotate OR nonexistentword"} {
		if hits := search(t, s, store.SearchQuery{Text: text}); !slices.Equal(hitIDs(hits), []string{"rb"}) {
			t.Errorf("Search(%q) = %v, want [rb]", text, hitIDs(hits))
		}
	}
	if hits := search(t, s, store.SearchQuery{Text: "rotate keys"}); !slices.Equal(hitIDs(hits), []string{"rb"}) {
		t.Errorf("Search(rotate keys) = %v, want [rb]", hitIDs(hits))
	}
	if hits := search(t, s, store.SearchQuery{Text: "rotate*"}); !slices.Equal(hitIDs(hits), []string{"rb"}) {
		t.Errorf("Search(rotate*) = %v, want [rb]", hitIDs(hits))
	}
}

func testEmptyTextNewestFirst(t *testing.T, s store.Store) {
	for i, id := range []string{"first", "second", "third"} {
		saveAt(t, s, newArticle(id), i)
	}
	// An edit makes "first" the most recently updated.
	a := newArticle("first")
	a.Body = "Edited."
	saveAt(t, s, a, 10)

	hits := search(t, s, store.SearchQuery{})
	if got, want := hitIDs(hits), []string{"first", "third", "second"}; !slices.Equal(got, want) {
		t.Errorf("empty-text hits = %v, want %v", got, want)
	}
	hits = search(t, s, store.SearchQuery{Text: "   "})
	if got, want := hitIDs(hits), []string{"first", "third", "second"}; !slices.Equal(got, want) {
		t.Errorf("blank-text hits = %v, want %v", got, want)
	}
}

func testSearchLimit(t *testing.T, s store.Store) {
	for i := range 105 {
		a := newArticle(fmt.Sprintf("a%03d", i))
		a.Body = "Shared word checklist."
		saveAt(t, s, a, i)
	}
	cases := []struct {
		limit, want int
	}{
		{0, 20},
		{3, 3},
		{100, 100},
		{500, 100},
	}
	for _, tc := range cases {
		for _, text := range []string{"checklist", ""} {
			hits := search(t, s, store.SearchQuery{Text: text, Limit: tc.limit})
			if len(hits) != tc.want {
				t.Errorf("Search(%q, limit %d) returned %d hits, want %d", text, tc.limit, len(hits), tc.want)
			}
		}
	}
}
