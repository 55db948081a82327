package knowledge

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/cases"
)

// Scope selects the articles an integration receives. Each non-empty dimension
// must match: the article's collection is one of Collections, its class is
// one of Classes, it carries at least one of Tags, and every Metadata key
// has the given value. An empty Scope matches every article.
type Scope struct {
	Collections []string          `json:"collections"`
	Classes     []Class           `json:"classes"`
	Tags        []string          `json:"tags"`
	Metadata    map[string]string `json:"metadata"`
}

// Empty reports whether the scope names nothing, so that it matches every
// article.
func (s Scope) Empty() bool {
	return len(s.Collections) == 0 && len(s.Classes) == 0 && len(s.Tags) == 0 && len(s.Metadata) == 0
}

// Matches reports whether the article is inside the scope.
func (s Scope) Matches(a *Article) bool {
	if len(s.Collections) > 0 && !slices.Contains(s.Collections, a.Collection) {
		return false
	}
	if len(s.Classes) > 0 && !slices.Contains(s.Classes, a.Class) {
		return false
	}
	if len(s.Tags) > 0 && !slices.ContainsFunc(s.Tags, func(t string) bool { return slices.Contains(a.Tags, t) }) {
		return false
	}
	// A key must be present, even for an empty value, as the stores'
	// queries require.
	for k, v := range s.Metadata {
		if got, ok := a.Metadata[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Normalize trims and lower-cases tags as Article.Normalize does, sorts
// every list and drops duplicates, so that a scope compares and stores
// canonically and an upper-case tag matches the lower-cased tags of
// articles. Classes and collections are left as given, so that Validate
// rejects an upper-case one instead of guessing. An empty tag is kept, so
// that Validate reports it instead of the scope widening to every tag.
func (s *Scope) Normalize() {
	s.Collections = sortedUnique(s.Collections)
	s.Tags = sortedUnique(lowerTrimmed(s.Tags))
	s.Classes = sortedUnique(s.Classes)
	if s.Metadata == nil {
		s.Metadata = map[string]string{}
	}
	if s.Collections == nil {
		s.Collections = []string{}
	}
	if s.Tags == nil {
		s.Tags = []string{}
	}
	if s.Classes == nil {
		s.Classes = []Class{}
	}
}

// ScopeFields names the input fields that a scope was read from, so that a
// validation error names the field the caller sent. MetadataPrefix is
// followed by the metadata key, as in "scope.metadata.region".
type ScopeFields struct {
	Collections    string
	Classes        string
	Tags           string
	MetadataPrefix string
}

// IntegrationScopeFields are the field names of a scope in the body of an
// integration request.
var IntegrationScopeFields = ScopeFields{
	Collections:    "scope.collections",
	Classes:        "scope.classes",
	Tags:           "scope.tags",
	MetadataPrefix: "scope.metadata.",
}

// Validate checks every name in the scope of an integration request.
func (s Scope) Validate() error { return s.ValidateFields(IntegrationScopeFields) }

// ValidateFields checks every name in the scope and names the field at
// fault with the names in f.
func (s Scope) ValidateFields(f ScopeFields) error {
	for _, c := range s.Collections {
		if err := checkName(f.Collections, c); err != nil {
			return err
		}
	}
	for _, c := range s.Classes {
		if err := checkName(f.Classes, string(c)); err != nil {
			return err
		}
	}
	for _, t := range s.Tags {
		if t == "" {
			return &FieldError{Field: f.Tags, Message: "contains an empty tag, which no article has: remove it or fill in the tag"}
		}
		if err := checkText(f.Tags, t, MaxTagLen); err != nil {
			return err
		}
	}
	for k, v := range s.Metadata {
		if err := checkMetadataKey(f.MetadataPrefix, k); err != nil {
			return err
		}
		if err := checkText(f.MetadataPrefix+k, v, MaxMetadataValue); err != nil {
			return err
		}
	}
	return nil
}

// HasTimeSensitive reports whether the scope can contain a time-sensitive
// class. A scope that names no classes contains all of them.
func (s Scope) HasTimeSensitive() bool {
	if len(s.Classes) == 0 {
		return true
	}
	return slices.ContainsFunc(s.Classes, Class.TimeSensitive)
}

// HasOther reports whether the scope can contain a class that is not
// time-sensitive. A scope that names no classes contains all of them.
func (s Scope) HasOther() bool {
	if len(s.Classes) == 0 {
		return true
	}
	return slices.ContainsFunc(s.Classes, func(c Class) bool { return !c.TimeSensitive() })
}

// lowerTrimmed returns a copy of tags with each one trimmed of white space
// and lower-cased.
func lowerTrimmed(tags []string) []string {
	if tags == nil {
		return nil
	}
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = strings.ToLower(strings.TrimSpace(t))
	}
	return out
}

func sortedUnique[T ~string](in []T) []T {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// ChangeType is the kind of change made to an article.
type ChangeType string

const (
	ChangeCreated    ChangeType = "created"
	ChangeUpdated    ChangeType = "updated"
	ChangeDeprecated ChangeType = "deprecated"
	ChangeArchived   ChangeType = "archived"
)

// ChangeTypeFor returns the type of the change that turns prev into next.
// prev is nil for a new article. A new article that is already archived or
// deprecated is an archival or a deprecation, because tools that act on
// those (hybrid integrations push them) must receive it like any other.
func ChangeTypeFor(prev, next *Article) ChangeType {
	switch {
	case prev == nil && next.Status == StatusArchived:
		return ChangeArchived
	case prev == nil && next.Status == StatusDeprecated:
		return ChangeDeprecated
	case prev == nil:
		return ChangeCreated
	case next.Status == StatusArchived && prev.Status != StatusArchived:
		return ChangeArchived
	case next.Status == StatusDeprecated && prev.Status != StatusDeprecated:
		return ChangeDeprecated
	}
	return ChangeUpdated
}

// Change is one entry of the change log: a new version of an article.
// Cursor is the entry's position in the log; positions grow with commit
// order, start at 1 and may have gaps.
type Change struct {
	Cursor    int64      `json:"cursor"`
	ArticleID string     `json:"article_id"`
	Version   int64      `json:"version"`
	Type      ChangeType `json:"type"`
	Time      time.Time  `json:"time"`
	// Article is the version this change created, with the full body.
	Article Article `json:"-"`
	// Previous is the version before, with only the fields that a scope
	// tests (collection, class, tags, metadata) and the status, or nil
	// for a first version or when the reader did not load it.
	Previous *Article `json:"-"`
	// Left is set by a filtered read of the change log when the change
	// matched only by the version before: it moves the article out of
	// the filters' scope.
	Left bool `json:"-"`
}

// ChangeRemoved is the change type that readers of a scope receive for a
// change that moved an article out of it. The change's own type would
// reveal something of a version the reader may not read.
const ChangeRemoved ChangeType = "removed"

// Leaves reports whether the change moves its article out of the scope:
// the version before matched and the new one does not. A reader of the
// scope must drop its copy of the article, and must not receive the new
// version, which is outside what it may see.
func (s Scope) Leaves(c *Change) bool {
	_, left := AnnouncedTo([]Scope{s}, c)
	return left
}

// Announces reports whether a reader of the scope receives the change:
// its new version matches, or it leaves the scope.
func (s Scope) Announces(c *Change) bool {
	announced, _ := AnnouncedTo([]Scope{s}, c)
	return announced
}

// AnnouncedTo reports whether a reader of every scope receives the change,
// as the stores' change-log reads decide it: the new version matches all
// of them, or the version before did. left reports the second case.
func AnnouncedTo(scopes []Scope, c *Change) (announced, left bool) {
	matchAll := func(a *Article) bool {
		for i := range scopes {
			if !scopes[i].Matches(a) {
				return false
			}
		}
		return true
	}
	if matchAll(&c.Article) {
		return true, false
	}
	left = c.Previous != nil && matchAll(c.Previous)
	return left, left
}

// NamesOperations reports whether the scope explicitly selects khub's
// operations events, by their class or their collection.
func (s Scope) NamesOperations() bool {
	return slices.Contains(s.Classes, ClassOperations) || slices.Contains(s.Collections, OpsCollection)
}

// FoldMetadata returns a metadata key or value as lookups compare it:
// without surrounding spaces and case-folded, so that "STRASSE" equals
// "straße" and "ΟΔΟΣ" equals "οδος".
func FoldMetadata(s string) string {
	s = strings.TrimSpace(s)
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			// A Caser keeps state, so each call takes its own.
			return cases.Fold().String(s)
		}
	}
	return strings.ToLower(s)
}

// EqualFoldMetadata reports whether FoldMetadata(a) equals
// FoldMetadata(b). It allocates nothing when both are ASCII, as lookups
// compare every candidate's metadata with each attribute.
func EqualFoldMetadata(a, b string) bool {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if isASCII(a) && isASCII(b) {
		return strings.EqualFold(a, b)
	}
	// strings.EqualFold folds rune by rune, while cases.Fold also makes
	// ß equal ss.
	return FoldMetadata(a) == FoldMetadata(b)
}

// MetadataFoldHash returns the 64-bit FNV-1a hash of a metadata key and
// value after FoldMetadata, joined by a NUL byte. Pairs that are equal
// after fold have equal hashes, so a hash missing from an article's
// MetadataFoldHashes rules the pair out. A hash found there may, rarely,
// belong to another pair.
func MetadataFoldHash(key, value string) uint64 {
	// FNV-1a by hand, because hash/fnv takes byte slices, and converting
	// the strings allocates once per pair of every indexed article.
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i, s := range [2]string{FoldMetadata(key), FoldMetadata(value)} {
		if i > 0 {
			h *= prime // the NUL byte between them, as h ^ 0 is h
		}
		for j := 0; j < len(s); j++ {
			h = (h ^ uint64(s[j])) * prime
		}
	}
	return h
}

// MetadataFoldHashes returns the MetadataFoldHash of each pair of meta,
// sorted. It is never nil, so that nil means that no hashes were
// computed.
func MetadataFoldHashes(meta map[string]string) []uint64 {
	out := make([]uint64, 0, len(meta))
	for k, v := range meta {
		out = append(out, MetadataFoldHash(k, v))
	}
	slices.Sort(out)
	return out
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
