package postgres

import (
	"context"
	"os"
	"testing"

	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/storetest"
)

// openBench opens a store on a new schema, or skips the benchmark when
// KHUB_TEST_POSTGRES_URL is unset, in CI too, because CI runs no
// benchmarks.
func openBench(b *testing.B) *Store {
	b.Helper()
	url := os.Getenv(urlVariable)
	if url == "" {
		b.Skipf("%s is not set: set it to a PostgreSQL URL to run the PostgreSQL store benchmarks", urlVariable)
	}
	s, err := Open(context.Background(), url, Options{Schema: newSchema(b, url)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkStore runs the back-end benchmarks shared with SQLite. Four
// writers seed the data, which only shortens the setup.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return openBench(b) }, 4)
}
