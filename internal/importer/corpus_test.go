package importer

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corporaDir returns the folder of real knowledge bases named by
// KHUB_CORPORA_DIR, or skips the test.
func corporaDir(tb testing.TB) string {
	tb.Helper()
	dir := os.Getenv("KHUB_CORPORA_DIR")
	if dir == "" {
		tb.Skip("KHUB_CORPORA_DIR is not set: point it at a folder whose subfolders are Markdown knowledge bases to run the corpus tests")
	}
	return dir
}

// corpusFolders lists the immediate subfolders of root.
func corpusFolders(tb testing.TB, root string) []string {
	tb.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		tb.Fatalf("%s has no subfolders", root)
	}
	return names
}

// countFiles counts the Markdown and other files under dir the way Scan
// sees them: hidden entries and linked folders are left out.
func countFiles(tb testing.TB, dir string) (markdown, other int) {
	tb.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if info, err := os.Stat(p); err == nil && info.IsDir() {
				return nil
			}
		}
		if isMarkdown(p) {
			markdown++
		} else {
			other++
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return markdown, other
}

func TestScanCorpora(t *testing.T) {
	root := corporaDir(t)
	for _, name := range corpusFolders(t, root) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(root, name)
			res, err := Scan(dir, Options{Collection: name})
			if err != nil {
				t.Fatal(err)
			}
			markdown, other := countFiles(t, dir)
			t.Logf("%s: %d Markdown files, %d imported, %d skipped, %d not Markdown, in %s",
				name, markdown, len(res.Documents), len(res.Skipped), res.NotMarkdown, res.Elapsed)
			for _, s := range res.Skipped {
				t.Logf("  skipped %s", s)
			}

			if got := len(res.Documents) + len(res.Skipped); got != markdown {
				t.Errorf("%d documents + skips, want one per Markdown file (%d)", got, markdown)
			}
			if res.NotMarkdown != other {
				t.Errorf("NotMarkdown = %d, want %d", res.NotMarkdown, other)
			}
			if len(res.Documents) == 0 {
				t.Error("nothing imported")
			}
			for _, s := range res.Skipped {
				if strings.TrimSpace(s.Reason) == "" {
					t.Errorf("%s skipped without a reason", s.Path)
				}
			}

			ids := map[string]string{}
			for _, d := range res.Documents {
				a := d.Article
				if first, dup := ids[a.ID]; dup {
					t.Errorf("id %q used by %s and %s", a.ID, first, d.Path)
				}
				ids[a.ID] = d.Path
				if err := a.Validate(); err != nil {
					t.Errorf("%s: %v", d.Path, err)
				}
				if a.Collection != name {
					t.Errorf("%s: collection %q, want %q", d.Path, a.Collection, name)
				}
				// Leftover Markdown syntax means the title stripping missed
				// a case.
				if strings.Contains(a.Title, "](") || strings.Contains(a.Title, "**") || strings.HasPrefix(a.Title, "#") {
					t.Errorf("%s: title %q still contains Markdown", d.Path, a.Title)
				}
			}
		})
	}
}

// BenchmarkScan scans the corpus folder with the most Markdown files and
// reports files per second.
func BenchmarkScan(b *testing.B) {
	root := corporaDir(b)
	largest, most := "", -1
	for _, name := range corpusFolders(b, root) {
		if n, _ := countFiles(b, filepath.Join(root, name)); n > most {
			largest, most = name, n
		}
	}
	dir := filepath.Join(root, largest)
	b.Logf("scanning %s: %d Markdown files", largest, most)

	b.ResetTimer()
	for b.Loop() {
		if _, err := Scan(dir, Options{Collection: largest}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(most)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
}
