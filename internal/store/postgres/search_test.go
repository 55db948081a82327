package postgres

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/fulltext"
)

// saveTest stores a and fails the test on error.
func saveTest(t *testing.T, s *Store, a knowledge.Article) store.SaveResult {
	t.Helper()
	res, err := s.SaveArticle(context.Background(), a, store.SaveOptions{})
	if err != nil {
		t.Fatalf("SaveArticle(%q): %v", a.ID, err)
	}
	return res
}

func TestSearchFieldWeights(t *testing.T) {
	s := openTest(t, Options{})
	inBody := newTestArticle("in-body")
	inBody.Body = "Roll out zephyr to the edge proxies."
	saveTest(t, s, inBody)
	inTag := newTestArticle("in-tag")
	inTag.Tags = []string{"zephyr"}
	saveTest(t, s, inTag)
	inTitle := newTestArticle("in-title")
	inTitle.Title = "Zephyr rollout"
	saveTest(t, s, inTitle)

	res, err := s.Search(context.Background(), store.SearchQuery{Text: "zephyr"})
	if err != nil {
		t.Fatal(err)
	}
	hits := res.Hits
	if got, want := hitIDs(hits), []string{"in-title", "in-tag", "in-body"}; !slices.Equal(got, want) {
		t.Fatalf("hits = %v, want %v (title, then tags, then body)", got, want)
	}
	for i := 1; i < len(hits); i++ {
		if hits[i].Score >= hits[i-1].Score {
			t.Errorf("score of %s (%v) is not below %s (%v)", hits[i].ID, hits[i].Score, hits[i-1].ID, hits[i-1].Score)
		}
	}
	// A match only in the tags highlights nothing, so the title is shown.
	if hits[1].Snippet != inTag.Title {
		t.Errorf("tag-only snippet = %q, want the title %q", hits[1].Snippet, inTag.Title)
	}
}

func TestSearchSnippetWindow(t *testing.T) {
	s := openTest(t, Options{})
	a := newTestArticle("long")
	words := make([]string, 200)
	for i := range words {
		words[i] = "filler"
	}
	words[100] = "needle"
	a.Body = strings.Join(words, " ")
	saveTest(t, s, a)

	res, err := s.Search(context.Background(), store.SearchQuery{Text: "needle"})
	if err != nil {
		t.Fatal(err)
	}
	hits := res.Hits
	if len(hits) != 1 {
		t.Fatalf("hits = %v, want [long]", hitIDs(hits))
	}
	if !strings.Contains(hits[0].Snippet, "[needle]") {
		t.Errorf("snippet = %q, want [needle]", hits[0].Snippet)
	}
	if n := len(strings.Fields(hits[0].Snippet)); n > fulltext.SnippetWords {
		t.Errorf("snippet has %d words, want at most %d", n, fulltext.SnippetWords)
	}
}

func TestSearchArchivedHasNoDocument(t *testing.T) {
	s := openTest(t, Options{})
	a := newTestArticle("gone")
	saveTest(t, s, a)
	a.Status = knowledge.StatusArchived
	saveTest(t, s, a)

	var hasDocument bool
	err := s.pool.QueryRow(context.Background(), `SELECT document IS NOT NULL FROM articles WHERE id = 'gone'`).Scan(&hasDocument)
	if err != nil {
		t.Fatal(err)
	}
	if hasDocument {
		t.Error("archived article still has a search document")
	}
}

// hitIDs returns the ids of search hits in order.
func hitIDs(hits []store.SearchHit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.ID
	}
	return out
}
