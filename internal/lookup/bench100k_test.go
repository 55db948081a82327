package lookup_test

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/lookup"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/fulltext"
	"github.com/khub-dev/khub/internal/store/sqlite"
)

// Benchmark sizes.
const (
	benchArticles = 100000
	// benchClients is the number of clients that query at once.
	benchClients = 32
)

// variantSuffix ends the id of a generated variant; baseID removes it.
var variantSuffix = regexp.MustCompile(`\.v[0-9]+$`)

func baseID(id string) string { return variantSuffix.ReplaceAllString(id, "") }

// largestCorpus returns the name and articles of the corpus with the most
// articles.
func largestCorpus(b *testing.B) (string, []knowledge.Article) {
	b.Helper()
	root := corporaDir(b)
	var name string
	var best []knowledge.Article
	for _, c := range corpora {
		arts := scanCorpus(b, filepath.Join(root, c), c)
		if len(arts) > len(best) {
			name, best = c, arts
		}
	}
	return name, best
}

// variants returns n articles made from the corpus. Article i is a variant
// of corpus article i mod len(corpus) with the id suffix ".vK". About a
// sixth of its paragraphs after the first are left out, and one or two
// paragraphs of other corpus articles are appended, so the variants of one
// article are alike but not equal. The result depends only on the corpus.
func variants(corpus []knowledge.Article, n int) []knowledge.Article {
	paragraphs := make([][]string, len(corpus))
	for i, a := range corpus {
		paragraphs[i] = strings.Split(a.Body, "\n\n")
	}
	out := make([]knowledge.Article, n)
	for k := range n {
		i := k % len(corpus)
		r := rand.New(rand.NewPCG(uint64(k), 7))
		base := corpus[i]
		var body []string
		for j, p := range paragraphs[i] {
			if j == 0 || r.IntN(6) != 0 {
				body = append(body, p)
			}
		}
		for range 1 + r.IntN(2) {
			other := paragraphs[r.IntN(len(corpus))]
			body = append(body, other[r.IntN(len(other))])
		}
		a := base
		a.ID = fmt.Sprintf("%s.v%d", base.ID, k/len(corpus))
		a.Body = strings.Join(body, "\n\n")
		a.Metadata = map[string]string{"cluster": "cluster-" + strconv.Itoa(k%50)}
		out[k] = a
	}
	return out
}

// openBenchStore opens the store of n variants of the corpus, kept in the
// temporary directory between runs because seeding takes minutes. The file
// name holds a hash of the corpus and the analyzer version, so a changed
// corpus or analyzer gets a new file.
func openBenchStore(b *testing.B, name string, corpus []knowledge.Article, n int) (*sqlite.Store, string) {
	b.Helper()
	h := fnv.New64a()
	for _, a := range corpus {
		h.Write([]byte(a.ID + "\x00" + a.Title + "\x00" + a.Body + "\x00"))
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("khub-bench-lookup-%s-%d-%x-a%d.db", name, n, h.Sum64()>>32, fulltext.AnalyzerVersion))
	s, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })

	ctx := context.Background()
	count, err := s.CountArticles(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if count != int64(n) {
		if count != 0 {
			b.Fatalf("%s holds %d articles, want 0 or %d: delete it and run again", path, count, n)
		}
		b.Logf("seeding %d variants of %s into %s, kept for later runs", n, name, path)
		start := time.Now()
		for i, a := range variants(corpus, n) {
			if _, err := s.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
				b.Fatalf("seed %s: %v", a.ID, err)
			}
			if (i+1)%20000 == 0 {
				b.Logf("seeded %d articles in %s", i+1, time.Since(start).Round(time.Second))
			}
		}
	}
	return s, path
}

// benchQuery is one judged query restricted to the benchmark corpus.
type benchQuery struct {
	text       string
	attributes map[string]string
	relevant   []string // base ids
}

// judgedFor returns the judged searches and lookups that have a relevant
// article in the collection, with only those relevant ids kept.
func judgedFor(b *testing.B, collection string) (searches, lookups []benchQuery) {
	b.Helper()
	j := loadJudged(b)
	keep := func(ids []string) []string {
		var out []string
		for _, id := range ids {
			if strings.HasPrefix(id, collection+".") {
				out = append(out, id)
			}
		}
		return out
	}
	for _, q := range j.Search {
		if rel := keep(q.Relevant); len(rel) > 0 {
			searches = append(searches, benchQuery{text: q.Q, relevant: rel})
		}
	}
	for _, q := range j.Lookup {
		if rel := keep(q.Relevant); len(rel) > 0 {
			lookups = append(lookups, benchQuery{text: q.Text, attributes: q.Attributes, relevant: rel})
		}
	}
	return searches, lookups
}

// plainFTS5 is the baseline: a hand-written FTS5 query through
// database/sql on the same file, each word of the text quoted and joined
// by AND (implicit) or OR, ranked by FTS5's default bm25().
type plainFTS5 struct {
	db   *sql.DB
	stmt *sql.Stmt
}

func openPlain(b *testing.B, path string) *plainFTS5 {
	b.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)&_pragma=busy_timeout(5000)")
	if err != nil {
		b.Fatal(err)
	}
	// The same pool size as the store's readers, so both get the same
	// number of connections for their 32 clients.
	db.SetMaxOpenConns(max(runtime.NumCPU(), 2))
	db.SetMaxIdleConns(max(runtime.NumCPU(), 2))
	b.Cleanup(func() { db.Close() })
	stmt, err := db.Prepare(`SELECT v.article_id FROM article_fts
		JOIN article_versions v ON v.seq = article_fts.rowid
		WHERE article_fts MATCH ? ORDER BY rank LIMIT 10`)
	if err != nil {
		b.Fatal(err)
	}
	return &plainFTS5{db: db, stmt: stmt}
}

// plainExpr quotes each white-space separated word of text for FTS5.
func plainExpr(text string, op string) string {
	words := strings.Fields(text)
	for i, w := range words {
		words[i] = `"` + strings.ReplaceAll(w, `"`, `""`) + `"`
	}
	return strings.Join(words, op)
}

func (p *plainFTS5) query(ctx context.Context, expr string) ([]string, error) {
	rows, err := p.stmt.QueryContext(ctx, expr)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// meanPrecision runs each query once and returns the mean precision at 5,
// counting a variant as its base article.
func meanPrecision(b *testing.B, qs []benchQuery, run func(q benchQuery) ([]string, error)) float64 {
	b.Helper()
	sum := 0.0
	for _, q := range qs {
		ids, err := run(q)
		if err != nil {
			b.Fatalf("query %.40q: %v", q.text, err)
		}
		for i := range ids {
			ids[i] = baseID(ids[i])
		}
		p, _ := precisionAt5(ids, q.relevant)
		sum += p
	}
	return sum / float64(len(qs))
}

// runClients runs the queries round robin from benchClients goroutines
// for b.N queries in all, and reports the 50th and 99th percentile of
// their latencies in milliseconds, the throughput and precision.
func runClients(b *testing.B, qs []benchQuery, precision float64, run func(q benchQuery) ([]string, error)) {
	b.Helper()
	procs := runtime.GOMAXPROCS(0)
	b.SetParallelism((benchClients + procs - 1) / procs)
	var (
		mu   sync.Mutex
		lats []time.Duration
		next int
	)

	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			mu.Lock()
			q := qs[next%len(qs)]
			next++
			mu.Unlock()
			t0 := time.Now()
			if _, err := run(q); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lats = append(lats, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()

	if len(lats) == 0 {
		return
	}
	slices.Sort(lats)
	pct := func(p float64) float64 {
		return float64(lats[min(len(lats)-1, int(p*float64(len(lats))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(lats))/elapsed.Seconds(), "queries/s")
	b.ReportMetric(precision, "p@5")
}

// BenchmarkSearchLookup100k measures search and lookup over the largest
// corpus scaled to 100,000 articles, with 32 concurrent clients, next to a
// plain FTS5 query on the same file. Each sub-benchmark reports latency
// percentiles and the mean precision at 5 of the judged queries whose
// relevant articles are in that corpus.
func BenchmarkSearchLookup100k(b *testing.B) {
	name, corpus := largestCorpus(b)
	s, path := openBenchStore(b, name, corpus, benchArticles)
	plain := openPlain(b, path)
	searches, lookups := judgedFor(b, name)
	if len(searches) == 0 || len(lookups) == 0 {
		b.Fatalf("testdata/judged.yaml has no search or no lookup with a relevant article in %s", name)
	}
	ctx := context.Background()
	// No scope, as for the admin token, so that khub and the plain query
	// read the same rows.
	var scope []knowledge.Scope

	khubSearch := func(q benchQuery) ([]string, error) {
		res, err := s.Search(ctx, store.SearchQuery{Text: q.text, Filters: scope, Limit: 10})
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(res.Hits))
		for i, h := range res.Hits {
			ids[i] = h.ID
		}
		return ids, nil
	}
	khubLookup := func(q benchQuery) ([]string, error) {
		res, err := lookup.Run(ctx, s, scope, lookup.Request{Text: q.text, Attributes: q.attributes, Limit: 5})
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(res.Hits))
		for i, h := range res.Hits {
			ids[i] = h.ID
		}
		return ids, nil
	}
	plainSearch := func(q benchQuery) ([]string, error) { return plain.query(ctx, plainExpr(q.text, " ")) }
	plainLookup := func(q benchQuery) ([]string, error) { return plain.query(ctx, plainExpr(q.text, " OR ")) }

	cases := []struct {
		name string
		qs   []benchQuery
		run  func(benchQuery) ([]string, error)
	}{
		{"search/khub", searches, khubSearch},
		{"search/fts5", searches, plainSearch},
		{"lookup/khub", lookups, khubLookup},
		{"lookup/fts5", lookups, plainLookup},
	}
	for _, c := range cases {
		p := meanPrecision(b, c.qs, c.run)
		b.Run(c.name, func(b *testing.B) {
			runClients(b, c.qs, p, c.run)
		})
	}
}
