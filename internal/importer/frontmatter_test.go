package importer

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestSplitFrontMatter(t *testing.T) {
	tests := []struct {
		name           string
		src            string
		wantFM         string
		wantBody       string
		hasFrontMatter bool
		wantErr        string
	}{
		{name: "no front matter", src: "# Title\n\ntext\n", wantBody: "# Title\n\ntext\n"},
		{name: "yaml block", src: "---\ntitle: A\n---\n# A\n", wantFM: "title: A\n", wantBody: "# A\n", hasFrontMatter: true},
		{name: "one blank line trimmed", src: "---\na: 1\n---\n\n\ntext", wantFM: "a: 1\n", wantBody: "\ntext", hasFrontMatter: true},
		{name: "closed by dots", src: "---\na: 1\n...\ntext\n", wantFM: "a: 1\n", wantBody: "text\n", hasFrontMatter: true},
		{name: "crlf and trailing spaces", src: "--- \r\na: 1\r\n---\r\n\r\nbody\r\n", wantFM: "a: 1\r\n", wantBody: "body\r\n", hasFrontMatter: true},
		{name: "empty block", src: "---\n---\nbody", wantBody: "body", hasFrontMatter: true},
		{name: "nothing after block", src: "---\na: 1\n---", wantFM: "a: 1\n", wantBody: "", hasFrontMatter: true},
		{name: "dashes later are a rule", src: "text\n---\nmore\n", wantBody: "text\n---\nmore\n"},
		{name: "leading blank line is no front matter", src: "\n---\na: 1\n---\n", wantBody: "\n---\na: 1\n---\n"},
		{name: "four dashes are no front matter", src: "----\na\n", wantBody: "----\na\n"},
		{name: "unclosed", src: "---\ntitle: A\n# A\n", wantErr: "no closing --- line"},
		{name: "toml", src: "+++\ntitle = \"A\"\n+++\nbody\n", wantErr: "TOML front matter"},
		{name: "inner whitespace kept", src: "---\na: 1\n---\n  indented\n\n\n\tlast  \n", wantFM: "a: 1\n", wantBody: "  indented\n\n\n\tlast  \n", hasFrontMatter: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fm, body, has, err := splitFrontMatter([]byte(tt.src))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if has != tt.hasFrontMatter {
				t.Errorf("hasFrontMatter = %v, want %v", has, tt.hasFrontMatter)
			}
			if string(fm) != tt.wantFM {
				t.Errorf("front matter = %q, want %q", fm, tt.wantFM)
			}
			if string(body) != tt.wantBody {
				t.Errorf("body = %q, want %q", body, tt.wantBody)
			}
		})
	}
}

func TestParseFrontMatter(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		want     frontMatter
		wantErr  string
		wantLine string // part of the error that names the line
	}{
		{
			name: "known keys",
			src:  "id: policy-x\ntitle: Travel\nclass: Policy\nstatus: Deprecated\ntags: [a, b]\n",
			want: frontMatter{ID: "policy-x", Title: "Travel", Class: "Policy", Status: "deprecated", Tags: []string{"a", "b"}, HasTags: true, Metadata: map[string]string{}},
		},
		{
			name: "tags as comma string",
			src:  "tags: oncall, db , ,payments\n",
			want: frontMatter{Tags: []string{"oncall", "db", "payments"}, HasTags: true, Metadata: map[string]string{}},
		},
		{
			name: "tags as block list",
			src:  "tags:\n  - one\n  - 2\n",
			want: frontMatter{Tags: []string{"one", "2"}, HasTags: true, Metadata: map[string]string{}},
		},
		{
			name: "empty tags list is given",
			src:  "tags: []\n",
			want: frontMatter{Tags: []string{}, HasTags: true, Metadata: map[string]string{}},
		},
		{
			name: "metadata coerced to strings",
			src:  "metadata:\n  owner: security-team\n  reviewed: 2024-03-01\n  weight: 010\n  critical: true\n  ratio: 0.5\n  empty:\n",
			want: frontMatter{Metadata: map[string]string{"owner": "security-team", "reviewed": "2024-03-01", "weight": "010", "critical": "true", "ratio": "0.5", "empty": ""}},
		},
		{
			name: "unknown scalars become metadata",
			src:  "title: A\nweight: 20\ndescription: Short text\nbookHidden: true\n",
			want: frontMatter{Title: "A", Metadata: map[string]string{"weight": "20", "description": "Short text", "bookHidden": "true"}},
		},
		{
			name: "unknown lists and maps dropped",
			src:  "aliases: [/a, /b]\nparams:\n  x: 1\nteam: ops\n",
			want: frontMatter{Metadata: map[string]string{"team": "ops"}},
		},
		{
			name: "explicit metadata wins",
			src:  "team: top\nmetadata:\n  team: nested\n",
			want: frontMatter{Metadata: map[string]string{"team": "nested"}},
		},
		{
			name: "collection ignored",
			src:  "collection: other\ntitle: A\n",
			want: frontMatter{Title: "A", Metadata: map[string]string{}},
		},
		{
			name: "keys match any case",
			src:  "Title: Upper\nTAGS: x\n",
			want: frontMatter{Title: "Upper", Tags: []string{"x"}, HasTags: true, Metadata: map[string]string{}},
		},
		{
			name: "alias resolved",
			src:  "team: &team platform\nmaintainer: *team\n",
			want: frontMatter{Metadata: map[string]string{"team": "platform", "maintainer": "platform"}},
		},
		{
			name: "review fields",
			src:  "review_every: 2160h\nowner: Security Team <security@example.com>\n",
			want: frontMatter{ReviewEvery: "2160h", ReviewEveryKey: "review_every", Owner: "Security Team <security@example.com>", Metadata: map[string]string{}},
		},
		{
			name: "review_interval in any case",
			src:  "Review_Interval: 720h\n",
			want: frontMatter{ReviewEvery: "720h", ReviewEveryKey: "review_interval", Metadata: map[string]string{}},
		},
		{
			name: "owner in metadata stays metadata",
			src:  "owner: ops\nmetadata:\n  owner: nested\n",
			want: frontMatter{Owner: "ops", Metadata: map[string]string{"owner": "nested"}},
		},
		{
			name: "comments only",
			src:  "# nothing here\n",
			want: frontMatter{Metadata: map[string]string{}},
		},
		{name: "invalid yaml", src: "title: A\nbad: [1,\n", wantErr: "invalid YAML front matter", wantLine: "line"},
		{name: "tab indentation", src: "a:\n\tb: 1\n", wantErr: "invalid YAML front matter", wantLine: "line 3"},
		{name: "not a mapping", src: "- a\n- b\n", wantErr: "not a YAML mapping"},
		{name: "duplicate known key", src: "title: A\ntitle: B\n", wantErr: `"title" appears twice`, wantLine: "line 3"},
		{name: "duplicate known key any case", src: "title: A\nTitle: B\n", wantErr: `"title" appears twice`},
		{name: "duplicate unknown key", src: "team: a\nteam: b\n", wantErr: `"team" appears twice`},
		{name: "duplicate owner", src: "owner: a\nOwner: b\n", wantErr: `"owner" appears twice`},
		{name: "both review keys", src: "review_every: 720h\nreview_interval: 24h\n", wantErr: "both review_every and review_interval (line 3)"},
		{name: "owner as list", src: "owner: [a, b]\n", wantErr: "owner (line 2) must be a single value"},
		{name: "title as list", src: "title: [a, b]\n", wantErr: "title (line 2) must be a single value"},
		{name: "tags as map", src: "tags:\n  a: b\n", wantErr: "tags (line 3) must be a list"},
		{name: "nested tag list", src: "tags:\n  - [a]\n", wantErr: "must contain only plain values"},
		{name: "metadata as list", src: "metadata: [a]\n", wantErr: "metadata (line 2) must be a map"},
		{name: "metadata value as list", src: "metadata:\n  owners: [a, b]\n", wantErr: "metadata.owners (line 3) must be a single value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFrontMatter([]byte(tt.src))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				if tt.wantLine != "" && !strings.Contains(err.Error(), tt.wantLine) {
					t.Errorf("error = %v, want it to name %q", err, tt.wantLine)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got.ID != tt.want.ID || got.Title != tt.want.Title || got.Class != tt.want.Class || got.Status != tt.want.Status {
				t.Errorf("id, title, class, status = %q %q %q %q, want %q %q %q %q",
					got.ID, got.Title, got.Class, got.Status, tt.want.ID, tt.want.Title, tt.want.Class, tt.want.Status)
			}
			if got.HasTags != tt.want.HasTags {
				t.Errorf("HasTags = %v, want %v", got.HasTags, tt.want.HasTags)
			}
			if !slices.Equal(got.Tags, tt.want.Tags) {
				t.Errorf("tags = %q, want %q", got.Tags, tt.want.Tags)
			}
			if got.ReviewEvery != tt.want.ReviewEvery || got.ReviewEveryKey != tt.want.ReviewEveryKey {
				t.Errorf("review every = %q from key %q, want %q from key %q", got.ReviewEvery, got.ReviewEveryKey, tt.want.ReviewEvery, tt.want.ReviewEveryKey)
			}
			if got.Owner != tt.want.Owner {
				t.Errorf("owner = %q, want %q", got.Owner, tt.want.Owner)
			}
			if !maps.Equal(got.Metadata, tt.want.Metadata) {
				t.Errorf("metadata = %v, want %v", got.Metadata, tt.want.Metadata)
			}
		})
	}
}
