package api

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/khub-dev/khub/client"
)

// randomTexts returns makers of random strings of fewer than maxPieces
// pieces that need every kind of escape, and of lists of them that are
// nil, empty or not.
func randomTexts(r *rand.Rand, maxPieces int) (text func() string, texts func() []string) {
	kinds := []string{"a", "Zürich", "<mark>", "&amp;", `"`, `\`, "\n", "\t", "\x00", "\x1f", "\x7f", "\b", "\f", "\r",
		"\u2028", "\u2029", "\xff", "\xe2\x80", "日本語", "🚨", "…", " ", "/", "'", "service=etcd (metadata)"}
	text = func() string {
		s := ""
		for range r.IntN(maxPieces) {
			s += kinds[r.IntN(len(kinds))]
		}
		return s
	}
	texts = func() []string {
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
	return text, texts
}

// TestSearchResultEncoding checks that appendSearchResult writes the bytes
// that writeJSON writes, for hits with every kind of string and score.
func TestSearchResultEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	text, texts := randomTexts(r, 8)
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
		wantEncodingJSON(t, res, searchResultJSON{&res})
	}
}

// wantEncodingJSON checks that writeJSON writes the same bytes for a
// value that encodes itself as encoding/json writes for the plain value.
func wantEncodingJSON(t *testing.T, plain any, self jsonAppender) {
	t.Helper()
	want, got := httptest.NewRecorder(), httptest.NewRecorder()
	writeJSON(want, 200, plain)
	writeJSON(got, 200, self)
	if got.Body.String() != want.Body.String() {
		t.Fatalf("%T wrote\n%q\nwant what encoding/json writes:\n%q", self, got.Body, want.Body)
	}
}

// TestLookupResultEncoding checks that appendLookupResult writes the bytes
// that writeJSON writes, for hits with every kind of field left empty or
// set.
func TestLookupResultEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	text, texts := randomTexts(r, 6)
	for round := range 300 {
		res := client.LookupResult{Hits: []client.LookupHit{}, Terms: texts()}
		if round%7 == 0 {
			res.Hits = nil
		}
		for range r.IntN(4) {
			res.Hits = append(res.Hits, client.LookupHit{ID: text(), Title: text(), Collection: text(), Class: text(),
				Status: text(), Version: r.Int64N(1 << 40), Snippet: text(), SnippetHTML: text(),
				Score: r.Float64() * 3, Reason: text(), MatchedTerms: texts(), MatchedAttributes: texts(),
				Deprecated: r.IntN(2) == 0, ReplacedBy: text(), Owner: text(), ReviewOverdue: r.IntN(2) == 0})
		}
		wantEncodingJSON(t, res, lookupResultJSON{&res})
	}
}

// TestJSONTextEncoding checks appendJSONText against encoding/json on
// strings long enough for its test of eight bytes at once: every byte
// value at every place of a plain run, and random mixes.
func TestJSONTextEncoding(t *testing.T) {
	check := func(s string) {
		t.Helper()
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got := string(appendJSONText(nil, s)) + "\n"; got != want.String() {
			t.Fatalf("appendJSONText(%q) = %s, want %s", s, got, want.String())
		}
	}
	plain := "abcdefghijklmnopqrstuvwx"
	for c := range 256 {
		for at := range 17 {
			check(plain[:at] + string([]byte{byte(c)}) + plain[at:])
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "Z", " ", "~", "\x7f", `"`, `\`, "\x00", "\x1f", "\n", "é", "\u2028", "\xff", "日", "🚨", "!", "#", "[", "]", "^", "`"}
	for range 2000 {
		var sb strings.Builder
		for range r.IntN(40) {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		check(sb.String())
	}
}
