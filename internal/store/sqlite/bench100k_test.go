package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// openSeeded opens a store with n generated articles in a database file
// kept in the temporary directory between runs, because seeding 100,000
// articles takes about a minute. A file with another count is seeded again.
func openSeeded(b *testing.B, n int) *Store {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("khub-bench-search-%d.db", n))
	s, err := Open(path, Options{})
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
			b.Fatalf("%s holds %d articles, want 0 or %d: delete it and run again", path, count, n)
		}
		b.Logf("seeding %d articles into %s, kept for later runs", n, path)
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
