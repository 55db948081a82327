package importer

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/khub-dev/khub/internal/knowledge"
)

// FuzzParse feeds arbitrary files to the front matter splitter and the
// title extraction. It checks that nothing panics, that every article
// returned is valid, and that a valid UTF-8 body after a known front matter
// block comes back byte for byte.
func FuzzParse(f *testing.F) {
	seeds := []struct{ file, body string }{
		{"---\ntitle: A\ntags: [x, y]\n---\n# A\n", "# Heading\n\ntext\n"},
		{"+++\ntitle = 'x'\n+++\n", "```\n# code\n```\nSetext\n===\n"},
		{"---\nmetadata:\n  a: &x 1\n  b: *x\n...\nbody", "\r\n\r\nCRLF body\r\n"},
		{"\ufeff# BOM\n", "Incident 🚨 playbook – naïve café\u00a0\n"},
		{"---\n---\n", "<!--\n# hidden\n-->\n## **Shown** [link](x)\n"},
		{"no front matter\n---\n", "    # indented\n~~~~\n# in fence\n~~~\n"},
		{"---\nid: x\nid: y\n---\n", "- item\n---\n"},
		{"\xff\xfe---\n", "`unclosed code\n# `real` title #\n"},
	}
	for _, s := range seeds {
		f.Add([]byte(s.file), s.body)
	}
	s := &scanner{opts: Options{Collection: "fuzz", Class: knowledge.ClassReference, Status: knowledge.StatusPublished}, rootName: "root"}

	f.Fuzz(func(t *testing.T, file []byte, body string) {
		// Any input: no panic, and an article only when it is valid.
		if a, err := s.parse("dir/doc.md", file); err == nil {
			if verr := a.Validate(); verr != nil {
				t.Fatalf("parse returned an invalid article: %v", verr)
			}
		} else if err.Error() == "" {
			t.Fatal("parse failed without a reason")
		}
		_ = firstHeading(string(file))
		_ = stripInline(string(file))

		// A known front matter block followed by body: the body must come
		// back unchanged, less the one blank line after the block.
		if !utf8.ValidString(body) || strings.ContainsRune(body, 0) || strings.TrimSpace(body) == "" {
			return
		}
		want := string(trimLeadingBlankLine([]byte(body)))
		if strings.TrimSpace(want) == "" {
			return
		}
		src := "---\nid: fuzz-doc\ntitle: Fuzz\n---\n" + body
		a, err := s.parse("dir/doc.md", []byte(src))
		if err != nil {
			t.Fatalf("parse of a valid file failed: %v", err)
		}
		if a.Body != want {
			t.Fatalf("body = %q, want %q", a.Body, want)
		}
		if a.Title != "Fuzz" || a.ID != "fuzz-doc" {
			t.Fatalf("title, id = %q, %q, want Fuzz, fuzz-doc", a.Title, a.ID)
		}
	})
}
