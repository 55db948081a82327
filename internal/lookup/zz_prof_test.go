package lookup_test

import (
	"context"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/lookup"
	"github.com/khub-dev/khub/internal/store"
)

func BenchmarkZZProf(b *testing.B) {
	name, corpus := largestCorpus(b)
	s, _ := openBenchStore(b, name, corpus, benchArticles)
	searches, lookups := judgedFor(b, name)
	ctx := context.Background()
	for _, q := range lookups[:4] {
		t0 := time.Now()
		_, err := lookup.Run(ctx, s, nil, lookup.Request{Text: q.text, Attributes: q.attributes, Limit: 5})
		b.Logf("lookup %.30q %s %v", q.text, time.Since(t0), err)
	}
	for _, q := range searches[:4] {
		t0 := time.Now()
		_, err := s.Search(ctx, store.SearchQuery{Text: q.text, Limit: 10})
		b.Logf("search %.30q %s %v", q.text, time.Since(t0), err)
		t0 = time.Now()
		s.Search(ctx, store.SearchQuery{Text: q.text, Limit: 10, NoSnippets: true})
		b.Logf("search nosnip %.30q %s", q.text, time.Since(t0))
	}
	b.ResetTimer()
	for b.Loop() {
		for _, q := range lookups {
			lookup.Run(ctx, s, nil, lookup.Request{Text: q.text, Attributes: q.attributes, Limit: 5})
		}
	}
}
