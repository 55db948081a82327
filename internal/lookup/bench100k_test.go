package lookup_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
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

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/api"
	"github.com/khub-dev/khub/internal/changelog"
	"github.com/khub-dev/khub/internal/hub"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/lookup"
	"github.com/khub-dev/khub/internal/resultcache"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/fulltext"
	"github.com/khub-dev/khub/internal/store/postgres"
	"github.com/khub-dev/khub/internal/store/sqlite"
	"github.com/khub-dev/khub/internal/testpg"
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
	// A store this large builds its text index in the background; the
	// benchmark measures searches with it.
	start := time.Now()
	if err := s.WaitTextIndex(ctx); err != nil {
		b.Fatal(err)
	}
	var mem runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&mem)
	b.Logf("text index of %d articles ready after %s; Go heap in use %d MiB", n, time.Since(start).Round(time.Millisecond), mem.HeapInuse>>20)
	return s, path
}

// benchQuery is one judged query restricted to the benchmark corpus.
type benchQuery struct {
	text       string
	attributes map[string]string
	relevant   []string // base ids
	// searchURL and lookupBody are the query as benchAPI sends it,
	// encoded once, as a tool's process encodes it before the request
	// reaches the hub.
	searchURL  *url.URL
	lookupBody []byte
}

// newBenchQuery returns the query with its requests encoded.
func newBenchQuery(b *testing.B, text string, attributes map[string]string, relevant []string) benchQuery {
	b.Helper()
	u, err := url.Parse("/v1/search?limit=10&q=" + url.QueryEscape(text))
	if err != nil {
		b.Fatal(err)
	}
	body, err := json.Marshal(client.LookupRequest{Text: text, Attributes: attributes, Limit: 5})
	if err != nil {
		b.Fatal(err)
	}
	return benchQuery{text: text, attributes: attributes, relevant: relevant, searchURL: u, lookupBody: body}
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
			searches = append(searches, newBenchQuery(b, q.Q, nil, rel))
		}
	}
	for _, q := range j.Lookup {
		if rel := keep(q.Relevant); len(rel) > 0 {
			lookups = append(lookups, newBenchQuery(b, q.Text, q.Attributes, rel))
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
//
// Each client yields its processor when it sends a query and starts the
// query's clock before that, so the query waits behind the other
// clients' as a request from the network waits in the run queue behind
// the others. A client that never blocked would keep its processor for
// Go's 10 ms time slice and run queries back to back, and the
// percentiles would measure preemption instead of the server: a request
// that searches only memory never blocks.
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
			runtime.Gosched()
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
//
// The sub-benchmarks are:
//
//   - store: the store's search and lookup.Run, called directly, as cold
//     as the first request after a commit.
//   - api-cold: GET /v1/search and POST /v1/lookup through the API
//     handler, with its result cache turned off: the store's work plus
//     the change-log head, the review state of the hits and the JSON.
//   - api-warm: the same with the result cache on, after one pass over the
//     queries, as for requests repeated between commits.
//   - fts5: the plain FTS5 query.
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

	storeSearch := func(q benchQuery) ([]string, error) {
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
	storeLookup := func(q benchQuery) ([]string, error) {
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
	cold := newBenchAPI(b, s, resultcache.Config{MaxEntries: -1})
	warm := newBenchAPI(b, s, resultcache.Config{})
	plainSearch := func(q benchQuery) ([]string, error) { return plain.query(ctx, plainExpr(q.text, " ")) }
	plainLookup := func(q benchQuery) ([]string, error) { return plain.query(ctx, plainExpr(q.text, " OR ")) }

	cases := []struct {
		name string
		qs   []benchQuery
		// run returns the ids for precision; timed, when set, is run
		// under load instead.
		run, timed func(benchQuery) ([]string, error)
	}{
		{"search/store", searches, storeSearch, nil},
		{"search/api-cold", searches, cold.search, cold.timed().search},
		{"search/api-warm", searches, warm.search, warm.timed().search},
		{"search/fts5", searches, plainSearch, nil},
		{"lookup/store", lookups, storeLookup, nil},
		{"lookup/api-cold", lookups, cold.lookup, cold.timed().lookup},
		{"lookup/api-warm", lookups, warm.lookup, warm.timed().lookup},
		{"lookup/fts5", lookups, plainLookup, nil},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			// Precision is measured inside the sub-benchmark, so that a
			// filter with -bench skips the queries of the others. For
			// api-warm, this pass also fills the cache.
			p := meanPrecision(b, c.qs, c.run)
			timed := c.timed
			if timed == nil {
				timed = c.run
			}
			runClients(b, c.qs, p, timed)
		})
	}
}

// benchAPI sends searches and lookups to an API server over the benchmark
// store with the admin token, through its handler without a network.
type benchAPI struct {
	srv        http.Handler
	skipDecode bool
}

const benchAdminToken = "bench-admin-token"

func newBenchAPI(b *testing.B, s store.Store, cache resultcache.Config) *benchAPI {
	b.Helper()
	h := &hub.Hub{Store: s, Wake: &changelog.Broadcaster{}}
	return &benchAPI{srv: api.New(h, api.Config{AdminToken: benchAdminToken, ResultCache: cache,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})}
}

// send serves one request and, unless a.skipDecode is set, decodes the
// ids of the hits. Skipping the decoding keeps the client's own JSON work
// out of the timed requests, which share the two cores with the server.
func (a *benchAPI) send(r *http.Request) ([]string, error) {
	if a.skipDecode {
		var w discardWriter
		defer w.done()
		a.srv.ServeHTTP(&w, r)
		if w.code != http.StatusOK {
			return nil, fmt.Errorf("%s %s: status %d: %s", r.Method, r.URL, w.code, w.failed)
		}
		return nil, nil
	}
	w := httptest.NewRecorder()
	a.srv.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		return nil, fmt.Errorf("%s %s: status %d: %s", r.Method, r.URL, w.Code, w.Body)
	}
	var res struct {
		Hits []struct {
			ID string `json:"id"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
		return nil, err
	}
	ids := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.ID
	}
	return ids, nil
}

// discardWriter is the response writer of the timed requests. It copies
// a successful body once into a reused buffer, as net/http copies it into
// its buffered writer, and then drops it. The benchmark leaves out the
// network, and with it net/http's framing and system calls.
// httptest.ResponseRecorder grew a new buffer to each body's size and
// cloned the header, work that a server does not do. It keeps the start
// of a failure's body for the error.
type discardWriter struct {
	header http.Header
	code   int
	buf    *[]byte
	failed []byte
}

// responseBuffers is the pool of buffers of discardWriter.
var responseBuffers = sync.Pool{New: func() any { return new([]byte) }}

func (w *discardWriter) Header() http.Header {
	if w.header == nil {
		w.header = http.Header{}
	}
	return w.header
}

func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.code != http.StatusOK && len(w.failed) < 512 {
		w.failed = append(w.failed, p[:min(len(p), 512-len(w.failed))]...)
	}
	if w.buf == nil {
		w.buf = responseBuffers.Get().(*[]byte)
	}
	*w.buf = append(*w.buf, p...)
	return len(p), nil
}

// done returns the writer's buffer to the pool.
func (w *discardWriter) done() {
	if w.buf != nil {
		*w.buf = (*w.buf)[:0]
		responseBuffers.Put(w.buf)
	}
}

// timed returns a client of the same server that does not decode
// responses, for the timed requests.
func (a *benchAPI) timed() *benchAPI {
	return &benchAPI{srv: a.srv, skipDecode: true}
}

func (a *benchAPI) search(q benchQuery) ([]string, error) {
	return a.send(benchRequest(http.MethodGet, q.searchURL, nil))
}

var lookupURL = &url.URL{Path: "/v1/lookup"}

func (a *benchAPI) lookup(q benchQuery) ([]string, error) {
	return a.send(benchRequest(http.MethodPost, lookupURL, q.lookupBody))
}

// benchRequest returns the request that the server reads from a client
// with the admin token, as httptest.NewRequest builds it but from an
// encoded URL and body, without parsing the request's text. A body is
// sent with Content-Type application/json, as the Go client sends it.
func benchRequest(method string, u *url.URL, body []byte) *http.Request {
	uc := *u
	r := &http.Request{
		Method: method, URL: &uc, RequestURI: u.RequestURI(),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:     http.Header{"Authorization": {"Bearer " + benchAdminToken}},
		Host:       "example.com",
		RemoteAddr: "192.0.2.1:1234",
		Body:       http.NoBody,
	}
	if body != nil {
		r.Header["Content-Type"] = []string{"application/json"}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	return r
}

// openBenchPostgres opens a PostgreSQL store of n variants of the corpus in
// a schema that is kept between runs, as openBenchStore keeps its file.
func openBenchPostgres(b *testing.B, name string, corpus []knowledge.Article, n int) (*postgres.Store, string) {
	b.Helper()
	url := testpg.URL(b)
	h := fnv.New64a()
	for _, a := range corpus {
		h.Write([]byte(a.ID + "\x00" + a.Title + "\x00" + a.Body + "\x00"))
	}
	schema := fmt.Sprintf("khub_bench_lookup_%d_%x_a%d", n, h.Sum64()>>32, fulltext.AnalyzerVersion)
	ctx := context.Background()
	s, err := postgres.Open(ctx, url, postgres.Options{Schema: schema})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })

	count, err := s.CountArticles(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if count == int64(n) {
		return s, schema
	}
	if count != 0 {
		b.Fatalf("schema %s holds %d articles, want 0 or %d: drop it and run again", schema, count, n)
	}
	b.Logf("seeding %d variants of %s into schema %s, kept for later runs", n, name, schema)
	start := time.Now()
	all := variants(corpus, n)

	// Several writers, because each commit waits for PostgreSQL.
	const writers = 4
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(all); i += writers {
				if _, err := s.SaveArticle(ctx, all[i], store.SaveOptions{}); err != nil {
					errs <- fmt.Errorf("seed %s: %w", all[i].ID, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d articles in %s", n, time.Since(start).Round(time.Second))
	return s, schema
}

// BenchmarkSearchLookup100kPostgres is BenchmarkSearchLookup100k on the
// PostgreSQL store: the store called directly and the API with its result
// cache warm, next to a plain PostgreSQL full-text query on the same
// schema: the words of the text joined by & (search) or | (lookup),
// ranked by ts_rank_cd.
func BenchmarkSearchLookup100kPostgres(b *testing.B) {
	name, corpus := largestCorpus(b)
	s, schema := openBenchPostgres(b, name, corpus, benchArticles)
	searches, lookups := judgedFor(b, name)
	ctx := context.Background()

	storeSearch := func(q benchQuery) ([]string, error) {
		res, err := s.Search(ctx, store.SearchQuery{Text: q.text, Limit: 10})
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(res.Hits))
		for i, h := range res.Hits {
			ids[i] = h.ID
		}
		return ids, nil
	}
	storeLookup := func(q benchQuery) ([]string, error) {
		res, err := lookup.Run(ctx, s, nil, lookup.Request{Text: q.text, Attributes: q.attributes, Limit: 5})
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(res.Hits))
		for i, h := range res.Hits {
			ids[i] = h.ID
		}
		return ids, nil
	}
	warm := newBenchAPI(b, s, resultcache.Config{})
	pool, err := pgxpool.New(ctx, testpg.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	plain := func(op string) func(q benchQuery) ([]string, error) {
		stmt := `SELECT id FROM ` + pgx.Identifier{schema, "articles"}.Sanitize() + `
			WHERE document @@ to_tsquery('simple', $1) AND status <> 'archived'
			ORDER BY ts_rank_cd(document, to_tsquery('simple', $1)) DESC LIMIT 10`
		return func(q benchQuery) ([]string, error) {
			words := fulltext.Words(q.text)
			if len(words) == 0 {
				return nil, nil
			}
			rows, err := pool.Query(ctx, stmt, strings.Join(words, op))
			if err != nil {
				return nil, err
			}
			return pgx.CollectRows(rows, pgx.RowTo[string])
		}
	}

	cases := []struct {
		name       string
		qs         []benchQuery
		run, timed func(benchQuery) ([]string, error)
	}{
		{"search/store", searches, storeSearch, nil},
		{"search/api-warm", searches, warm.search, warm.timed().search},
		{"search/postgres", searches, plain(" & "), nil},
		{"lookup/store", lookups, storeLookup, nil},
		{"lookup/api-warm", lookups, warm.lookup, warm.timed().lookup},
		{"lookup/postgres", lookups, plain(" | "), nil},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			p := meanPrecision(b, c.qs, c.run)
			timed := c.timed
			if timed == nil {
				timed = c.run
			}
			runClients(b, c.qs, p, timed)
		})
	}
}
