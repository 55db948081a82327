package sqlite

import (
	"testing"

	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/storetest"
)

func openBench(b *testing.B) *Store {
	b.Helper()
	s, err := Open(b.TempDir()+"/khub.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkStore runs the back-end benchmarks shared with PostgreSQL. SQLite
// has one writer at a time, so one goroutine seeds the data.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return openBench(b) }, 1)
}
