package importer

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/khub-dev/khub/internal/knowledge"
)

// writeFiles creates files under dir; keys are slash-separated paths.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// scanOne scans a folder holding one file and returns its article or skip.
func scanOne(t *testing.T, name, content string, opts Options) (*Document, *Skip) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{name: content})
	res, err := Scan(dir, opts)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if got := len(res.Documents) + len(res.Skipped); got != 1 {
		t.Fatalf("got %d documents and %d skips, want exactly one in all", len(res.Documents), len(res.Skipped))
	}
	if len(res.Skipped) == 1 {
		return nil, &res.Skipped[0]
	}
	return &res.Documents[0], nil
}

func TestScanFileCases(t *testing.T) {
	opts := Options{Collection: "handbook"}
	tests := []struct {
		name    string
		file    string
		content string
		opts    *Options // nil means opts above

		wantID       string
		wantTitle    string
		wantClass    knowledge.Class
		wantStatus   knowledge.Status
		wantTags     []string
		wantMetadata map[string]string
		wantBody     string
		wantSkip     string // part of the reason; empty when the file must import
	}{
		{
			name: "plain markdown", file: "ops/Disk_Full.md",
			content: "Intro line.\n\n# Disk *full* on `db-1`\n\nDelete old logs.\n",
			wantID:  "handbook.ops.disk_full", wantTitle: "Disk full on db-1", wantClass: "reference", wantStatus: "published",
			wantTags: []string{}, wantMetadata: map[string]string{},
			wantBody: "Intro line.\n\n# Disk *full* on `db-1`\n\nDelete old logs.\n",
		},
		{
			name: "full front matter", file: "policies/access.md",
			content: "---\nid: policy-access-review\ntitle: Access review\nclass: Policy\nstatus: deprecated\ntags: [Security, access]\nmetadata:\n  owner: security-team\n  replaced_by: policy-access-v2\nweight: 5\n---\n\n# Heading ignored\n\nBody.\n",
			wantID:  "policy-access-review", wantTitle: "Access review", wantClass: "policy", wantStatus: "deprecated",
			wantTags: []string{"access", "security"}, wantMetadata: map[string]string{"owner": "security-team", "replaced_by": "policy-access-v2", "weight": "5"},
			wantBody: "# Heading ignored\n\nBody.\n",
		},
		{
			name: "hugo front matter", file: "runbooks/node/NodeDown.md",
			content: "---\ntitle: Node Down\nweight: 20\n---\n\n# NodeDown\n\n## Meaning\n",
			wantID:  "handbook.runbooks.node.nodedown", wantTitle: "Node Down", wantClass: "reference", wantStatus: "published",
			wantTags: []string{}, wantMetadata: map[string]string{"weight": "20"},
			wantBody: "# NodeDown\n\n## Meaning\n",
		},
		{
			name: "title from setext heading", file: "a.md",
			content: "Database failover\n=================\n\nSteps.\n",
			wantID:  "handbook.a", wantTitle: "Database failover", wantClass: "reference", wantStatus: "published",
			wantTags: []string{}, wantMetadata: map[string]string{}, wantBody: "Database failover\n=================\n\nSteps.\n",
		},
		{
			name: "heading in code fence is not the title", file: "scripts/rotate-tls_cert.md",
			content: "```bash\n# Rotate the cert\nopenssl x509 -in cert.pem\n```\n",
			wantID:  "handbook.scripts.rotate-tls_cert", wantTitle: "rotate tls cert", wantClass: "reference", wantStatus: "published",
			wantTags: []string{}, wantMetadata: map[string]string{}, wantBody: "```bash\n# Rotate the cert\nopenssl x509 -in cert.pem\n```\n",
		},
		{
			name: "default class tags and status", file: "b.md",
			content: "# B\n", opts: &Options{Collection: "ops", Class: "Runbook", Tags: []string{"OnCall", "db"}, Status: knowledge.StatusArchived},
			wantID: "ops.b", wantTitle: "B", wantClass: "runbook", wantStatus: "archived",
			wantTags: []string{"db", "oncall"}, wantMetadata: map[string]string{}, wantBody: "# B\n",
		},
		{
			name: "front matter tags replace default tags", file: "c.md",
			content: "---\ntags: payments, sev1\nclass: runbook\n---\n# C\n", opts: &Options{Collection: "ops", Class: "policy", Tags: []string{"default"}},
			wantID: "ops.c", wantTitle: "C", wantClass: "runbook", wantStatus: "published",
			wantTags: []string{"payments", "sev1"}, wantMetadata: map[string]string{}, wantBody: "# C\n",
		},
		{
			name: "bom stripped", file: "bom.md",
			content: "\ufeff---\ntitle: With BOM\n---\nText\n",
			wantID:  "handbook.bom", wantTitle: "With BOM", wantClass: "reference", wantStatus: "published",
			wantTags: []string{}, wantMetadata: map[string]string{}, wantBody: "Text\n",
		},
		{
			name: "bom without front matter", file: "bom2.md",
			content: "\ufeff# Title\n",
			wantID:  "handbook.bom2", wantTitle: "Title", wantClass: "reference", wantStatus: "published",
			wantTags: []string{}, wantMetadata: map[string]string{}, wantBody: "# Title\n",
		},
		{
			name: "non-ascii and crlf kept", file: "café.MD",
			content: "# Café ☕ notice\r\n\r\nNon-breaking\u00a0space, naïve, 🚨.\r\n",
			wantID:  "handbook.caf-d8da062d", wantTitle: "Café ☕ notice", wantClass: "reference", wantStatus: "published",
			wantTags: []string{}, wantMetadata: map[string]string{}, wantBody: "# Café ☕ notice\r\n\r\nNon-breaking\u00a0space, naïve, 🚨.\r\n",
		},
		{
			name: "section page with body", file: "alerts/node/_index.md",
			content: "---\nweight: 10\n---\n\nNode alerts.\n",
			wantID:  "handbook.alerts.node._index", wantTitle: "node", wantClass: "reference", wantStatus: "published",
			wantTags: []string{}, wantMetadata: map[string]string{"weight": "10"}, wantBody: "Node alerts.\n",
		},
		{name: "section page empty", file: "alerts/_index.md", content: "---\ntitle: alerts\nweight: 10\n---\n\n", wantSkip: "empty section page"},
		{name: "toml front matter", file: "t.md", content: "+++\ntitle = \"T\"\n+++\nBody\n", wantSkip: "TOML front matter"},
		{name: "invalid yaml", file: "y.md", content: "---\ntitle: [unclosed\n---\nBody\n", wantSkip: "invalid YAML front matter"},
		{name: "unclosed front matter", file: "u.md", content: "---\ntitle: x\nBody\n", wantSkip: "no closing --- line"},
		{name: "empty after front matter", file: "e.md", content: "---\ntitle: x\n---\n\n  \n", wantSkip: "is empty after the front matter"},
		{name: "empty file", file: "e2.md", content: "", wantSkip: "is empty"},
		{name: "invalid utf-8", file: "bad.md", content: "# Title\nok\nbroken \xff\xfe bytes\n", wantSkip: "is not valid UTF-8 (byte 0xFF on line 3)"},
		{name: "invalid utf-8 in front matter", file: "bad2.md", content: "---\ntitle: \xc3\x28\n---\nBody\n", wantSkip: "is not valid UTF-8"},
		{name: "invalid front matter id", file: "i.md", content: "---\nid: -bad id\n---\nBody\n", wantSkip: "front matter id"},
		{name: "invalid status", file: "s.md", content: "---\nstatus: draft\n---\nBody\n", wantSkip: `status "draft" is invalid`},
		{name: "invalid class", file: "c.md", content: "---\nclass: Safety Procedure\n---\nBody\n", wantSkip: "class"},
		{name: "overlong front matter title", file: "l.md", content: "---\ntitle: " + strings.Repeat("x", 501) + "\n---\nBody\n", wantSkip: "shorten the title"},
		{name: "too many tags", file: "tg.md", content: "---\ntags: " + tagList(knowledge.MaxTags+1) + "\n---\nBody\n", wantSkip: "tags has"},
		{name: "nul byte", file: "n.md", content: "# N\n\x00\n", wantSkip: "looks binary"},
		{name: "body too large", file: "big.md", content: "# Big\n" + strings.Repeat("x", knowledge.MaxBodyLen), wantSkip: "split it into smaller files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opts
			if tt.opts != nil {
				o = *tt.opts
			}
			doc, skip := scanOne(t, tt.file, tt.content, o)
			if tt.wantSkip != "" {
				if skip == nil {
					t.Fatalf("imported as %q, want a skip containing %q", doc.Article.ID, tt.wantSkip)
				}
				if !strings.Contains(skip.Reason, tt.wantSkip) {
					t.Errorf("skip reason = %q, want it to contain %q", skip.Reason, tt.wantSkip)
				}
				if skip.Path != tt.file {
					t.Errorf("skip path = %q, want %q", skip.Path, tt.file)
				}
				return
			}
			if skip != nil {
				t.Fatalf("skipped: %s", skip.Reason)
			}
			a := doc.Article
			if doc.Path != tt.file {
				t.Errorf("path = %q, want %q", doc.Path, tt.file)
			}
			if a.ID != tt.wantID {
				t.Errorf("id = %q, want %q", a.ID, tt.wantID)
			}
			if a.Title != tt.wantTitle {
				t.Errorf("title = %q, want %q", a.Title, tt.wantTitle)
			}
			if a.Class != tt.wantClass {
				t.Errorf("class = %q, want %q", a.Class, tt.wantClass)
			}
			if a.Status != tt.wantStatus {
				t.Errorf("status = %q, want %q", a.Status, tt.wantStatus)
			}
			if !slices.Equal(a.Tags, tt.wantTags) {
				t.Errorf("tags = %q, want %q", a.Tags, tt.wantTags)
			}
			if !maps.Equal(a.Metadata, tt.wantMetadata) {
				t.Errorf("metadata = %v, want %v", a.Metadata, tt.wantMetadata)
			}
			if a.Body != tt.wantBody {
				t.Errorf("body = %q, want %q", a.Body, tt.wantBody)
			}
			if a.Collection != o.Collection {
				t.Errorf("collection = %q, want %q", a.Collection, o.Collection)
			}
			if err := a.Validate(); err != nil {
				t.Errorf("article does not validate: %v", err)
			}
		})
	}
}

// tagList returns n distinct comma-separated tags.
func tagList(n int) string {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf("tag%d", i)
	}
	return strings.Join(tags, ",")
}

func TestScanWalk(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.md":                "# A\n",
		"B.Markdown":          "# B\n",
		"sub/c.md":            "# C\n",
		"sub/deeper/d.md":     "# D\n",
		"sub/image.png":       "\x89PNG",
		"OWNERS":              "approvers:\n- someone\n",
		"LICENSE":             "license text",
		"graph.dot":           "digraph {}",
		".git/config":         "[core]",
		".git/notes.md":       "# hidden",
		".hidden.md":          "# hidden file",
		"_drafts/e.md":        "# E\n",
		"dup/first.md":        "---\nid: same-id\n---\n# First\n",
		"dup/second.md":       "---\nid: same-id\n---\n# Second\n",
		"case/Name.md":        "# Upper\n",
		"case/name.md":        "# Lower\n",
		"broken/invalid.md":   "# X\n\xff\n",
		"broken/empty.md":     "",
		"broken/notes.txt.md": "# Notes\n",
	})
	if err := os.Symlink(filepath.Join(dir, "sub"), filepath.Join(dir, "linked-dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "a.md"), filepath.Join(dir, "linked-file.md")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "missing.md"), filepath.Join(dir, "dangling.md")); err != nil {
		t.Fatal(err)
	}

	res, err := Scan(dir, Options{Collection: "kb"})
	if err != nil {
		t.Fatal(err)
	}

	var paths []string
	for _, d := range res.Documents {
		paths = append(paths, d.Path)
	}
	wantPaths := []string{"B.Markdown", "_drafts/e.md", "a.md", "broken/notes.txt.md", "case/Name.md", "dup/first.md", "linked-file.md", "sub/c.md", "sub/deeper/d.md"}
	if !slices.Equal(paths, wantPaths) {
		t.Errorf("imported paths = %q, want %q", paths, wantPaths)
	}

	skips := map[string]string{}
	for _, s := range res.Skipped {
		skips[s.Path] = s.Reason
	}
	wantSkips := map[string]string{
		"broken/empty.md":   "is empty",
		"broken/invalid.md": "not valid UTF-8",
		"case/name.md":      `id "kb.case.name" is already used by case/Name.md`,
		"dangling.md":       "symbolic link whose target cannot be read",
		"dup/second.md":     `id "same-id" is already used by dup/first.md`,
	}
	if len(skips) != len(wantSkips) {
		t.Errorf("skipped %v, want %d skips", skips, len(wantSkips))
	}
	for p, want := range wantSkips {
		if got, ok := skips[p]; !ok {
			t.Errorf("%s was not skipped", p)
		} else if !strings.Contains(got, want) {
			t.Errorf("%s: reason %q, want it to contain %q", p, got, want)
		}
	}

	// OWNERS, LICENSE, graph.dot and sub/image.png; .git is hidden and the
	// linked folder is not followed.
	if res.NotMarkdown != 4 {
		t.Errorf("NotMarkdown = %d, want 4", res.NotMarkdown)
	}
}

func TestScanUnreadableFolder(t *testing.T) {
	if runtime.GOOS == "windows" || os.Geteuid() == 0 {
		t.Skip("file permissions do not stop root or Windows from reading a folder")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"ok.md": "# OK\n", "locked/x.md": "# X\n"})
	locked := filepath.Join(dir, "locked")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })

	res, err := Scan(dir, Options{Collection: "kb"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Documents) != 1 {
		t.Errorf("imported %d documents, want 1", len(res.Documents))
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Path != "locked" {
		t.Errorf("skipped = %v, want the locked folder", res.Skipped)
	}
}

func TestScanRootErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"photo.png": "x"})

	if _, err := Scan(filepath.Join(dir, "missing"), Options{Collection: "kb"}); err == nil {
		t.Error("Scan of a missing folder returned no error")
	}
	if _, err := Scan(filepath.Join(dir, "photo.png"), Options{Collection: "kb"}); err == nil {
		t.Error("Scan of a non-Markdown file returned no error")
	}
}

func TestScanSingleFileRoot(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"guide.md": "# Guide\n"})
	res, err := Scan(filepath.Join(dir, "guide.md"), Options{Collection: "kb"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Documents) != 1 {
		t.Fatalf("imported %d documents, want 1", len(res.Documents))
	}
	if got := res.Documents[0].Article.ID; got != "kb.guide" {
		t.Errorf("id = %q, want kb.guide", got)
	}
}

func TestScanSymlinkedRoot(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"real/a.md": "# A\n"})
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "real"), link); err != nil {
		t.Fatal(err)
	}
	res, err := Scan(link, Options{Collection: "kb"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Documents) != 1 || res.Documents[0].Path != "a.md" {
		t.Errorf("documents = %+v, want a.md", res.Documents)
	}
}

func TestScanRootSectionPageTitle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "team-handbook")
	writeFiles(t, dir, map[string]string{"_index.md": "Welcome.\n"})
	res, err := Scan(dir, Options{Collection: "kb"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Documents) != 1 {
		t.Fatalf("imported %d documents, want 1 (skips: %v)", len(res.Documents), res.Skipped)
	}
	if got := res.Documents[0].Article.Title; got != "team handbook" {
		t.Errorf("title = %q, want the root folder name", got)
	}
}

func TestScanOptionsValidation(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{name: "missing collection", opts: Options{}, want: "collection is required"},
		{name: "upper-case collection", opts: Options{Collection: "Ops"}, want: "collection"},
		{name: "invalid class", opts: Options{Collection: "ops", Class: "run book"}, want: "class"},
		{name: "invalid status", opts: Options{Collection: "ops", Status: "draft"}, want: "status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Scan(dir, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
