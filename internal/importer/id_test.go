package importer

import (
	"strings"
	"testing"

	"github.com/khub-dev/khub/internal/knowledge"
)

func TestDerivedID(t *testing.T) {
	tests := []struct {
		name, collection, path, want string
	}{
		{name: "top level", collection: "ops", path: "disk-full.md", want: "ops.disk-full"},
		{name: "nested", collection: "ops", path: "alerts/node/NodeDown.md", want: "ops.alerts.node.nodedown"},
		{name: "markdown extension", collection: "ops", path: "a/b.markdown", want: "ops.a.b"},
		{name: "spaces and symbols", collection: "kb", path: "Team Docs/Q&A (draft).md", want: "kb.team-docs.q-a-draft-"},
		{name: "non-ascii", collection: "kb", path: "sécurité/café.md", want: "kb.s-curit-.caf-8ec15aed"},
		{name: "no ascii letters", collection: "kb2", path: "a/日本.md", want: "kb2.a.-880c71e3"},
		{name: "underscores kept", collection: "kb", path: "_index.md", want: "kb._index"},
		{name: "no extension", collection: "kb", path: "notes/README", want: "kb.notes.readme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := derivedID(tt.collection, tt.path)
			if got != tt.want {
				t.Errorf("derivedID(%q, %q) = %q, want %q", tt.collection, tt.path, got, tt.want)
			}
			if err := knowledge.ValidateID("id", got); err != nil {
				t.Errorf("derived id %q is invalid: %v", got, err)
			}
		})
	}
}

func TestDerivedIDLongPath(t *testing.T) {
	long := strings.Repeat("segment/", 40) + "file.md"
	other := strings.Repeat("segment/", 40) + "other.md"

	id := derivedID("kb", long)
	if len(id) != knowledge.MaxIDLen {
		t.Errorf("len = %d, want %d", len(id), knowledge.MaxIDLen)
	}
	if err := knowledge.ValidateID("id", id); err != nil {
		t.Errorf("shortened id is invalid: %v", err)
	}
	if again := derivedID("kb", long); again != id {
		t.Errorf("second call = %q, want the same id %q", again, id)
	}
	if otherID := derivedID("kb", other); otherID == id {
		t.Errorf("two long paths with the same prefix share id %q", id)
	}
	// The suffix is fixed for this input, so a change to the hash shows
	// up here: it would give every long path a new id on re-import.
	if want := "-7e6865be"; !strings.HasSuffix(id, want) {
		t.Errorf("id %q does not end in %q", id, want)
	}
}

// TestDerivedIDKeepsNonLatinNamesApart checks that names whose letters ids
// cannot hold get distinct ids, and that names with only ASCII letters,
// spaces and punctuation keep the ids they had before the hash suffix.
func TestDerivedIDKeepsNonLatinNamesApart(t *testing.T) {
	paths := []string{"a/日本.md", "a/中文.md", "a/한국어.md", "a/русский.md", "a/café.md", "a/cafè.md", "a/caf.md"}
	seen := map[string]string{}
	for _, p := range paths {
		id := derivedID("kb2", p)
		if err := knowledge.ValidateID("id", id); err != nil {
			t.Errorf("derivedID(%q) = %q is invalid: %v", p, id, err)
		}
		if other, ok := seen[id]; ok {
			t.Errorf("%s and %s share the id %q", other, p, id)
		}
		seen[id] = p
	}
	if got := derivedID("kb2", "a/Q&A (draft).md"); got != "kb2.a.q-a-draft-" {
		t.Errorf("ASCII name with punctuation: id = %q, want kb2.a.q-a-draft- without a hash", got)
	}
	long := strings.Repeat("日本/", 100) + "x.md"
	if id := derivedID("kb", long); len(id) > knowledge.MaxIDLen || knowledge.ValidateID("id", id) != nil {
		t.Errorf("long non-Latin path: id %q is invalid or longer than %d", id, knowledge.MaxIDLen)
	}
}
