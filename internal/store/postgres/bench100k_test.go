package postgres

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/khub-dev/khub/internal/store/storetest"
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
		storetest.Seed(b, s, n, 4)
	}
	return s
}

// BenchmarkSearch100k runs the store search benchmark over 100,000
// generated articles.
func BenchmarkSearch100k(b *testing.B) {
	storetest.BenchSearch(b, openSeeded(b, 100000))
}
