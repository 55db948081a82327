package api

import (
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"testing"

	"github.com/khub-dev/khub/client"
)

// TestSearchResultEncoding checks that appendSearchResult writes the bytes
// that writeJSON writes, for hits with every kind of string and score.
func TestSearchResultEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	pieces := []string{"a", "Zürich", "<mark>", "&amp;", `"`, `\`, "\n", "\t", "\x00", "\x1f", "\x7f", "\b", "\f", "\r",
		"\u2028", "\u2029", "\xff", "\xe2\x80", "日本語", "🚨", "…", " ", "/", "'"}
	text := func() string {
		s := ""
		for range r.IntN(8) {
			s += pieces[r.IntN(len(pieces))]
		}
		return s
	}
	texts := func() []string {
		switch r.IntN(3) {
		case 0:
			return nil
		case 1:
			return []string{}
		}
		out := make([]string, 1+r.IntN(3))
		for i := range out {
			out[i] = text()
		}
		return out
	}
	scores := []float64{0, 1, -1, 0.5, 1e-7, 1.5e-7, 9.99e-7, 1e-6, 1e20, 1e21, 1.5e21, 12.345678901234567, -3.2e-10, math.SmallestNonzeroFloat64, math.MaxFloat64}
	// score returns one of scores, or a multiple of it when that is
	// finite, since encoding/json rejects infinities.
	score := func() float64 {
		f := scores[r.IntN(len(scores))]
		if g := f * (1 + r.Float64()); r.IntN(2) == 0 && !math.IsInf(g, 0) {
			return g
		}
		return f
	}
	for round := range 300 {
		res := client.SearchResult{Hits: []client.SearchHit{}}
		if round%7 == 0 {
			res.Hits = nil
		}
		for range r.IntN(4) {
			res.Hits = append(res.Hits, client.SearchHit{ID: text(), Title: text(), Collection: text(), Class: text(), Tags: texts(),
				Status: text(), Version: r.Int64N(1 << 40), Snippet: text(), SnippetHTML: text(), Matched: texts(),
				Score: score(), Owner: text(), ReviewOverdue: r.IntN(2) == 0})
		}
		if r.IntN(2) == 0 {
			res.Next = text()
		}
		if r.IntN(4) == 0 {
			res.Facets = &client.Facets{Classes: []client.FacetCount{{Value: text(), Count: 3}}, Collections: []client.FacetCount{}, Tags: nil}
		}
		res.AnyTerm = r.IntN(2) == 0
		want, got := httptest.NewRecorder(), httptest.NewRecorder()
		writeJSON(want, 200, res)
		writeJSON(got, 200, searchResultJSON{&res})
		if got.Body.String() != want.Body.String() {
			t.Fatalf("appendSearchResult wrote\n%q\nwant what encoding/json writes:\n%q", got.Body, want.Body)
		}
	}
}
