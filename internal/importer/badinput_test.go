package importer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScanSkipsLinksOutsideRoot checks that a symbolic link to a file
// outside the import folder is skipped with a reason, directly or through
// another link, while a link to a file inside the folder is read.
func TestScanSkipsLinksOutsideRoot(t *testing.T) {
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"passwd": "root:x:0:0::/root:/bin/sh\n", "secret.md": "# Secret\n"})
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.md": "# A\n"})
	links := map[string]string{
		"passwd.md":      filepath.Join(outside, "passwd"),
		"secret.md":      filepath.Join(outside, "secret.md"),
		"relative.md":    filepath.Join("..", filepath.Base(outside), "secret.md"),
		"inside.md":      "a.md",
		"chain/hop.md":   filepath.Join(outside, "secret.md"),
		"chain/again.md": "hop.md",
	}
	if err := os.MkdirAll(filepath.Join(dir, "chain"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}

	res, err := Scan(dir, Options{Collection: "kb"})
	if err != nil {
		t.Fatal(err)
	}
	imported := map[string]bool{}
	for _, d := range res.Documents {
		imported[d.Path] = true
		if strings.Contains(d.Article.Body, "root:") || strings.Contains(d.Article.Body, "Secret") {
			t.Errorf("%s imported the content of a file outside the folder", d.Path)
		}
	}
	if len(res.Documents) != 2 {
		t.Errorf("imported %v, want a.md and inside.md only", imported)
	}
	for _, name := range []string{"a.md", "inside.md"} {
		if !imported[name] {
			t.Errorf("%s was not imported", name)
		}
	}
	skipped := map[string]string{}
	for _, s := range res.Skipped {
		skipped[s.Path] = s.Reason
	}
	for _, name := range []string{"passwd.md", "secret.md", "relative.md", "chain/hop.md", "chain/again.md"} {
		if !strings.Contains(skipped[name], "outside the import folder") {
			t.Errorf("%s: skip reason %q, want it to say the target is outside the import folder", name, skipped[name])
		}
	}
}

// TestScanStopsWhenCancelled checks that ScanContext returns the context's
// error instead of reading on.
func TestScanStopsWhenCancelled(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.md": "# A\n", "b/c.md": "# C\n"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := ScanContext(ctx, dir, Options{Collection: "kb"})
	if !errors.Is(err, context.Canceled) || res != nil {
		t.Errorf("ScanContext with a cancelled context = %v, %v; want nil, context.Canceled", res, err)
	}
}

// TestScanNULInTitle checks that the reason for a NUL in a title requests
// its removal, not a shorter title.
func TestScanNULInTitle(t *testing.T) {
	for name, content := range map[string]string{
		"front.md":   "---\ntitle: \"a\\0b\"\n---\nBody\n",
		"heading.md": "# a\x00b\n\nBody\n",
	} {
		_, skip := scanOne(t, name, content, Options{Collection: "kb"})
		if skip == nil {
			t.Fatalf("%s was imported, want a skip", name)
		}
		if !strings.Contains(skip.Reason, "remove the NUL") {
			t.Errorf("%s: reason %q, want it to request removing the NUL", name, skip.Reason)
		}
		if strings.Contains(skip.Reason, "shorten") {
			t.Errorf("%s: reason %q requests a shorter title", name, skip.Reason)
		}
	}
}

// TestScanNonLatinNamesImportApart checks that files whose names have no
// ASCII letters get ids of their own rather than one shared id.
func TestScanNonLatinNamesImportApart(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a/日本.md": "# 日本\n", "a/中文.md": "# 中文\n", "a/한국어.md": "# 한국어\n"})
	res, err := Scan(dir, Options{Collection: "kb2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Documents) != 3 || len(res.Skipped) != 0 {
		t.Errorf("imported %d and skipped %v, want 3 documents and no skips", len(res.Documents), res.Skipped)
	}
}
