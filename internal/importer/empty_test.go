package importer

import (
	"bytes"
	"strings"
	"testing"
)

func TestEmptyPagesAreNotFailures(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"ops/_index.md":  "---\ntitle: Operations\nweight: 10\n---\n",
		"stub.md":        "---\ntitle: Stub\n---\n\n",
		"blank.md":       "",
		"ops/restart.md": "# Restart\n\nRestart the service.\n",
		"bad.md":         "# Bad \xff bytes\n",
	})
	res, err := Scan(dir, Options{Collection: "kb"})
	if err != nil {
		t.Fatal(err)
	}
	empty := map[string]bool{}
	for _, s := range res.Skipped {
		empty[s.Path] = s.Empty
	}
	want := map[string]bool{"ops/_index.md": true, "stub.md": true, "blank.md": true, "bad.md": false}
	for p, w := range want {
		got, ok := empty[p]
		if !ok {
			t.Errorf("%s was not skipped", p)
		} else if got != w {
			t.Errorf("%s: Empty = %v, want %v", p, got, w)
		}
	}

	sum := res.DryRun()
	if sum.Failed() != 1 {
		t.Errorf("Failed() = %d, want 1 (only bad.md)", sum.Failed())
	}
	var out bytes.Buffer
	sum.Print(&out)
	if !strings.Contains(out.String(), "skipped:       4 (3 empty pages, which have nothing to import)") {
		t.Errorf("summary does not count the empty pages apart:\n%s", out.String())
	}
}
