// Package knowledge holds khub's domain types: articles, versions, classes,
// scopes and changes. It does no I/O.
package knowledge

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Class is the kind of knowledge an article carries. The five built-in
// classes are listed below; any other value that passes ValidateClass is a
// custom class.
type Class string

const (
	ClassPolicy     Class = "policy"
	ClassSafety     Class = "safety"
	ClassCompliance Class = "compliance"
	ClassRunbook    Class = "runbook"
	ClassReference  Class = "reference"
)

// TimeSensitive reports whether tools must reflect changes of this class at
// once. Time-sensitive classes are pushed rather than left to polling.
func (c Class) TimeSensitive() bool {
	switch c {
	case ClassPolicy, ClassSafety, ClassCompliance:
		return true
	}
	return false
}

// TimeSensitiveClasses lists the built-in classes for which TimeSensitive
// is true.
var TimeSensitiveClasses = []Class{ClassPolicy, ClassSafety, ClassCompliance}

// Status is an article's lifecycle state.
type Status string

const (
	StatusPublished  Status = "published"
	StatusDeprecated Status = "deprecated"
	StatusArchived   Status = "archived"
)

// Valid reports whether s is one of the three known statuses.
func (s Status) Valid() bool {
	return s == StatusPublished || s == StatusDeprecated || s == StatusArchived
}

// Limits on article fields. They bound memory per request and keep indexes
// small; they are generous for hand-written knowledge.
const (
	MaxIDLen         = 200
	MaxTitleLen      = 500     // bytes
	MaxBodyLen       = 1 << 20 // bytes (1 MiB)
	MaxTags          = 64
	MaxTagLen        = 100 // bytes
	MaxMetadataKeys  = 64
	MaxMetadataKey   = 100  // bytes
	MaxMetadataValue = 1000 // bytes
	MaxNameLen       = 100  // bytes, for collections and classes
)

// Article is one version of a knowledge article. Fields that the store sets
// (Version, CreatedAt, UpdatedAt, Hash) are ignored on input.
type Article struct {
	ID         string            `json:"id"`
	Title      string            `json:"title"`
	Body       string            `json:"body"`
	Collection string            `json:"collection"`
	Class      Class             `json:"class"`
	Tags       []string          `json:"tags"`
	Metadata   map[string]string `json:"metadata"`
	Status     Status            `json:"status"`
	Version    int64             `json:"version"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
}

// Normalize fills defaults and puts tags in a canonical order so that equal
// content hashes equally: status defaults to published, tags are trimmed,
// lower-cased, de-duplicated and sorted, nil maps and slices become empty.
func (a *Article) Normalize() {
	if a.Status == "" {
		a.Status = StatusPublished
	}
	a.Title = strings.TrimSpace(a.Title)
	a.Collection = strings.TrimSpace(a.Collection)
	a.Class = Class(strings.ToLower(strings.TrimSpace(string(a.Class))))
	tags := make([]string, 0, len(a.Tags))
	for _, t := range a.Tags {
		t = strings.ToLower(strings.TrimSpace(t))
		if t != "" {
			tags = append(tags, t)
		}
	}
	slices.Sort(tags)
	a.Tags = slices.Compact(tags)
	if a.Metadata == nil {
		a.Metadata = map[string]string{}
	}
}

// ContentHash returns a hex SHA-256 over every field a writer controls. Two
// writes with the same hash are the same content, so the second creates no
// version. Call Normalize first.
func (a *Article) ContentHash() string {
	// encoding/json sorts map keys, so the encoding is canonical.
	b, _ := json.Marshal(struct {
		Title, Body, Collection string
		Class                   Class
		Tags                    []string
		Metadata                map[string]string
		Status                  Status
	}{a.Title, a.Body, a.Collection, a.Class, a.Tags, a.Metadata, a.Status})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

var (
	idPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
)

// ValidateID checks an article or integration id: 1 to MaxIDLen characters
// from A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit.
func ValidateID(field, id string) error {
	switch {
	case id == "":
		return &FieldError{Field: field, Message: "is required"}
	case len(id) > MaxIDLen:
		return &FieldError{Field: field, Message: fmt.Sprintf("is %d characters long; the maximum is %d", len(id), MaxIDLen)}
	case !idPattern.MatchString(id):
		return &FieldError{Field: field, Message: fmt.Sprintf("%q is invalid: use letters, digits, '.', '_' and '-', starting with a letter or digit", id)}
	}
	return nil
}

// Validate checks a normalized article before it is stored. It returns a
// *FieldError naming the first invalid field.
func (a *Article) Validate() error {
	if err := ValidateID("id", a.ID); err != nil {
		return err
	}
	if a.Title == "" {
		return &FieldError{Field: "title", Message: "is required"}
	}
	if err := checkText("title", a.Title, MaxTitleLen); err != nil {
		return err
	}
	if err := checkText("body", a.Body, MaxBodyLen); err != nil {
		return err
	}
	if a.Collection == "" {
		return &FieldError{Field: "collection", Message: "is required"}
	}
	if err := checkName("collection", a.Collection); err != nil {
		return err
	}
	if a.Class == "" {
		return &FieldError{Field: "class", Message: "is required: use policy, safety, compliance, runbook, reference or a custom lower-case name"}
	}
	if err := checkName("class", string(a.Class)); err != nil {
		return err
	}
	if !a.Status.Valid() {
		return &FieldError{Field: "status", Message: fmt.Sprintf("%q is invalid: use published, deprecated or archived", a.Status)}
	}
	if len(a.Tags) > MaxTags {
		return &FieldError{Field: "tags", Message: fmt.Sprintf("has %d entries; the maximum is %d", len(a.Tags), MaxTags)}
	}
	for _, t := range a.Tags {
		if err := checkText("tags", t, MaxTagLen); err != nil {
			return err
		}
	}
	if len(a.Metadata) > MaxMetadataKeys {
		return &FieldError{Field: "metadata", Message: fmt.Sprintf("has %d keys; the maximum is %d", len(a.Metadata), MaxMetadataKeys)}
	}
	for k, v := range a.Metadata {
		if err := checkMetadataKey("metadata.", k); err != nil {
			return err
		}
		if err := checkText("metadata."+k, v, MaxMetadataValue); err != nil {
			return err
		}
	}
	return nil
}

// checkMetadataKey checks a metadata key given under the field prefix, such
// as "metadata." or "scope.metadata.". Its errors name the prefix without
// the dot and quote the key in the message, because an empty, overlong or
// non-UTF-8 key would make an unreadable field name. Errors about a value
// name prefix and key instead, as in "metadata.owner".
func checkMetadataKey(prefix, k string) error {
	bare := strings.TrimSuffix(prefix, ".")
	switch {
	case k == "":
		return &FieldError{Field: bare, Message: "has an empty key: give every metadata value a key"}
	case len(k) > MaxMetadataKey:
		return &FieldError{Field: bare, Message: fmt.Sprintf("key %.40q… is %d bytes long; the maximum is %d", k, len(k), MaxMetadataKey)}
	case !utf8.ValidString(k):
		return &FieldError{Field: bare, Message: "has a key that is not valid UTF-8"}
	case strings.ContainsFunc(k, unicode.IsControl):
		return &FieldError{Field: bare, Message: fmt.Sprintf("key %q contains a control character: use printable characters in metadata keys", k)}
	}
	return nil
}

// ValidateClass checks a class name given outside an article, such as in a
// scope or a search filter.
func ValidateClass(field string, c Class) error { return checkName(field, string(c)) }

func checkName(field, v string) error {
	if len(v) > MaxNameLen {
		return &FieldError{Field: field, Message: fmt.Sprintf("is %d bytes long; the maximum is %d", len(v), MaxNameLen)}
	}
	if !namePattern.MatchString(v) {
		return &FieldError{Field: field, Message: fmt.Sprintf("%q is invalid: use lower-case letters, digits, '.', '_' and '-'", v)}
	}
	return nil
}

func checkText(field, v string, max int) error {
	if len(v) > max {
		return &FieldError{Field: field, Message: fmt.Sprintf("is %d bytes long; the maximum is %d", len(v), max)}
	}
	if !utf8.ValidString(v) {
		return &FieldError{Field: field, Message: "is not valid UTF-8"}
	}
	if strings.ContainsRune(v, 0) {
		return &FieldError{Field: field, Message: "contains a NUL character"}
	}
	return nil
}

// FieldError is a validation failure of one input field. Its message is safe
// to show to the client.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + " " + e.Message }
