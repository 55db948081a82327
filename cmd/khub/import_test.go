package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/app"
)

func startHub(t testing.TB) (*app.App, *client.Client) {
	t.Helper()
	a, err := app.Open(app.Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	return a, client.New(a.URL(), a.AdminToken())
}

// corporaDir returns the folder of real knowledge bases, or skips.
func corporaDir(t *testing.T) string {
	dir := os.Getenv("KHUB_CORPORA_DIR")
	if dir == "" {
		t.Skip("KHUB_CORPORA_DIR is not set: point it at a folder of Markdown knowledge bases to run the corpus import tests")
	}
	return dir
}

func TestImportCorpora(t *testing.T) {
	root := corporaDir(t)
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			_, c := startHub(t)
			ctx := context.Background()
			dir := filepath.Join(root, e.Name())
			opts := importOptions{collection: e.Name(), workers: 4}

			first, err := runImport(ctx, c, dir, opts, io.Discard, false)
			if err != nil {
				t.Fatal(err)
			}
			// Pages with no text (Hugo section indexes, stubs) are skipped
			// by design; anything else skipped points at a parser gap.
			unreadable := 0
			for _, s := range first.Skipped {
				t.Logf("skipped %s: %s", s.Path, s.Reason)
				if !strings.Contains(s.Reason, "empty") {
					unreadable++
				}
			}
			imported := first.Created + first.Updated
			t.Logf("%s: %d imported, %d skipped, %d not Markdown in %s", e.Name(), imported, len(first.Skipped), first.NotMarkdown, first.Elapsed)
			if imported == 0 {
				t.Fatal("nothing imported")
			}
			if unreadable > imported/20 {
				t.Errorf("%d of %d files could not be read; more than 5%% suggests a parser gap", unreadable, imported)
			}
			res, err := c.Search(ctx, "", client.SearchOptions{Collections: []string{e.Name()}, Limit: 1})
			if err != nil || len(res.Hits) != 1 {
				t.Errorf("imported articles are not searchable: %v %+v", err, res.Hits)
			}

			again, err := runImport(ctx, c, dir, opts, io.Discard, false)
			if err != nil {
				t.Fatal(err)
			}
			if again.Created+again.Updated != 0 || again.Unchanged != imported {
				t.Errorf("re-import: %d created, %d updated, %d unchanged; want 0, 0, %d", again.Created, again.Updated, again.Unchanged, imported)
			}
		})
	}
}

func TestImportChangedFileMakesOneVersion(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.md", "---\nid: doc-a\nclass: policy\n---\n# Travel policy\n\nBook economy.\n")
	write("b.md", "# Disk full\n\nDelete old logs.\n")
	write("bad.md", "# Broken \xff\xfe bytes\n")
	opts := importOptions{collection: "handbook", class: "runbook", workers: 2}

	first, err := runImport(ctx, c, dir, opts, io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	if first.Created != 2 || len(first.Skipped) != 1 {
		t.Fatalf("first import: %d created, %d skipped; want 2 and 1", first.Created, len(first.Skipped))
	}
	if first.Skipped[0].Path != "bad.md" {
		t.Errorf("skipped path = %q, want bad.md", first.Skipped[0].Path)
	}

	write("a.md", "---\nid: doc-a\nclass: policy\n---\n# Travel policy\n\nBook economy; trains under 4 hours.\n")
	second, err := runImport(ctx, c, dir, opts, io.Discard, false)
	if err != nil {
		t.Fatal(err)
	}
	if second.Updated != 1 || second.Unchanged != 1 {
		t.Errorf("second import: %d updated, %d unchanged; want 1 and 1", second.Updated, second.Unchanged)
	}
	a, err := c.GetArticle(ctx, "doc-a")
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != 2 || a.Class != "policy" {
		t.Errorf("doc-a: version %d class %s, want 2 policy", a.Version, a.Class)
	}
}
