package importer

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/khub-dev/khub/internal/knowledge"
)

// exampleKB is the project's example knowledge base, relative to this
// package.
const exampleKB = "../../examples/kb"

func TestScanExampleKB(t *testing.T) {
	res, err := Scan(exampleKB, Options{Collection: "northwind"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Skipped {
		t.Errorf("skipped %s", s)
	}
	if res.NotMarkdown != 0 {
		t.Errorf("NotMarkdown = %d, want 0", res.NotMarkdown)
	}
	if n := len(res.Documents); n < 17 || n > 21 {
		t.Errorf("%d articles, want 16 to 20 plus the README", n)
	}

	classes := map[knowledge.Class]int{}
	byID := map[string]knowledge.Article{}
	for _, d := range res.Documents {
		a := d.Article
		classes[a.Class]++
		byID[a.ID] = a
		if err := a.Validate(); err != nil {
			t.Errorf("%s: %v", d.Path, err)
		}
		if words := len(strings.Fields(a.Body)); d.Path != "README.md" && (words < 150 || words > 600) {
			t.Errorf("%s has %d words, want 150 to 600", d.Path, words)
		}
		if len(a.Tags) == 0 {
			t.Errorf("%s has no tags", d.Path)
		}
		if a.Metadata["owner"] == "" && a.Metadata["account"] == "" && d.Path != "README.md" {
			t.Errorf("%s names no owner or account in its metadata", d.Path)
		}
	}
	for _, c := range []knowledge.Class{knowledge.ClassPolicy, knowledge.ClassSafety, knowledge.ClassCompliance, knowledge.ClassRunbook, knowledge.ClassReference} {
		if classes[c] == 0 {
			t.Errorf("no article of class %s", c)
		}
	}

	// khub demo edits this policy and searches for a failover runbook.
	if a, ok := byID["policy-access-review"]; !ok || a.Class != knowledge.ClassPolicy {
		t.Errorf("policy-access-review missing or not a policy: %+v", a)
	}
	if _, ok := byID["runbook-database-failover"]; !ok {
		t.Error("runbook-database-failover missing")
	}

	nonASCII := 0
	for _, a := range byID {
		if utf8.RuneCountInString(a.Title) != len(a.Title) {
			nonASCII++
		}
	}
	if nonASCII == 0 {
		t.Error("no article has a non-ASCII title")
	}

	deprecated := 0
	for _, a := range byID {
		if a.Status != knowledge.StatusDeprecated {
			continue
		}
		deprecated++
		replacement := a.Metadata["replaced_by"]
		if _, ok := byID[replacement]; !ok {
			t.Errorf("deprecated %s is replaced by %q, which is not in the knowledge base", a.ID, replacement)
		}
	}
	if deprecated != 1 {
		t.Errorf("%d deprecated articles, want 1", deprecated)
	}
}
