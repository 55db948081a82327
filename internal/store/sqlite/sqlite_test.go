package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/storetest"
)

// openTemp opens a store on a new file in t.TempDir and closes it when the
// test ends.
func openTemp(t *testing.T) *Store {
	t.Helper()
	return openTempWith(t, Options{})
}

func openTempWith(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "khub.db"), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// TestConformanceFTS5 runs the suite without the in-memory text index, so
// that searches take the FTS5 path that serves while the index builds.
func TestConformanceFTS5(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTempWith(t, Options{NoTextIndex: true}) })
}

func TestDataSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "khub.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := knowledge.Article{ID: "rb", Title: "Failover", Body: "Promote the replica.", Collection: "ops", Class: knowledge.ClassRunbook}
	a.Normalize()
	res, err := s.SaveArticle(ctx, a, store.SaveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateIntegration(ctx, knowledge.Integration{ID: "bot", Name: "Bot", Pattern: knowledge.PatternPush}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("re-open: %v", err)
	}
	defer s.Close()
	got, err := s.GetArticle(ctx, "rb")
	if err != nil {
		t.Fatalf("GetArticle after re-open: %v", err)
	}
	if got.Body != a.Body || got.Version != 1 || !got.UpdatedAt.Equal(res.Article.UpdatedAt) {
		t.Errorf("article after re-open = %+v, want %+v", got, res.Article)
	}
	if h, err := s.HeadCursor(ctx); err != nil || h != res.Change.Cursor {
		t.Errorf("HeadCursor after re-open = %d, %v; want %d", h, err, res.Change.Cursor)
	}
	res2, err := s.Search(ctx, store.SearchQuery{Text: "replica"})
	if err != nil || len(res2.Hits) != 1 {
		t.Errorf("Search after re-open = %+v, %v; want one hit", res2.Hits, err)
	}
	if _, err := s.GetIntegration(ctx, "bot"); err != nil {
		t.Errorf("GetIntegration after re-open: %v", err)
	}
}

func TestWALMode(t *testing.T) {
	s := openTemp(t)
	for name, db := range map[string]*sql.DB{"writer": s.writer.db, "reader": s.reader.db} {
		var mode string
		if err := db.QueryRowContext(context.Background(), "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" {
			t.Errorf("%s journal_mode = %q, want wal", name, mode)
		}
		var fk bool
		if err := db.QueryRowContext(context.Background(), "PRAGMA foreign_keys").Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if !fk {
			t.Errorf("%s foreign_keys is off, want on", name)
		}
	}
}

func TestReaderIsQueryOnly(t *testing.T) {
	s := openTemp(t)
	_, err := s.reader.ExecContext(context.Background(), "DELETE FROM changes")
	if err == nil {
		t.Error("a write through the read pool succeeded, want an error")
	}
}

func TestMigrationIdempotent(t *testing.T) {
	ctx := context.Background()
	files, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	want := len(files)
	path := filepath.Join(t.TempDir(), "khub.db")
	for i := range 3 {
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		var versions, applied int
		err = s.reader.QueryRowContext(ctx,
			"SELECT count(DISTINCT version_id), count(*) FROM goose_db_version WHERE version_id > 0").Scan(&versions, &applied)
		if err != nil {
			t.Fatal(err)
		}
		if versions != want || applied != want {
			t.Errorf("open %d: goose_db_version has %d versions in %d rows, want %d in %d", i, versions, applied, want, want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSearchIndexConsistent checks with FTS5's integrity-check that the
// index matches its content view after creates, edits, archivals and
// republications.
func TestSearchIndexConsistent(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	for i := range 20 {
		a := knowledge.Article{
			ID:         fmt.Sprintf("a%d", i%7),
			Title:      fmt.Sprintf("Title %d", i),
			Body:       fmt.Sprintf("Body %d with café and 👩‍💻", i),
			Collection: "ops",
			Class:      knowledge.ClassRunbook,
			Tags:       []string{fmt.Sprintf("tag%d", i%3), "a<b"},
		}
		switch i % 4 {
		case 2:
			a.Status = knowledge.StatusArchived
		case 3:
			a.Status = knowledge.StatusDeprecated
		}
		a.Normalize()
		if _, err := s.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.writer.ExecContext(ctx, "INSERT INTO article_fts (article_fts, rank) VALUES ('integrity-check', 1)")
	if err != nil {
		t.Errorf("integrity-check: %v", err)
	}
}

func TestOpenRejectsQuestionMark(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "khub?.db"), Options{})
	if err == nil {
		t.Error("Open of a path with '?' succeeded, want an error")
	}
}

// TestFTS5PagesRankAlike pages through a search whose words without the
// common one find a few more articles than a page: every page must come
// from one ranking, so no hit on a later page scores above one on an
// earlier page.
func TestFTS5PagesRankAlike(t *testing.T) {
	ctx := context.Background()
	s := openTempWith(t, Options{NoTextIndex: true})
	bodies := map[string]string{"a": "zebra alpha", "b": "zebra node", "c": "zebra beta", "y": "yak gamma"}
	for i := range 12 {
		bodies[fmt.Sprintf("n%02d", i)] = "node delta"
	}
	for id, body := range bodies {
		a := knowledge.Article{ID: id, Title: "Note " + id, Body: body, Collection: "kb", Class: knowledge.ClassReference}
		a.Normalize()
		if _, err := s.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []store.SearchHit
	cursor := ""
	for range 10 {
		res, err := s.Search(ctx, store.SearchQuery{Text: "zebra node yak", Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, res.Hits...)
		if cursor = res.Next; cursor == "" {
			break
		}
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].Score > seen[i-1].Score {
			t.Fatalf("hit %d, %s, scores %v above hit %d, %s, with %v", i, seen[i].ID, seen[i].Score, i-1, seen[i-1].ID, seen[i-1].Score)
		}
	}
}

// TestPagesSurviveScoreShift pages through a search for a word that
// every article contains, one hit a page, and adds long articles without it
// halfway. The word's weight leaves its floor and every score rises, so
// the cursor's score no longer places the page: the last hit's place
// does, and every article comes once, with the index and with FTS5.
func TestPagesSurviveScoreShift(t *testing.T) {
	for _, opts := range []Options{{}, {NoTextIndex: true}} {
		ctx := context.Background()
		s := openTempWith(t, opts)
		save := func(id, body string) {
			a := knowledge.Article{ID: id, Title: "Note " + id, Body: body, Collection: "kb", Class: knowledge.ClassReference}
			a.Normalize()
			if _, err := s.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 10 {
			save(fmt.Sprintf("short%d", i), "harbor")
			save(fmt.Sprintf("long%d", i), "harbor harbor harbor "+strings.Repeat("lorem ", 59))
		}
		seen := map[string]int{}
		cursor := ""
		for page := range 40 {
			if page == 12 {
				for i := range 30 {
					save(fmt.Sprintf("other%d", i), strings.Repeat("ipsum ", 1000))
				}
			}
			res, err := s.Search(ctx, store.SearchQuery{Text: "harbor", Limit: 1, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range res.Hits {
				seen[h.ID]++
			}
			if cursor = res.Next; cursor == "" {
				break
			}
		}
		if len(seen) != 20 {
			t.Errorf("NoTextIndex %v: the pages returned %d of the 20 articles: %v", opts.NoTextIndex, len(seen), seen)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("NoTextIndex %v: %s came %d times", opts.NoTextIndex, id, n)
			}
		}
	}
}
