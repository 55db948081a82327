package postgres

import (
	"context"
	"fmt"
	"os"
	"testing"
)

// openSeeded opens a store with n generated articles in a schema that is
// kept between runs, because seeding 100,000 articles takes minutes. A
// schema with another article count is seeded again.
func openSeeded(b *testing.B, n int) *Store {
	b.Helper()
	url := os.Getenv(urlVariable)
	if url == "" {
		b.Skipf("%s is not set: set it to a PostgreSQL URL to run the PostgreSQL store benchmarks", urlVariable)
	}
	ctx := context.Background()
	schema := fmt.Sprintf("khub_bench_search_%d", n)
	s, err := Open(ctx, url, Options{Schema: schema})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	count, err := s.CountArticles(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if count != int64(n) {
		if count != 0 {
			b.Fatalf("schema %s holds %d articles, want 0 or %d: drop it and run again", schema, count, n)
		}
		b.Logf("seeding %d articles into schema %s, kept for later runs", n, schema)
		seedArticles(b, s, n)
	}
	return s
}

// BenchmarkSearch100k runs the queries of BenchmarkSearch over 100,000
// generated articles.
func BenchmarkSearch100k(b *testing.B) {
	s := openSeeded(b, 100000)
	runSearchQueries(b, s)
}

// runSearchQueries runs one sub-benchmark per query class and fails on an
// empty result, so a broken index cannot look fast.
func runSearchQueries(b *testing.B, s *Store) {
	ctx := context.Background()
	for _, q := range benchQueries() {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				hits, err := s.Search(ctx, q.query)
				if err != nil {
					b.Fatal(err)
				}
				if len(hits) == 0 {
					b.Fatalf("Search(%q) found nothing", q.query.Text)
				}
			}
		})
	}
}
