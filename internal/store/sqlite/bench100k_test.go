package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/khub-dev/khub/internal/store/storetest"
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
		storetest.Seed(b, s, n, 1)
	}
	// Searches are measured on the text index, which a store this large
	// builds in the background.
	if err := s.WaitTextIndex(ctx); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkSearch100k runs the store search benchmark over 100,000
// generated articles.
func BenchmarkSearch100k(b *testing.B) {
	storetest.BenchSearch(b, openSeeded(b, 100000))
}
