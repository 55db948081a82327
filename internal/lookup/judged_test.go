package lookup_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/app"
	"github.com/khub-dev/khub/internal/importer"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// corpora are the subfolders of KHUB_CORPORA_DIR that the judged queries
// refer to; each is imported as a collection of its own name.
var corpora = []string{"openshift-runbooks", "owasp-cheatsheets", "prometheus-runbooks"}

// examplesDir is the project's example knowledge base, imported as
// collection "examples".
const examplesDir = "../../examples/kb"

// judgedSet is testdata/judged.yaml.
type judgedSet struct {
	Floors struct {
		Search float64 `yaml:"search"`
		Lookup float64 `yaml:"lookup"`
	} `yaml:"floors"`
	Search []searchCase `yaml:"search"`
	Lookup []lookupCase `yaml:"lookup"`
}

type searchCase struct {
	Q        string   `yaml:"q"`
	Relevant []string `yaml:"relevant"`
}

type lookupCase struct {
	Text       string            `yaml:"text"`
	Attributes map[string]string `yaml:"attributes"`
	Relevant   []string          `yaml:"relevant"`
}

func loadJudged(tb testing.TB) judgedSet {
	tb.Helper()
	b, err := os.ReadFile("testdata/judged.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	var j judgedSet
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&j); err != nil {
		tb.Fatalf("testdata/judged.yaml: %v", err)
	}
	return j
}

// corporaDir returns KHUB_CORPORA_DIR or skips the test.
func corporaDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("KHUB_CORPORA_DIR")
	if dir == "" {
		tb.Skip("KHUB_CORPORA_DIR is not set: point it at the folder with openshift-runbooks, owasp-cheatsheets and prometheus-runbooks to measure search and lookup precision")
	}
	return dir
}

// scanCorpus returns the articles of one knowledge base as the importer
// reads them.
func scanCorpus(tb testing.TB, dir, collection string) []knowledge.Article {
	tb.Helper()
	res, err := importer.Scan(dir, importer.Options{Collection: collection})
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]knowledge.Article, len(res.Documents))
	for i, d := range res.Documents {
		out[i] = d.Article
	}
	return out
}

// judgedArticles returns every article the judged queries run over.
func judgedArticles(tb testing.TB) []knowledge.Article {
	tb.Helper()
	root := corporaDir(tb)
	var all []knowledge.Article
	for _, name := range corpora {
		all = append(all, scanCorpus(tb, filepath.Join(root, name), name)...)
	}
	return append(all, scanCorpus(tb, examplesDir, "examples")...)
}

// precisionAt5 returns the share of the first five ids that are relevant,
// and the relevant ids among the first five.
func precisionAt5(ids []string, relevant []string) (float64, []string) {
	var hits []string
	for _, id := range ids[:min(5, len(ids))] {
		if slices.Contains(relevant, id) {
			hits = append(hits, id)
		}
	}
	return float64(len(hits)) / 5, hits
}

// TestJudgedPrecision imports the corpora and the example knowledge base
// into a hub on SQLite, runs every judged search and lookup through the
// API, and fails when the mean precision at 5 of either drops below its
// floor in testdata/judged.yaml.
func TestJudgedPrecision(t *testing.T) {
	articles := judgedArticles(t)
	j := loadJudged(t)
	if len(j.Search) < 20 || len(j.Lookup) < 15 {
		t.Fatalf("testdata/judged.yaml has %d searches and %d lookups, want at least 20 and 15", len(j.Search), len(j.Lookup))
	}

	a, err := app.Open(app.Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	ids := map[string]bool{}
	for _, art := range articles {
		if _, err := a.Hub.SaveArticle(ctx, art, store.SaveOptions{}); err != nil {
			t.Fatalf("import %s: %v", art.ID, err)
		}
		ids[art.ID] = true
	}
	t.Logf("imported %d articles", len(ids))
	checkIDs := func(what string, relevant []string) {
		for _, id := range relevant {
			if !ids[id] {
				t.Errorf("%s: relevant id %q is not an imported article: correct testdata/judged.yaml", what, id)
			}
		}
	}
	c := client.New(a.URL(), a.AdminToken())

	var sum float64
	for _, q := range j.Search {
		checkIDs("search "+q.Q, q.Relevant)
		res, err := c.Search(ctx, q.Q, client.SearchOptions{Limit: 5})
		if err != nil {
			t.Fatalf("search %q: %v", q.Q, err)
		}
		got := make([]string, len(res.Hits))
		for i, h := range res.Hits {
			got[i] = h.ID
		}
		p, _ := precisionAt5(got, q.Relevant)
		sum += p
		t.Logf("search P@5 %.1f  %-40q top: %s", p, q.Q, strings.Join(shortIDs(got), " "))
	}
	searchP := sum / float64(len(j.Search))

	sum = 0
	for _, q := range j.Lookup {
		subject, _, _ := strings.Cut(q.Text, "\n")
		checkIDs("lookup "+subject, q.Relevant)
		res, err := c.Lookup(ctx, client.LookupRequest{Text: q.Text, Attributes: q.Attributes, Limit: 5})
		if err != nil {
			t.Fatalf("lookup %q: %v", subject, err)
		}
		got := make([]string, len(res.Hits))
		for i, h := range res.Hits {
			got[i] = h.ID
		}
		p, _ := precisionAt5(got, q.Relevant)
		sum += p
		t.Logf("lookup P@5 %.1f  %-40q top: %s", p, subject, strings.Join(shortIDs(got), " "))
	}
	lookupP := sum / float64(len(j.Lookup))

	t.Logf("mean precision at 5: search %.3f over %d queries (floor %.2f), lookup %.3f over %d queries (floor %.2f)",
		searchP, len(j.Search), j.Floors.Search, lookupP, len(j.Lookup), j.Floors.Lookup)
	if searchP < j.Floors.Search {
		t.Errorf("search precision at 5 is %.3f, below the floor %.2f in testdata/judged.yaml", searchP, j.Floors.Search)
	}
	if lookupP < j.Floors.Lookup {
		t.Errorf("lookup precision at 5 is %.3f, below the floor %.2f in testdata/judged.yaml", lookupP, j.Floors.Lookup)
	}
}

// shortIDs drops the folder part of corpus ids for the log.
func shortIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		if k := strings.LastIndex(id, "."); k >= 0 {
			id = id[k+1:]
		}
		out[i] = id
	}
	return out
}
