package sqlite

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/khub-dev/khub/internal/importer"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/fulltext"
)

// generated returns n articles of words drawn from a small vocabulary, so
// that queries match many of them with varied scores.
func generated(n int, seed uint64) []knowledge.Article {
	vocab := strings.Fields("node disk full pod crash looping etcd leader certificate rotation rotate memory " +
		"alert runbook restart network database stale failover replica primary KubePodCrashLooping café sécurité")
	r := rand.New(rand.NewPCG(seed, 1))
	text := func(k int) string {
		w := make([]string, k)
		for i := range w {
			w[i] = vocab[r.IntN(len(vocab))]
		}
		return strings.Join(w, " ")
	}
	out := make([]knowledge.Article, n)
	for i := range out {
		out[i] = knowledge.Article{ID: fmt.Sprintf("art-%04d", i), Title: text(1 + r.IntN(3)), Body: text(10 + r.IntN(200)),
			Collection: []string{"ops", "sec"}[i%2], Class: knowledge.ClassRunbook, Tags: []string{vocab[r.IntN(len(vocab))]}}
		out[i].Normalize()
	}
	return out
}

// searchBoth runs a search on the store with the text index and on one
// without it, and fails the test unless both find as many hits.
func searchBoth(t *testing.T, mem, fts *Store, q store.SearchQuery) (got, want store.SearchResult) {
	t.Helper()
	ctx := context.Background()
	want, err := fts.Search(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	got, err = mem.Search(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Hits) != len(want.Hits) {
		t.Fatalf("%q: %d hits, FTS5 gives %d", q.Text, len(got.Hits), len(want.Hits))
	}
	return got, want
}

var indexQueries = []store.SearchQuery{
	{Text: "node disk"}, {Text: "crash looping"}, {Text: `"crash looping"`}, {Text: "rota*"},
	{Text: "etcd leader failover", Any: true}, {Text: "securite"}, {Text: "kubepodcrashlooping"},
	{Text: "replica primary stale", Any: true, TitleFirst: true}, {Text: "database", Limit: 50},
	{Text: "memory alert", Filters: []knowledge.Scope{{Collections: []string{"sec"}}}},
}

// TestTextIndexRanksAsFTS5 compares the in-memory index with FTS5's
// bm25() on the same file: the same hits, in the same order but for
// near ties, with the same scores.
func TestTextIndexRanksAsFTS5(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "khub.db")
	fts, err := Open(path, Options{NoTextIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fts.Close()
	for _, a := range generated(600, 1) {
		if _, err := fts.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mem, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if mem.textIndexReady() == nil {
		t.Fatal("the text index of 600 articles is not built after Open")
	}
	for _, q := range indexQueries {
		q.Facets = true
		got, want := searchBoth(t, mem, fts, q)
		for i := range got.Hits {
			g, w := got.Hits[i], want.Hits[i]
			if math.Abs(g.Score-w.Score) > 1e-9*math.Abs(w.Score) {
				t.Errorf("%q: hit %d is %s with %v, FTS5 has %s with %v", q.Text, i, g.ID, g.Score, w.ID, w.Score)
			}
			if g.Snippet != w.Snippet || g.Title != w.Title || g.Version != w.Version {
				t.Errorf("%q: hit %s shows %q, FTS5's %s shows %q", q.Text, g.ID, g.Snippet, w.ID, w.Snippet)
			}
		}
		if fmt.Sprint(got.Facets) != fmt.Sprint(want.Facets) {
			t.Errorf("%q: facets %v, FTS5 gives %v", q.Text, got.Facets, want.Facets)
		}
	}
}

// TestTextIndexBuildsBesideWrites opens a store whose index is built in
// the background while articles are written, changed and archived: every
// write must reach the index, whether it committed before, during or
// after the build.
func TestTextIndexBuildsBesideWrites(t *testing.T) {
	defer func(n int64) { syncBuildLimit = n }(syncBuildLimit)
	syncBuildLimit = 0
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "khub.db")
	seed, err := Open(path, Options{NoTextIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	arts := generated(3000, 2)
	for _, a := range arts[:2500] {
		if _, err := seed.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	seed.Close()

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i, a := range arts[2500:] {
			if _, err := s.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
				t.Error(err)
			}
			// Change and archive some of the seeded ones too.
			old := arts[i*4]
			switch i % 3 {
			case 0:
				old.Body += " failover"
				_, err = s.SaveArticle(ctx, old, store.SaveOptions{})
			case 1:
				old.Status = knowledge.StatusArchived
				_, err = s.SaveArticle(ctx, old, store.SaveOptions{})
			}
			if err != nil {
				t.Error(err)
			}
		}
	})
	if err := s.WaitTextIndex(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if s.textIndexReady() == nil {
		t.Fatal("the text index is not ready after WaitTextIndex")
	}
	count, err := s.CountArticles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var live int64
	err = s.read(ctx, func(tx *txn) error {
		return tx.QueryRowContext(ctx, `SELECT count(*) FROM article_search`).Scan(&live)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.text.ix.Len(); int64(got) != live {
		t.Fatalf("index holds %d articles, the store %d that are not archived (%d in all)", got, live, count)
	}
	fts, err := Open(path, Options{NoTextIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fts.Close()
	for _, q := range []store.SearchQuery{{Text: "failover", Limit: 100}, {Text: "node*", Limit: 100, Any: true}} {
		got, want := searchBoth(t, s, fts, q)
		for i := range got.Hits {
			if got.Hits[i].ID != want.Hits[i].ID && math.Abs(got.Hits[i].Score-want.Hits[i].Score) > 1e-3*math.Abs(want.Hits[i].Score) {
				t.Fatalf("%q: hit %d is %s, FTS5 has %s", q.Text, i, got.Hits[i].ID, want.Hits[i].ID)
			}
		}
	}
}

// A word repeated more times than a 16-bit count holds scores as in FTS5.
func TestTextIndexHugeCounts(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "khub.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, a := range []knowledge.Article{
		{ID: "y-big", Title: "big", Body: strings.Repeat("spam ", 70000)},
		{ID: "a-mid", Title: "mid", Body: strings.Repeat("spam ", 66000) + strings.Repeat("eggs ", 4000)},
		{ID: "small", Title: "small", Body: "spam and eggs"},
	} {
		a.Collection, a.Class = "c", knowledge.ClassReference
		a.Normalize()
		if _, err := s.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	fts, err := Open(path, Options{NoTextIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fts.Close()
	for _, q := range []string{"spam", "spa*", `"spam spam"`, "eggs"} {
		got, want := searchBoth(t, s, fts, store.SearchQuery{Text: q, NoSnippets: true})
		for i := range got.Hits {
			g, w := got.Hits[i], want.Hits[i]
			if g.ID != w.ID || math.Abs(g.Score-w.Score) > 1e-9*math.Abs(w.Score) {
				t.Errorf("%q: hit %d is %s with %v, FTS5 has %s with %v", q, i, g.ID, g.Score, w.ID, w.Score)
			}
		}
	}
}

// TestSnippetHintsOnCorpora compares the snippets that the index's hints
// cut with those of tokenizing each whole body, on the real knowledge
// bases.
func TestSnippetHintsOnCorpora(t *testing.T) {
	root := os.Getenv("KHUB_CORPORA_DIR")
	if root == "" {
		t.Skip("KHUB_CORPORA_DIR is not set: point it at the folder of Markdown knowledge bases to compare snippets on them")
	}
	ctx := context.Background()
	s := openTemp(t)

	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		res, err := importer.Scan(filepath.Join(root, e.Name()), importer.Options{Collection: e.Name()})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range res.Documents {
			if _, err := s.SaveArticle(ctx, d.Article, store.SaveOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}

	queries := []string{"pod crash looping", "crash", "certificate rotat*", `"disk full"`, "etcd leader", "kubelet",
		"alertmanager failed to send", "sql injection", "password storage", "node not ready", "prometheus remote write",
		"ovn database", "kube api error budget", "persistent volume", "cpu throttling", "token", "cross site scripting",
		`"crash looping"`, "kube*", "notready"}
	hinted, differ := 0, 0
	for _, text := range queries {
		res, err := s.Search(ctx, store.SearchQuery{Text: text, Limit: 20})
		if err != nil {
			t.Fatal(err)
		}
		query := fulltext.Parse(text)
		for _, h := range res.Hits {
			a, err := s.GetArticle(ctx, h.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := query.HighlightWhole(a.Title, a.Tags, a.Body)
			if !slices.Equal(h.Matched, want.Matched) {
				t.Errorf("%q, %s: matched %q, the whole body gives %q", text, h.ID, h.Matched, want.Matched)
			}
			// Lookups cut their hits' snippets through Store.HighlightHits.
			if got, ok, err := s.HighlightHits(ctx, []*store.SearchHit{&h}, &query); err != nil || !ok[0] || got[0].Text != h.Snippet || !slices.Equal(got[0].Matched, h.Matched) {
				t.Errorf("%q, %s: HighlightHits gives %v, %v, %v; the search %q", text, h.ID, got, ok, err, h.Snippet)
			}
			seq, _, _ := s.text.ix.Seq(h.ID)
			if s.text.ix.Hints([]int64{seq}, query.Terms)[0] == nil {
				continue
			}
			hinted++
			if h.Snippet != want.Text {
				differ++
				t.Logf("%q, %s:\n  hint:  %s\n  whole: %s", text, h.ID, h.Snippet, want.Text)
			}
		}
	}

	// A hint places a match in a camel-case part at its word, which the
	// whole body's window counts the same way, so only rare windows of
	// equal merit may differ.
	if differ*50 > hinted {
		t.Errorf("%d of %d snippets cut from hints differ from the whole body's", differ, hinted)
	}
	t.Logf("%d of %d snippets cut from hints differ from the whole body's", differ, hinted)
}

// TestSnippetsFollowNewVersions checks the body cache and HighlightHits
// across a change: a search after the change shows the new body's words,
// and HighlightHits refuses the hit of the old version, whose snippet the
// caller must cut from the article it reads. With the cache off, the
// snippets are the same.
func TestSnippetsFollowNewVersions(t *testing.T) {
	for _, cacheBytes := range []int64{0, -1} {
		t.Run(fmt.Sprintf("cache=%d", cacheBytes), func(t *testing.T) {
			ctx := context.Background()
			s, err := Open(filepath.Join(t.TempDir(), "khub.db"), Options{BodyCacheBytes: cacheBytes})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			save := func(body string) {
				t.Helper()
				a := knowledge.Article{ID: "rb", Title: "Disk runbook", Body: body, Collection: "c", Class: knowledge.ClassRunbook}
				a.Normalize()
				if _, err := s.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			search := func() store.SearchHit {
				t.Helper()
				res, err := s.Search(ctx, store.SearchQuery{Text: "disk"})
				if err != nil || len(res.Hits) != 1 {
					t.Fatalf("search disk: %d hits, %v", len(res.Hits), err)
				}
				return res.Hits[0]
			}
			query := fulltext.Parse("disk")

			save("Free the disk with the cleanup job.")
			old := search()
			if !strings.Contains(old.Snippet, "cleanup") {
				t.Fatalf("first snippet %q lacks the body's words", old.Snippet)
			}
			if hl, ok, err := s.HighlightHits(ctx, []*store.SearchHit{&old}, &query); err != nil || !ok[0] || hl[0].Text != old.Snippet {
				t.Errorf("HighlightHits of the current hit = %v, %v, %v; want the search's %q", hl, ok, err, old.Snippet)
			}

			save("Grow the disk volume instead.")
			cur := search()
			if !strings.Contains(cur.Snippet, "volume") || cur.Version != old.Version+1 {
				t.Errorf("after the change: version %d, snippet %q; want version %d with the new body", cur.Version, cur.Snippet, old.Version+1)
			}
			hl, ok, err := s.HighlightHits(ctx, []*store.SearchHit{&old, &cur}, &query)
			if err != nil || ok[0] || !ok[1] || hl[1].Text != cur.Snippet {
				t.Errorf("HighlightHits of the replaced and the current version = %v, %v, %v; want only the current one, %q", hl, ok, err, cur.Snippet)
			}
		})
	}
}

// TestKnownHeadWaitsForTheIndex checks the order that cached search
// results rely on: once KnownHead names a change, searches find it. The
// bodies are large, so that the index takes a while to analyze each one
// after its commit, while a reader polls the head.
func TestKnownHeadWaitsForTheIndex(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "khub.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	filler := strings.Repeat("filler words of a long runbook ", 20000)
	save := func(v int) store.SaveResult {
		a := knowledge.Article{ID: "big", Title: "Big runbook", Body: fmt.Sprintf("stamp%d %s", v, filler),
			Collection: "c", Class: knowledge.ClassRunbook}
		a.Normalize()
		res, err := s.SaveArticle(ctx, a, store.SaveOptions{})
		if err != nil {
			t.Error(err)
		}
		return res
	}
	save(0)
	for v := 1; v <= 5; v++ {
		before := s.KnownHead()
		done := make(chan store.SaveResult)
		go func() { done <- save(v) }()
		for s.KnownHead() == before {
			runtime.Gosched()
		}
		res, err := s.Search(ctx, store.SearchQuery{Text: fmt.Sprintf("stamp%d", v), NoSnippets: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) != 1 {
			t.Errorf("version %d: KnownHead moved to %d, but a search finds %d hits for its stamp", v+1, s.KnownHead(), len(res.Hits))
		}
		if r := <-done; r.Change.Cursor != s.KnownHead() {
			t.Errorf("KnownHead = %d after the write of change %d", s.KnownHead(), r.Change.Cursor)
		}
	}
	if h, err := s.HeadCursor(ctx); err != nil || h != s.KnownHead() {
		t.Errorf("HeadCursor = %d, %v; KnownHead = %d", h, err, s.KnownHead())
	}
}

// TestHitsCarryMetadataFolds checks that hits of a search and of a
// listing carry the metadata hashes of their version while the text index
// serves, and none without it.
func TestHitsCarryMetadataFolds(t *testing.T) {
	ctx := context.Background()
	a := knowledge.Article{ID: "quorum", Title: "Restoring quorum", Body: "Steps to restore quorum.", Collection: "ops",
		Class: knowledge.ClassRunbook, Metadata: map[string]string{"Team": "Platform"}}
	a.Normalize()
	want := knowledge.MetadataFoldHashes(a.Metadata)
	for _, opts := range []Options{{}, {NoTextIndex: true}} {
		s := openTempWith(t, opts)
		if _, err := s.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, q := range []store.SearchQuery{
			{Text: "quorum"},
			{Filters: []knowledge.Scope{{Metadata: map[string]string{"Team": "Platform"}}}},
		} {
			res, err := s.Search(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Hits) != 1 {
				t.Fatalf("%+v: %d hits, want 1", q, len(res.Hits))
			}
			got := res.Hits[0].MetadataFolds
			if opts.NoTextIndex && got != nil || !opts.NoTextIndex && !slices.Equal(got, want) {
				t.Errorf("NoTextIndex %v, %+v: MetadataFolds = %v, want %v", opts.NoTextIndex, q, got, want)
			}
		}
	}
}
