package lookup_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/lookup"
	"github.com/khub-dev/khub/internal/store/fulltext"
)

func BenchmarkZZVocab(b *testing.B) {
	name, corpus := largestCorpus(b)
	_, path := openBenchStore(b, name, corpus, benchArticles)
	db, _ := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	_, lookups := judgedFor(b, name)
	ctx := context.Background()
	for _, q := range lookups[:3] {
		terms, _ := lookup.SalientTerms(q.text, lookup.MaxTerms)
		for _, t := range terms {
			var n int64
			db.QueryRow(`SELECT doc FROM article_fts_vocab WHERE term = ?`, t).Scan(&n)
			t0 := time.Now()
			var c int64
			err := db.QueryRowContext(ctx, `SELECT count(*) FROM article_fts WHERE article_fts MATCH ?`, fulltext.Parse(t).FTS5(true)).Scan(&c)
			b.Logf("%-25s df=%6d matches=%6d %s %v", t, n, c, time.Since(t0), err)
		}
	}
}

func BenchmarkZZVocab2(b *testing.B) {
	name, corpus := largestCorpus(b)
	_, path := openBenchStore(b, name, corpus, benchArticles)
	db, _ := sql.Open("sqlite", path+"?_pragma=query_only(1)")
	for _, p := range []string{"pod", "fail", "contain", "restart"} {
		t0 := time.Now()
		var n int64
		err := db.QueryRow(`SELECT max(doc) FROM article_fts_vocab WHERE term >= ? AND term < ?`, p, p+"\U0010FFFF").Scan(&n)
		b.Logf("%s max=%d %s %v", p, n, time.Since(t0), err)
	}
}
