package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/khub-dev/khub/internal/store"
)

func testTitleFirst(t *testing.T, s store.Store) {
	saveBody(t, s, "titled", "Replica failover", "Steps to follow.", 0)
	tagged := newArticle("tagged")
	tagged.Title = "Notes"
	tagged.Body = "Nothing to add."
	tagged.Tags = []string{"failover"}
	saveAt(t, s, tagged, 1)
	// The body names both terms often, which ranks it first among all
	// matches, but neither its title nor its tags has one.
	saveBody(t, s, "body", "Runbook", "Failover the replica. Failover again, then check the replica and the failover log.", 2)
	saveBody(t, s, "none", "Coffee", "Descale monthly.", 3)

	q := store.SearchQuery{Text: "failover replica", Any: true, TitleFirst: true, Limit: 2}
	res := searchPage(t, s, q)
	if got := hitIDs(res.Hits); !slices.Equal(got, []string{"titled", "tagged"}) {
		t.Errorf("title-first hits with limit 2 = %v, want [titled tagged]: the title and tag matches, the title with both terms first", got)
	}
	if res.Next != "" {
		t.Errorf("title-first search returned the cursor %q, want none", res.Next)
	}

	// Fewer title and tag matches than the limit: every match is ranked.
	q.Limit = 10
	got := hitIDs(searchPage(t, s, q).Hits)
	slices.Sort(got)
	if !slices.Equal(got, []string{"body", "tagged", "titled"}) {
		t.Errorf("title-first hits with limit 10 = %v, want every article with a term: [body tagged titled]", got)
	}

	// Without Any, the title or tags must contain every term.
	all := searchPage(t, s, store.SearchQuery{Text: "failover replica", TitleFirst: true, Limit: 1})
	if got := hitIDs(all.Hits); !slices.Equal(got, []string{"titled"}) {
		t.Errorf("title-first all-terms hits with limit 1 = %v, want [titled]", got)
	}

	// Prefixes and phrases are restricted to the title and tags too.
	got = hitIDs(searchPage(t, s, store.SearchQuery{Text: "replic* coffee", Any: true, TitleFirst: true, Limit: 2}).Hits)
	slices.Sort(got)
	if !slices.Equal(got, []string{"none", "titled"}) {
		t.Errorf("title-first prefix hits = %v, want [none titled]", got)
	}
	phrase := searchPage(t, s, store.SearchQuery{Text: `"replica failover" coffee`, Any: true, TitleFirst: true, Limit: 2})
	got = hitIDs(phrase.Hits)
	slices.Sort(got)
	if !slices.Equal(got, []string{"none", "titled"}) {
		t.Errorf("title-first phrase hits = %v, want [none titled]", got)
	}

	if list := searchPage(t, s, store.SearchQuery{TitleFirst: true, Limit: 1}); list.Next != "" {
		t.Errorf("title-first listing without text returned the cursor %q, want none", list.Next)
	}

	first := searchPage(t, s, store.SearchQuery{Text: "failover replica", Any: true, Limit: 1})
	if first.Next == "" {
		t.Fatal("any-term search with limit 1 returned no cursor")
	}
	_, err := s.Search(context.Background(), store.SearchQuery{Text: "failover replica", Any: true, TitleFirst: true, Limit: 1, Cursor: first.Next})
	wantErr(t, "title-first search with a cursor", err, store.ErrBadCursor)
}
