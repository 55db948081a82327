package app_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/app"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/sqlite"
)

// benchCorpusSize is the number of articles that the read benchmarks run
// over.
const benchCorpusSize = 100_000

// seededDataDir returns a data directory in the temporary directory whose
// khub.db holds n generated articles, one version and one change-log entry
// each. They are written through the store on the first run and kept for
// later runs, because seeding 100,000 articles takes minutes. A database
// with another count is an error, so that a stale file cannot skew figures.
func seededDataDir(b *testing.B, n int) string {
	b.Helper()
	ctx := context.Background()
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("khub-bench-app-%s-%d", benchCorpusVersion, n))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}

	path := filepath.Join(dir, "khub.db")
	s, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		b.Fatalf("open %s: %v", path, err)
	}
	defer s.Close()
	count, err := s.CountArticles(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if count == int64(n) {
		return dir
	}
	if count != 0 {
		b.Fatalf("%s holds %d articles, want 0 or %d: delete %s and run again", path, count, n, dir)
	}

	b.Logf("seeding %d articles into %s, kept for later runs", n, path)
	r := mathrand.New(mathrand.NewPCG(1, 2))
	for i := range n {
		a := benchCorpusArticle(r, i)
		a.Normalize()
		if err := a.Validate(); err != nil {
			b.Fatalf("generated article %s is invalid: %v", a.ID, err)
		}
		if _, err := s.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// benchCorpusVersion names the generator in the data directory's name.
// Change it when benchCorpusArticle changes, so that a kept database of
// the old corpus is not reused.
const benchCorpusVersion = "v1"

// benchTopics is the number of topics in the corpus. Each article has one
// topic word, such as "topic0042", so a query for a topic matches about
// benchCorpusSize/benchTopics articles, as a specific lookup would.
const benchTopics = 1000

// benchWords is the common vocabulary of generated articles, so a query
// for one of these words matches nearly every article.
var benchWords = strings.Fields(`database failover replica promote primary lag
	backup restore snapshot cluster node network latency timeout retry queue
	worker deploy rollback release canary alert page incident escalate owner
	customer account invoice refund contract renewal policy access password
	token rotate certificate expiry audit compliance retention privacy safety`)

// benchCorpusArticle returns article i of the benchmark corpus: a runbook
// or reference in collection bench with a topic word and about 150 words of
// body, the size of a short knowledge-base page.
func benchCorpusArticle(r *mathrand.Rand, i int) knowledge.Article {
	word := func() string { return benchWords[r.IntN(len(benchWords))] }
	topic := fmt.Sprintf("topic%04d", i%benchTopics)
	var body strings.Builder
	body.WriteString(topic)
	for range 150 {
		body.WriteByte(' ')
		body.WriteString(word())
	}
	class := knowledge.Class("runbook")
	if i%2 == 1 {
		class = "reference"
	}
	return knowledge.Article{
		ID:         fmt.Sprintf("a%06d", i),
		Title:      fmt.Sprintf("%s %s %s", topic, word(), word()),
		Body:       body.String(),
		Collection: "bench",
		Class:      class,
		Tags:       []string{word(), word()},
		Metadata:   map[string]string{"team": word()},
	}
}

// startBenchHub starts a hub on the seeded corpus and returns a pull
// client scoped to it with a 15m freshness window. The integration is
// deleted again when the benchmark ends, so the kept database does not
// collect them.
func startBenchHub(b *testing.B) *client.Client {
	b.Helper()
	dir := seededDataDir(b, benchCorpusSize)
	a, admin := startHub(b, func(c *app.Config) { c.DataDir = dir })
	// The SQLite store builds its text index in the background after it
	// opens. Reads timed during the build would measure the build.
	if ix, ok := a.Store.(interface{ WaitTextIndex(context.Context) error }); ok {
		if err := ix.WaitTextIndex(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	in, err := admin.CreateIntegration(context.Background(), client.IntegrationRequest{
		Name: "bench-" + hex.EncodeToString(suffix), Freshness: "15m", Lookups: true,
		Scope: client.Scope{Collections: []string{"bench"}, Classes: []string{"runbook", "reference"}},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := admin.DeleteIntegration(context.Background(), in.ID); err != nil {
			b.Errorf("delete integration %s: %v", in.ID, err)
		}
	})
	return client.New(admin.BaseURL(), in.Token)
}

// benchGet sends one GET with the pull token and returns the response, its
// body and the time until the whole body was read.
func benchGet(b *testing.B, hc *http.Client, pc *client.Client, path string, header ...string) (*http.Response, []byte, time.Duration) {
	req, err := http.NewRequest(http.MethodGet, pc.BaseURL()+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+pc.Token())
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatalf("GET %s: %v", path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	if err != nil {
		b.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp, body, elapsed
}

// BenchmarkArticleReads measures reads over 100,000 articles with a pull
// token, one request at a time on a kept-alive loopback connection, so the
// figures are latency: GET /v1/articles/{id} of random articles (200),
// revalidation of those with If-None-Match (304), and revalidation of one
// search for a topic of about 100 articles (304). Between commits a search
// revalidation is served from the node's result cache.
func BenchmarkArticleReads(b *testing.B) {
	pc := startBenchHub(b)
	hc := &http.Client{}
	r := mathrand.New(mathrand.NewPCG(3, 4))
	randomPath := func() string { return fmt.Sprintf("/v1/articles/a%06d", r.IntN(benchCorpusSize)) }

	b.Run("get", func(b *testing.B) {
		var lat []time.Duration
		for b.Loop() {
			resp, body, elapsed := benchGet(b, hc, pc, randomPath())
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			lat = append(lat, elapsed)
		}
		reportLatency(b, lat, "")
	})
	b.Run("revalidate", func(b *testing.B) {
		var lat []time.Duration
		for b.Loop() {
			resp, body, elapsed := benchGet(b, hc, pc, randomPath(), "If-None-Match", `"v1"`)
			if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
				b.Fatalf("status %d with %d bytes, want 304 without a body", resp.StatusCode, len(body))
			}
			lat = append(lat, elapsed)
		}
		reportLatency(b, lat, "")
	})
	b.Run("revalidate-search", func(b *testing.B) {
		const path = "/v1/search?q=topic0042+failover&limit=20"
		resp, body, _ := benchGet(b, hc, pc, path)
		var res client.SearchResult
		if err := json.Unmarshal(body, &res); resp.StatusCode != http.StatusOK || err != nil || len(res.Hits) == 0 {
			b.Fatalf("search status %d found nothing: %s", resp.StatusCode, body)
		}
		tag := resp.Header.Get("ETag")
		var lat []time.Duration
		for b.Loop() {
			resp, body, elapsed := benchGet(b, hc, pc, path, "If-None-Match", tag)
			if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
				b.Fatalf("status %d with %d bytes, want 304 without a body", resp.StatusCode, len(body))
			}
			lat = append(lat, elapsed)
		}
		reportLatency(b, lat, "")
	})
}

// BenchmarkChangeFeed reads the change log of 100,000 articles through
// GET /v1/changes with a pull token, one page per iteration, starting over
// at cursor 0 after the last page. Each page also records the pull cursor,
// as every feed read does. The page sizes are 500 and 1000, the largest
// that the API allows.
func BenchmarkChangeFeed(b *testing.B) {
	pc := startBenchHub(b)
	hc := &http.Client{}
	for _, limit := range []int{500, 1000} {
		b.Run(fmt.Sprintf("limit-%d", limit), func(b *testing.B) {
			var after, events int64
			var lat []time.Duration
			var total time.Duration
			for b.Loop() {
				resp, body, elapsed := benchGet(b, hc, pc, fmt.Sprintf("/v1/changes?after=%d&limit=%d", after, limit))
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				var page client.ChangesPage
				if err := json.Unmarshal(body, &page); err != nil {
					b.Fatal(err)
				}
				events += int64(len(page.Changes))
				lat = append(lat, elapsed)
				total += elapsed
				after = page.Next
				if len(page.Changes) < limit {
					after = 0
				}
			}
			b.ReportMetric(float64(events)/total.Seconds(), "events/s")
			reportLatency(b, lat, "page-")
		})
	}
}
