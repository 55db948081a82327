package knowledge

import (
	"slices"
	"strings"
	"testing"
)

// TestScopeNormalizeTags checks that scope tags are trimmed and lower-cased
// like article tags, so that an upper-case tag in a scope matches.
func TestScopeNormalizeTags(t *testing.T) {
	s := Scope{Tags: []string{"PKI", " pki ", "OnCall"}, Classes: []Class{"runbook", "runbook"}}
	s.Normalize()
	if want := []string{"oncall", "pki"}; !slices.Equal(s.Tags, want) {
		t.Errorf("tags = %q, want %q", s.Tags, want)
	}
	if want := []Class{"runbook"}; !slices.Equal(s.Classes, want) {
		t.Errorf("classes = %q, want %q", s.Classes, want)
	}
	a := Article{Class: ClassRunbook, Tags: []string{"Pki"}}
	a.Normalize()
	if !s.Matches(&a) {
		t.Error("scope with tag PKI does not match an article tagged Pki")
	}
}

// TestScopeRejectsEmptyTagsAndControlKeys checks the scope errors that used
// to pass and make a filter match nothing.
func TestScopeRejectsEmptyTagsAndControlKeys(t *testing.T) {
	for name, s := range map[string]Scope{
		"empty tag":                {Tags: []string{"  "}},
		"control character in key": {Metadata: map[string]string{"a\x01b": "x"}},
		"NUL in key":               {Metadata: map[string]string{"a\x00b": "x"}},
		"overlong key":             {Metadata: map[string]string{strings.Repeat("k", MaxMetadataKey+1): "x"}},
	} {
		s.Normalize()
		err := s.Validate()
		fe, ok := err.(*FieldError)
		if !ok || !strings.HasPrefix(fe.Field, "scope.") {
			t.Errorf("%s: Validate = %v, want a FieldError on a scope field", name, err)
		}
	}
}
