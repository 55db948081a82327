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
	MaxOwnerLen      = 200  // characters
)

// Bounds of Article.ReviewEvery. A year counts 365 days here.
const (
	MinReviewEvery = 24 * time.Hour
	MaxReviewEvery = 5 * 365 * 24 * time.Hour
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
	// ReviewEvery is how often the article must be reviewed, from
	// MinReviewEvery to MaxReviewEvery, or zero when it needs no review.
	// Every new version counts as a review. It has no JSON name because
	// encoding/json would write nanoseconds, so callers write it with
	// FormatDuration.
	ReviewEvery time.Duration `json:"-"`
	// Owner is who reviews the article, such as a team or an email
	// address: free text of at most MaxOwnerLen characters on one line.
	Owner string `json:"owner,omitempty"`
}

// ReviewDue returns when the next review of this version falls due: its
// UpdatedAt, because writing a version counts as a review, plus
// ReviewEvery. It returns the zero time when ReviewEvery is zero.
func (a *Article) ReviewDue() time.Time {
	if a.ReviewEvery <= 0 {
		return time.Time{}
	}
	return a.UpdatedAt.Add(a.ReviewEvery)
}

// ReviewOverdue reports whether a review of this version was due at or
// before now. It is meaningful for the current version only, because a
// later version is a review of the article.
func (a *Article) ReviewOverdue(now time.Time) bool {
	due := a.ReviewDue()
	return !due.IsZero() && !now.Before(due)
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
	a.Owner = strings.TrimSpace(a.Owner)
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
		// The review fields are left out when empty, so that articles
		// written before these fields existed keep their hashes and a
		// repeated import of them creates no version.
		ReviewEvery time.Duration `json:",omitempty"`
		Owner       string        `json:",omitempty"`
	}{a.Title, a.Body, a.Collection, a.Class, a.Tags, a.Metadata, a.Status, a.ReviewEvery, a.Owner})
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
		return &FieldError{Field: field, Message: fmt.Sprintf("%q is invalid: use ASCII letters, digits, '.', '_' and '-', starting with a letter or digit", id)}
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
	if next := a.Metadata[ReplacedByKey]; next != "" {
		field := "metadata." + ReplacedByKey
		if next == a.ID {
			return &FieldError{Field: field, Message: fmt.Sprintf("names the article itself, %q: give the id of the article that replaces it, or leave the key out", next)}
		}
		if err := ValidateID(field, next); err != nil {
			return err
		}
	}
	if err := checkReviewEvery("review_every", a.ReviewEvery); err != nil {
		return err
	}
	return checkOwner(a.Owner)
}

// ReplacedByKey is the metadata key that names the article which replaces
// this one, usually a deprecated one. The article named need not exist
// yet, because imports write articles in any order; an empty value names
// none.
const ReplacedByKey = "replaced_by"

// checkReviewEvery checks a review interval given under the name field.
// Zero means no review.
func checkReviewEvery(field string, d time.Duration) error {
	switch {
	case d == 0:
		return nil
	case d < MinReviewEvery:
		return &FieldError{Field: field, Message: fmt.Sprintf("is %s; the minimum is %s (one day): give a longer interval, or none when the article needs no review", FormatDuration(d), FormatDuration(MinReviewEvery))}
	case d > MaxReviewEvery:
		return &FieldError{Field: field, Message: fmt.Sprintf("is %s; the maximum is %s (5 years): give a shorter interval", FormatDuration(d), FormatDuration(MaxReviewEvery))}
	}
	return nil
}

// checkOwner checks a trimmed owner. Owners appear in search results and
// events, so control characters, which could garble a terminal or forge
// log lines, are rejected.
func checkOwner(owner string) error {
	if !utf8.ValidString(owner) {
		return &FieldError{Field: "owner", Message: "is not valid UTF-8: send the owner as UTF-8 text"}
	}
	if n := utf8.RuneCountInString(owner); n > MaxOwnerLen {
		return &FieldError{Field: "owner", Message: fmt.Sprintf("is %d characters long; the maximum is %d: name a team or an email address", n, MaxOwnerLen)}
	}
	if i := strings.IndexFunc(owner, unicode.IsControl); i >= 0 {
		c, _ := utf8.DecodeRuneInString(owner[i:])
		return &FieldError{Field: "owner", Message: fmt.Sprintf("contains the control character %U at byte %d: write the owner on one line of printable characters", c, i)}
	}
	return nil
}

// ParseReviewEvery reads and checks a review interval given as a Go
// duration, such as "2160h" for 90 days, under the name field, so that
// errors name the field as the caller wrote it. The empty string is zero,
// no review.
func ParseReviewEvery(field, s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, &FieldError{Field: field, Message: fmt.Sprintf("%q is not a duration: use hours, such as 2160h for 90 days or 8760h for a year", s)}
	}
	if err := checkReviewEvery(field, d); err != nil {
		return 0, err
	}
	return d, nil
}

// FormatDuration returns d as a Go duration without zero minutes and
// seconds at its end, such as "2160h" rather than "2160h0m0s" or "1h30m"
// rather than "1h30m0s". time.ParseDuration reads it back.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
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
		return &FieldError{Field: bare, Message: fmt.Sprintf("key %.40q… is %d bytes long; the maximum is %d: use a shorter key", k, len(k), MaxMetadataKey)}
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
		return &FieldError{Field: field, Message: fmt.Sprintf("is %d bytes long; the maximum is %d: use a shorter name", len(v), MaxNameLen)}
	}
	if !namePattern.MatchString(v) {
		return &FieldError{Field: field, Message: fmt.Sprintf("%q is invalid: use lower-case letters, digits, '.', '_' and '-'", v)}
	}
	return nil
}

func checkText(field, v string, max int) error {
	if len(v) > max {
		return &FieldError{Field: field, Message: fmt.Sprintf("is %d bytes long; the maximum is %d: shorten it", len(v), max)}
	}
	if !utf8.ValidString(v) {
		return &FieldError{Field: field, Message: "is not valid UTF-8: send the text encoded as UTF-8"}
	}
	if strings.ContainsRune(v, 0) {
		return &FieldError{Field: field, Message: "contains a NUL character: remove it"}
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
