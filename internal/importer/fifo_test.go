//go:build unix

package importer

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestScanSkipsNamedPipes checks that a named pipe with a Markdown name, or
// a link to one, is skipped without being opened: opening a pipe for
// reading waits for a writer, so a scan that opened it would hang.
func TestScanSkipsNamedPipes(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"ok.md": "# OK\n"})
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.md"), 0o644); err != nil {
		t.Skipf("cannot create a named pipe here: %v", err)
	}
	if err := os.Symlink("pipe.md", filepath.Join(dir, "link-to-pipe.md")); err != nil {
		t.Fatal(err)
	}

	for _, root := range []string{dir, filepath.Join(dir, "pipe.md")} {
		done := make(chan *Result, 1)
		go func() {
			res, err := Scan(root, Options{Collection: "kb"})
			if err != nil {
				t.Errorf("Scan(%s): %v", root, err)
			}
			done <- res
		}()
		var res *Result
		select {
		case res = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Scan(%s) still runs after 10s: it opened the named pipe", root)
		}
		if res == nil {
			continue
		}
		for _, s := range res.Skipped {
			if !strings.Contains(s.Reason, "named pipe") {
				t.Errorf("%s: reason %q, want it to name the named pipe", s.Path, s.Reason)
			}
		}
		wantSkips := 2
		if root != dir {
			wantSkips = 1
		}
		if len(res.Skipped) != wantSkips {
			t.Errorf("Scan(%s) skipped %v, want %d named pipes", root, res.Skipped, wantSkips)
		}
	}
}
