package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// benchVocabulary is the vocabulary of generated article text: 60 English
// words followed by 5000 made-up ones. Words are drawn with a Zipf
// distribution, as in natural text, so the first words are in most articles
// and the last in few.
var benchVocabulary = func() []string {
	words := strings.Fields(`rotate certificate proxy failover replica primary database cluster node drain
		upgrade kubernetes policy access leave remote incident page escalate owner backup restore
		network dns ingress gateway timeout retry latency queue worker deploy rollback release
		audit compliance safety ladder helmet badge visitor laptop password token secret vault
		billing invoice refund customer support ticket priority severity outage status report`)
	syllables := []string{"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa"}
	for i := range 5000 {
		words = append(words, syllables[i%10]+syllables[i/10%10]+syllables[i/100%10]+syllables[i/1000%10])
	}
	return words
}()

// benchArticle returns a generated article with a body of 120 words.
func benchArticle(r *rand.Rand, zipf *rand.Zipf, id string) knowledge.Article {
	words := make([]string, 120)
	for i := range words {
		words[i] = benchVocabulary[zipf.Uint64()]
	}
	a := knowledge.Article{
		ID:         id,
		Title:      strings.Join(words[:4], " "),
		Body:       strings.Join(words, " ") + ".",
		Collection: []string{"ops", "hr", "support"}[r.IntN(3)],
		Class:      []knowledge.Class{knowledge.ClassRunbook, knowledge.ClassPolicy, knowledge.ClassReference}[r.IntN(3)],
		Tags:       []string{words[5], words[6]},
	}
	a.Normalize()
	return a
}

// newBenchRand returns a seeded source and a Zipf distribution over
// benchVocabulary with exponent 1.1.
func newBenchRand(seed uint64) (*rand.Rand, *rand.Zipf) {
	r := rand.New(rand.NewPCG(seed, seed+1))
	return r, rand.NewZipf(r, 1.1, 1, uint64(len(benchVocabulary)-1))
}

// seedArticles stores n generated articles, one version each.
func seedArticles(b *testing.B, s *Store, n int) {
	b.Helper()
	r, zipf := newBenchRand(1)
	for i := range n {
		if _, err := s.SaveArticle(context.Background(), benchArticle(r, zipf, fmt.Sprintf("a%05d", i)), store.SaveOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func openBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.TempDir()+"/khub.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkSaveArticle writes new versions of 1000 articles in turn, one
// transaction per write.
func BenchmarkSaveArticle(b *testing.B) {
	s := openBench(b)
	r, zipf := newBenchRand(3)
	articles := make([]knowledge.Article, 1000)
	for i := range articles {
		articles[i] = benchArticle(r, zipf, fmt.Sprintf("a%04d", i))
	}
	ctx := context.Background()
	writes := 0
	start := time.Now()
	for b.Loop() {
		a := articles[writes%len(articles)]
		a.Body += fmt.Sprintf(" Revision %d.", writes)
		if _, err := s.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
			b.Fatal(err)
		}
		writes++
	}
	b.ReportMetric(float64(writes)/time.Since(start).Seconds(), "writes/s")
}

// BenchmarkSearch runs queries over 10,000 generated articles, one
// sub-benchmark per query. By the Zipf distribution, the "common" words are
// expected in nearly every article, "medium" ones in about 500 and "rare"
// ones in about 30.
func BenchmarkSearch(b *testing.B) {
	s := openBench(b)
	seedArticles(b, s, 10000)
	runSearchQueries(b, s)
}

type benchQuery struct {
	name  string
	query store.SearchQuery
}

// benchQueries returns one query per frequency class of the vocabulary.
func benchQueries() []benchQuery {
	text := func(words ...int) string {
		var parts []string
		for _, w := range words {
			parts = append(parts, benchVocabulary[w])
		}
		return strings.Join(parts, " ")
	}
	return []benchQuery{
		{"common", store.SearchQuery{Text: text(0)}},
		{"common-pair", store.SearchQuery{Text: text(0, 1)}},
		{"medium", store.SearchQuery{Text: text(200)}},
		{"medium-pair", store.SearchQuery{Text: text(150, 200)}},
		{"rare", store.SearchQuery{Text: text(3000)}},
		{"rare-filtered", store.SearchQuery{Text: text(3000), Filters: []knowledge.Scope{{Collections: []string{"ops"}}}}},
	}
}

// BenchmarkReadChanges reads a log of 10,000 changes from the start in pages
// of 500, unfiltered.
func BenchmarkReadChanges(b *testing.B) {
	s := openBench(b)
	seedArticles(b, s, 10000)
	ctx := context.Background()
	entries := 0
	start := time.Now()
	for b.Loop() {
		after := int64(0)
		for {
			page, err := s.ReadChanges(ctx, after, 500)
			if err != nil {
				b.Fatal(err)
			}
			if len(page.Changes) == 0 {
				break
			}
			entries += len(page.Changes)
			after = page.ScannedTo
		}
	}
	b.ReportMetric(float64(entries)/time.Since(start).Seconds(), "entries/s")
}
