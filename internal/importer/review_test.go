package importer

import (
	"strings"
	"testing"
	"time"
)

func TestScanReviewFields(t *testing.T) {
	opts := Options{Collection: "handbook"}
	tests := []struct {
		name            string
		frontMatter     string
		wantReviewEvery time.Duration
		wantOwner       string
		wantSkip        string // part of the reason; empty when the file must import
	}{
		{name: "none", frontMatter: "title: A\n"},
		{name: "review_every and owner", frontMatter: "review_every: 2160h\nowner: '  Platform team  '\n", wantReviewEvery: 2160 * time.Hour, wantOwner: "Platform team"},
		{name: "review_interval", frontMatter: "review_interval: 8760h\n", wantReviewEvery: 8760 * time.Hour},
		{name: "owner alone", frontMatter: "owner: sre@example.com\n", wantOwner: "sre@example.com"},
		{name: "days are no duration", frontMatter: "review_every: 90d\n", wantSkip: `front matter review_every "90d" is not a duration: use hours, such as 2160h`},
		{name: "number without unit", frontMatter: "review_every: 720\n", wantSkip: `front matter review_every "720" is not a duration`},
		{name: "shorter than a day", frontMatter: "review_interval: 12h\n", wantSkip: "front matter review_interval is 12h; the minimum is 24h"},
		{name: "longer than 5 years", frontMatter: "review_every: 50000h\n", wantSkip: "front matter review_every is 50000h; the maximum is 43800h"},
		{name: "owner too long", frontMatter: "owner: " + strings.Repeat("é", 201) + "\n", wantSkip: "front matter owner is 201 characters long; the maximum is 200"},
		{name: "owner with a tab", frontMatter: "owner: \"a\\tb\"\n", wantSkip: "front matter owner contains the control character U+0009"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, skip := scanOne(t, "a.md", "---\n"+tt.frontMatter+"---\n# A\n\nBody.\n", opts)
			if tt.wantSkip != "" {
				if skip == nil {
					t.Fatalf("imported with review every %v and owner %q, want a skip containing %q", doc.Article.ReviewEvery, doc.Article.Owner, tt.wantSkip)
				}
				if !strings.Contains(skip.Reason, tt.wantSkip) {
					t.Errorf("skip reason = %q, want it to contain %q", skip.Reason, tt.wantSkip)
				}
				return
			}
			if skip != nil {
				t.Fatalf("skipped: %s", skip.Reason)
			}
			a := doc.Article
			if a.ReviewEvery != tt.wantReviewEvery {
				t.Errorf("review every = %v, want %v", a.ReviewEvery, tt.wantReviewEvery)
			}
			if a.Owner != tt.wantOwner {
				t.Errorf("owner = %q, want %q", a.Owner, tt.wantOwner)
			}
			for _, key := range []string{"owner", "review_every", "review_interval"} {
				if v, ok := a.Metadata[key]; ok {
					t.Errorf("metadata[%q] = %q, want the key to map to the article field only", key, v)
				}
			}
		})
	}
}
