package importer

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/khub-dev/khub/internal/knowledge"
)

func TestFirstHeading(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{name: "atx", body: "# Disk full\n\ntext", want: "Disk full"},
		{name: "atx level three", body: "intro\n\n### Step one ###\n", want: "Step one"},
		{name: "closing hashes kept without space", body: "# C#\n", want: "C#"},
		{name: "closing sequence only", body: "# Title #####\n", want: "Title"},
		{name: "indented three spaces", body: "   # Title\n", want: "Title"},
		{name: "indented four spaces is code", body: "    # not a title\n\n# Title\n", want: "Title"},
		{name: "hashtag is text", body: "#hashtag\n\n## Real\n", want: "Real"},
		{name: "seven hashes is text", body: "####### no\n\n# Yes\n", want: "Yes"},
		{name: "empty heading skipped", body: "#\n\n# Second\n", want: "Second"},
		{name: "heading in backtick fence", body: "```sh\n# comment in code\n```\n\n# Real title\n", want: "Real title"},
		{name: "heading in tilde fence", body: "~~~\n# not this\n~~~\n# Real\n", want: "Real"},
		{name: "longer fence not closed by shorter", body: "````\n```\n# inside\n````\n# Outside\n", want: "Outside"},
		{name: "unclosed fence hides rest", body: "```\n# inside\n", want: ""},
		{name: "heading in html comment", body: "<!--\n# hidden\n-->\n# Shown\n", want: "Shown"},
		{name: "setext level one", body: "Database failover\n=================\n\ntext", want: "Database failover"},
		{name: "setext level two", body: "On-call handover\n---\n", want: "On-call handover"},
		{name: "setext two paragraph lines", body: "Long title\ncontinued\n===\n", want: "Long title continued"},
		{name: "rule after blank line is no heading", body: "text\n\n---\n\n# Title\n", want: "Title"},
		{name: "list item then dashes", body: "- item\n---\n# Title\n", want: "Title"},
		{name: "setext in fence ignored", body: "```\nfoo\n===\n```\nbar\n---\n", want: "bar"},
		{name: "crlf line endings", body: "# Title\r\n\r\ntext\r\n", want: "Title"},
		{name: "emphasis stripped", body: "# **Bold** and *italic* and __strong__ _em_\n", want: "Bold and italic and strong em"},
		{name: "link and image stripped", body: "# [KubePodCrashLooping](https://example.com) ![icon](x.png)\n", want: "KubePodCrashLooping icon"},
		{name: "code span kept", body: "# Rotate `tls.crt` now\n", want: "Rotate tls.crt now"},
		{name: "no heading", body: "Just a paragraph.\n", want: ""},
		{name: "heading of only an image", body: "# ![](logo.png)\n\n# Name\n", want: "Name"},
		{name: "non-ascii kept", body: "# Incident 🚨 playbook – naïve café\n", want: "Incident 🚨 playbook – naïve café"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := firstHeading(tt.body); got != tt.want {
				t.Errorf("firstHeading(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

func TestStripInline(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"plain", "plain"},
		{"**bold** text", "bold text"},
		{"~~old~~ new", "old new"},
		{"snake_case_name", "snake_case_name"},
		{"__init__ method", "init method"},
		{"5 * 3", "5 * 3"},
		{`not \*emphasis\*`, "not *emphasis*"},
		{"a `code *span*` here", "a code *span* here"},
		{"``double `tick` span``", "double `tick` span"},
		{"unmatched ` tick", "unmatched ` tick"},
		{"[text][ref] and <https://example.com>", "text and https://example.com"},
		{`<a name="top"></a>Anchored`, "Anchored"},
		{"HTML <br/> break", "HTML break"},
		{"  extra   spaces\tand tabs ", "extra spaces and tabs"},
		{"~approx", "~approx"},
	}
	for _, tt := range tests {
		if got := stripInline(tt.in); got != tt.want {
			t.Errorf("stripInline(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTitleFromName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"disk_full.md", "disk full"},
		{"on-call--handover.markdown", "on call handover"},
		{"README.md", "README"},
		{"v1.2-notes.md", "v1.2 notes"},
	}
	for _, tt := range tests {
		if got := titleFromName(tt.in); got != tt.want {
			t.Errorf("titleFromName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTruncateTitleRuneBoundary(t *testing.T) {
	long := strings.Repeat("é", knowledge.MaxTitleLen) // two bytes each
	got := truncateTitle(long)
	if len(got) > knowledge.MaxTitleLen {
		t.Errorf("len = %d, want at most %d", len(got), knowledge.MaxTitleLen)
	}
	if !utf8.ValidString(got) {
		t.Errorf("truncated title is not valid UTF-8: %q", got)
	}
	if !strings.HasSuffix(got, "…") {
		t.Errorf("truncated title %q does not end in an ellipsis", got)
	}
	if short := "Short"; truncateTitle(short) != short {
		t.Errorf("truncateTitle changed a short title")
	}
}
