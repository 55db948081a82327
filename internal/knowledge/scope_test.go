package knowledge

import (
	"hash/fnv"
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

func TestScopeLeavesAndAnnounces(t *testing.T) {
	hr := Scope{Collections: []string{"hr"}}
	version := func(collection string) *Article { return &Article{ID: "a", Collection: collection} }
	for _, c := range []struct {
		name              string
		before, after     *Article // before nil: a first version
		leaves, announced bool
	}{
		{"first version inside", nil, version("hr"), false, true},
		{"first version outside", nil, version("ops"), false, false},
		{"stays inside", version("hr"), version("hr"), false, true},
		{"moves in", version("ops"), version("hr"), false, true},
		{"moves out", version("hr"), version("ops"), true, true},
		{"stays outside", version("ops"), version("finance"), false, false},
	} {
		ch := &Change{Article: *c.after, Previous: c.before}
		if got := hr.Leaves(ch); got != c.leaves {
			t.Errorf("%s: Leaves = %v, want %v", c.name, got, c.leaves)
		}
		if got := hr.Announces(ch); got != c.announced {
			t.Errorf("%s: Announces = %v, want %v", c.name, got, c.announced)
		}
	}

	// Hybrid integrations push a removal like an archival, even of a class
	// that they otherwise leave to pull.
	in := Integration{Pattern: PatternHybrid, Scope: hr}
	moved := &Change{Type: ChangeUpdated, Article: Article{Collection: "ops", Class: ClassRunbook},
		Previous: &Article{Collection: "hr", Class: ClassRunbook}}
	if !in.PushesChange(moved) {
		t.Error("hybrid PushesChange(runbook leaving the scope) = false, want true")
	}
	// Becoming an operations event does not hide the removal either.
	for _, pattern := range []Pattern{PatternPush, PatternHybrid} {
		in := Integration{Pattern: pattern, Scope: Scope{Classes: []Class{ClassPolicy}}}
		toOps := &Change{Type: ChangeUpdated, Article: Article{Class: ClassOperations}, Previous: &Article{Class: ClassPolicy}}
		if !in.PushesChange(toOps) {
			t.Errorf("%s PushesChange(policy that became an operations event) = false, want true", pattern)
		}
	}
	edited := &Change{Type: ChangeUpdated, Article: Article{Collection: "hr", Class: ClassRunbook},
		Previous: &Article{Collection: "hr", Class: ClassRunbook}}
	if in.PushesChange(edited) {
		t.Error("hybrid PushesChange(runbook edited inside the scope) = true, want false")
	}
}

// TestScopeMetadataNeedsKey checks that a scope's metadata key must be on
// the article even when its value is empty, as the stores' queries decide.
func TestScopeMetadataNeedsKey(t *testing.T) {
	s := Scope{Metadata: map[string]string{"flag": ""}}
	if s.Matches(&Article{Metadata: map[string]string{}}) {
		t.Error("scope flag=\"\" matches an article without the key, want no match")
	}
	if !s.Matches(&Article{Metadata: map[string]string{"flag": ""}}) {
		t.Error("scope flag=\"\" does not match an article with flag=\"\"")
	}
}

// TestScopeEmpty checks that only a scope that names nothing is empty: a
// metadata key with an empty value still selects.
func TestScopeEmpty(t *testing.T) {
	for _, c := range []struct {
		s    Scope
		want bool
	}{
		{Scope{}, true},
		{Scope{Collections: []string{}, Tags: []string{}, Classes: []Class{}, Metadata: map[string]string{}}, true},
		{Scope{Metadata: map[string]string{"flag": ""}}, false},
		{Scope{Tags: []string{"a"}}, false},
		{Scope{Classes: []Class{ClassPolicy}}, false},
		{Scope{Collections: []string{"c"}}, false},
	} {
		if got := c.s.Empty(); got != c.want {
			t.Errorf("%+v.Empty() = %v, want %v", c.s, got, c.want)
		}
	}
}

func TestFoldMetadata(t *testing.T) {
	for _, c := range [][2]string{
		{" Payments-API ", "payments-api"},
		{"STRASSE", "straße"},
		{"ΟΔΟΣ", "οδος"},
		{"İSTANBUL", "i̇stanbul"},
	} {
		if a, b := FoldMetadata(c[0]), FoldMetadata(c[1]); a != b {
			t.Errorf("FoldMetadata(%q) = %q and FoldMetadata(%q) = %q, want them equal", c[0], a, c[1], b)
		}
	}
	if FoldMetadata("etcd") == FoldMetadata("etc") {
		t.Error("FoldMetadata makes etcd equal etc")
	}
}

// TestMetadataFoldHashIsFNV checks the hash against hash/fnv.
func TestMetadataFoldHashIsFNV(t *testing.T) {
	h := fnv.New64a()
	h.Write([]byte("team\x00platform"))
	if got, want := MetadataFoldHash(" Team", "PLATFORM"), h.Sum64(); got != want {
		t.Errorf("MetadataFoldHash = %x, want %x", got, want)
	}
}

func TestEqualFoldMetadata(t *testing.T) {
	for _, a := range []string{"", " Payments-API ", "payments-api", "payments_api", "STRASSE", "straße", "strasse ",
		"ΟΔΟΣ", "οδος", "İSTANBUL", "i̇stanbul", "istanbul", "etcd", "etc", "ETCD", "K", "k", "\u212a"} {
		for _, b := range []string{"", "payments-api", "PAYMENTS-API", "straße", "STRASSE", "οδος", "i̇stanbul", "ISTANBUL", "etcd", "etc", "k", "\u212a"} {
			want := FoldMetadata(a) == FoldMetadata(b)
			if got := EqualFoldMetadata(a, b); got != want {
				t.Errorf("EqualFoldMetadata(%q, %q) = %v, want %v as FoldMetadata gives", a, b, got, want)
			}
			if want && MetadataFoldHash(a, "v") != MetadataFoldHash(b, " V") {
				t.Errorf("MetadataFoldHash differs for keys %q and %q, which are equal after fold", a, b)
			}
		}
	}
}
