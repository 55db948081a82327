package knowledge

import (
	"slices"
	"time"
)

// Scope selects the articles an integration sees. Each non-empty dimension
// must match: the article's collection is one of Collections, its class is
// one of Classes, it carries at least one of Tags, and every Metadata key
// has the given value. An empty Scope matches every article.
type Scope struct {
	Collections []string          `json:"collections"`
	Classes     []Class           `json:"classes"`
	Tags        []string          `json:"tags"`
	Metadata    map[string]string `json:"metadata"`
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
	for k, v := range s.Metadata {
		if a.Metadata[k] != v {
			return false
		}
	}
	return true
}

// Normalize lower-cases and sorts tags and classes, and drops duplicates,
// so that a scope compares and stores canonically.
func (s *Scope) Normalize() {
	s.Collections = sortedUnique(s.Collections)
	s.Tags = sortedUnique(s.Tags)
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

// Validate checks every name in the scope.
func (s Scope) Validate() error {
	for _, c := range s.Collections {
		if err := checkName("scope.collections", c); err != nil {
			return err
		}
	}
	for _, c := range s.Classes {
		if err := checkName("scope.classes", string(c)); err != nil {
			return err
		}
	}
	for _, t := range s.Tags {
		if err := checkText("scope.tags", t, MaxTagLen); err != nil {
			return err
		}
	}
	for k, v := range s.Metadata {
		if k == "" {
			return &FieldError{Field: "scope.metadata", Message: "has an empty key"}
		}
		if err := checkText("scope.metadata."+k, v, MaxMetadataValue); err != nil {
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

func sortedUnique[T ~string](in []T) []T {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// ChangeType says what a change did to an article.
type ChangeType string

const (
	ChangeCreated    ChangeType = "created"
	ChangeUpdated    ChangeType = "updated"
	ChangeDeprecated ChangeType = "deprecated"
	ChangeArchived   ChangeType = "archived"
)

// ChangeTypeFor returns the type of the change that turns prev into next.
// prev is nil for a new article.
func ChangeTypeFor(prev, next *Article) ChangeType {
	switch {
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
}
