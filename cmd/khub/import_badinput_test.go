package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestImportWorkersRange checks that --workers outside 1 to 64 is an error
// that names the flag and the range.
func TestImportWorkersRange(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"-5", "0", "65"} {
		root := newRootCmd()
		root.SetArgs([]string{"import", dir, "--collection", "kb", "--dry-run", "--workers", n})
		root.SetOut(&bytes.Buffer{})
		root.SetErr(&bytes.Buffer{})
		err := root.Execute()
		if err == nil {
			t.Errorf("--workers %s: no error", n)
			continue
		}
		if !strings.Contains(err.Error(), "--workers "+n) {
			t.Errorf("--workers %s: error %q does not name the flag and value", n, err)
		}
		if !strings.Contains(err.Error(), "1 to 64") {
			t.Errorf("--workers %s: error %q does not give the range 1 to 64", n, err)
		}
	}
	root := newRootCmd()
	root.SetArgs([]string{"import", dir, "--collection", "kb", "--dry-run", "--workers", "64"})
	root.SetOut(&bytes.Buffer{})
	if err := root.Execute(); err != nil {
		t.Errorf("--workers 64: %v", err)
	}
}
