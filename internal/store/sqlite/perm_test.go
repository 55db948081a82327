//go:build unix

package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// TestDatabaseFilesArePrivate checks that the database file and its -wal
// and -shm files, which hold webhook secrets, are readable by their owner
// only, whatever the umask, and that an existing file readable by others is
// made private when it is opened.
func TestDatabaseFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "khub.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := knowledge.Article{ID: "a1", Title: "T", Body: "B", Collection: "c", Class: knowledge.ClassRunbook}
	if _, err := s.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(p), err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(p), perm)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.GetArticle(ctx, "a1"); err != nil || got.Body != "B" {
		t.Fatalf("reopened store lost the article: %v", err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("existing database file has mode %v after Open, want 0600", perm)
	}
}
