package knowledge

import (
	"errors"
	"strings"
	"testing"
)

// TestValidateReplacedBy checks that replaced_by must name another
// article by a valid id, and that it may name one not stored yet.
func TestValidateReplacedBy(t *testing.T) {
	for _, c := range []struct {
		next string
		want string // in the message; empty for valid
	}{
		{"policy-v2", ""},
		{"", ""},
		{"policy-v1", "names the article itself"},
		{"docs/policy v2.md", "is invalid"},
	} {
		a := Article{ID: "policy-v1", Title: "Policy", Collection: "kb", Class: ClassPolicy, Status: StatusDeprecated,
			Metadata: map[string]string{ReplacedByKey: c.next}}
		err := a.Validate()
		if c.want == "" {
			if err != nil {
				t.Errorf("replaced_by %q: %v, want valid", c.next, err)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "metadata.replaced_by" || !strings.Contains(fe.Message, c.want) {
			t.Errorf("replaced_by %q: %v, want a metadata.replaced_by error saying %q", c.next, err, c.want)
		}
	}
}
