package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// TestTextIndexTokensAsFTS5 checks that the in-memory index splits text
// into the same tokens as the FTS5 table, whose tokenizer is unicode61
// with remove_diacritics 2: a token the two split differently would match
// on one path and not on the other.
func TestTextIndexTokensAsFTS5(t *testing.T) {
	texts := []string{
		"हिन्दी भाषा", "ο Σίσυφος ΣΊΣΥΦΟΣ", "مَرْحَبًا بِكُم", "שָׁלוֹם", "ภาษาไทย", "ᄀ한국어", "Ǆemal ǅ ǆ",
		"naïve café Zürich ŀl ĳ", "ﬁre ﬂow", "Ｆｕｌｌ ｗｉｄｔｈ １２３", "İstanbul ıi", "ß ẞ", "ა ქართული", "Ω Ω Å K",
		"e\u0301 a\u0308 n\u0303 x\u20d7 y\u1dc0", "क़ ख़ ड़", "தமிழ்", "ᏣᎳᎩ", "ⅷ Ⅻ ½ ²", "ǰ ǲ",
	}
	r := rand.New(rand.NewPCG(9, 9))
	// Letters and marks of the scripts that people write articles in,
	// from blocks old enough that SQLite's Unicode tables and Go's agree.
	// Marks added to Unicode since, such as the Arabic ones from U+08D3,
	// are rare in articles and may split differently.
	var marks, letters []rune
	for _, span := range [][2]rune{{0xC0, 0x24F}, {0x370, 0x3FF}, {0x400, 0x4FF}, {0x531, 0x586}, {0x591, 0x5EA},
		{0x610, 0x64A}, {0x900, 0x97F}, {0x981, 0x9D7}, {0xB82, 0xBD7}, {0xE01, 0xE4E}, {0x10D0, 0x10FA}, {0x300, 0x36F}} {
		for c := span[0]; c <= span[1]; c++ {
			switch {
			case unicode.IsMark(c):
				marks = append(marks, c)
			case unicode.IsLetter(c) || unicode.IsNumber(c):
				letters = append(letters, c)
			}
		}
	}
	for range 200 {
		var b strings.Builder
		for range 12 {
			b.WriteRune(letters[r.IntN(len(letters))])
			if r.IntN(2) == 0 {
				b.WriteRune(marks[r.IntN(len(marks))])
			}
			if r.IntN(4) == 0 {
				b.WriteByte(' ')
			}
		}
		texts = append(texts, b.String())
	}
	path := filepath.Join(t.TempDir(), "khub.db")
	s := openPath(t, path, Options{})
	ctx := context.Background()
	for i, text := range texts {
		a := knowledge.Article{ID: fmt.Sprintf("t%d", i), Title: "x", Body: text, Collection: "c", Class: knowledge.ClassReference}
		a.Normalize()
		if _, err := s.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Queries in those scripts find the same articles both ways.
	fts := openPath(t, path, Options{NoTextIndex: true})
	for _, q := range []string{"हिन", "हिन्दी", "ΣΙΣΥΦΟΣ", "σισυφος", "م", "مرحبا", "שלום", "cafe", "zurich", "ﬁre", "full", "ǆemal"} {
		got, want := searchBoth(t, s, fts, store.SearchQuery{Text: q, Limit: 100})
		if ids(got.Hits) != ids(want.Hits) {
			t.Errorf("%q finds %s, FTS5 finds %s", q, ids(got.Hits), ids(want.Hits))
		}
	}

	var ftsTerms []string
	err := s.read(ctx, func(tx *txn) error {
		rows, err := tx.QueryContext(ctx, `SELECT term FROM article_fts_vocab`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var term string
			if err := rows.Scan(&term); err != nil {
				return err
			}
			ftsTerms = append(ftsTerms, term)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	mem := s.text.ix.Terms()
	slices.Sort(ftsTerms)
	slices.Sort(mem)
	onlyFTS, onlyMem := difference(ftsTerms, mem), difference(mem, ftsTerms)
	if len(onlyFTS) > 0 || len(onlyMem) > 0 {
		t.Errorf("tokens only FTS5 has: %q\ntokens only the index has: %q", head(onlyFTS), head(onlyMem))
	}
}

func openPath(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ids(hits []store.SearchHit) string {
	var out []string
	for _, h := range hits {
		out = append(out, h.ID)
	}
	return strings.Join(out, " ")
}

func difference(a, b []string) []string {
	var out []string
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			out = append(out, x)
		}
	}
	return out
}

func head(s []string) []string { return s[:min(len(s), 30)] }

// A query word that only loses a mark at its end or start to the
// tokenizer still finds what FTS5 finds.
func TestTextIndexQueryLosesMark(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "khub.db")
	s := openPath(t, path, Options{})
	for i, body := range []string{"हिन्दी भाषा", "தமிழ் மொழி", "का खा"} {
		a := knowledge.Article{ID: fmt.Sprintf("m%d", i), Title: "x", Body: body, Collection: "c", Class: knowledge.ClassReference}
		a.Normalize()
		if _, err := s.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	fts := openPath(t, path, Options{NoTextIndex: true})
	for _, q := range []string{"हि", "தமி*", "का", "ि"} {
		got, want := searchBoth(t, s, fts, store.SearchQuery{Text: q})
		if ids(got.Hits) != ids(want.Hits) {
			t.Errorf("%q finds %q, FTS5 finds %q", q, ids(got.Hits), ids(want.Hits))
		}
	}
}
