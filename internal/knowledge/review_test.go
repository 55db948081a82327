package knowledge

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func validArticle() Article {
	a := Article{ID: "a", Title: "A", Body: "Body.", Collection: "ops", Class: ClassRunbook}
	a.Normalize()
	return a
}

func TestValidateReviewFields(t *testing.T) {
	tests := []struct {
		name        string
		reviewEvery time.Duration
		owner       string
		wantField   string // empty when the article is valid
		wantMessage string
	}{
		{name: "none"},
		{name: "one day", reviewEvery: 24 * time.Hour, owner: "Platform team"},
		{name: "five years", reviewEvery: MaxReviewEvery, owner: strings.Repeat("é", MaxOwnerLen)},
		{name: "under a day", reviewEvery: 23 * time.Hour, wantField: "review_every", wantMessage: "is 23h; the minimum is 24h"},
		{name: "negative", reviewEvery: -48 * time.Hour, wantField: "review_every", wantMessage: "is -48h; the minimum is 24h"},
		{name: "over five years", reviewEvery: MaxReviewEvery + time.Hour, wantField: "review_every", wantMessage: "is 43801h; the maximum is 43800h (5 years)"},
		{name: "owner too long", owner: strings.Repeat("x", MaxOwnerLen+1), wantField: "owner", wantMessage: "is 201 characters long; the maximum is 200"},
		{name: "owner with newline", owner: "a\nb", wantField: "owner", wantMessage: "contains the control character U+000A at byte 1"},
		{name: "owner not utf-8", owner: "a\xffb", wantField: "owner", wantMessage: "is not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := validArticle()
			a.ReviewEvery, a.Owner = tt.reviewEvery, tt.owner
			err := a.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %v, want a *FieldError", err)
			}
			if fe.Field != tt.wantField {
				t.Errorf("field = %q, want %q", fe.Field, tt.wantField)
			}
			if !strings.Contains(fe.Message, tt.wantMessage) {
				t.Errorf("message = %q, want it to contain %q", fe.Message, tt.wantMessage)
			}
		})
	}
}

func TestNormalizeTrimsOwner(t *testing.T) {
	a := Article{Owner: "  sre@example.com \t"}
	a.Normalize()
	if a.Owner != "sre@example.com" {
		t.Errorf("owner = %q, want %q", a.Owner, "sre@example.com")
	}
}

func TestParseReviewEvery(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "", want: 0},
		{in: " 2160h ", want: 2160 * time.Hour},
		{in: "24h", want: 24 * time.Hour},
		{in: "90d", wantErr: `review_interval "90d" is not a duration: use hours`},
		{in: "1h", wantErr: "review_interval is 1h; the minimum is 24h"},
	}
	for _, tt := range tests {
		got, err := ParseReviewEvery("review_interval", tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseReviewEvery(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseReviewEvery(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2160 * time.Hour:             "2160h",
		90 * time.Minute:             "1h30m",
		time.Minute:                  "1m",
		30 * time.Second:             "30s",
		time.Hour + 30*time.Second:   "1h0m30s",
		1500 * time.Millisecond:      "1.5s",
		0:                            "0s",
		MaxReviewEvery + time.Minute: "43800h1m",
		-MinReviewEvery:              "-24h",
	} {
		got := FormatDuration(d)
		if got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(got); err != nil || back != d {
			t.Errorf("time.ParseDuration(%q) = %v, %v, want %v", got, back, err, d)
		}
	}
}

func TestReviewDueAndOverdue(t *testing.T) {
	updated := time.Date(2025, time.January, 1, 12, 0, 0, 0, time.UTC)
	a := Article{UpdatedAt: updated}
	if due := a.ReviewDue(); !due.IsZero() {
		t.Errorf("ReviewDue without ReviewEvery = %v, want the zero time", due)
	}
	if a.ReviewOverdue(updated.Add(100 * 365 * 24 * time.Hour)) {
		t.Error("ReviewOverdue without ReviewEvery = true, want false")
	}

	a.ReviewEvery = 30 * 24 * time.Hour
	due := updated.Add(30 * 24 * time.Hour)
	if got := a.ReviewDue(); !got.Equal(due) {
		t.Errorf("ReviewDue = %v, want %v", got, due)
	}
	if a.ReviewOverdue(due.Add(-time.Nanosecond)) {
		t.Error("ReviewOverdue just before the due time = true, want false")
	}
	if !a.ReviewOverdue(due) {
		t.Error("ReviewOverdue at the due time = false, want true")
	}
}

// TestContentHashWithoutReviewFields pins the hash of an article without
// review fields to the encoding used before those fields existed, so that
// stored articles keep their hashes and importing them again writes
// nothing.
func TestContentHashWithoutReviewFields(t *testing.T) {
	a := validArticle()
	a.Tags = []string{"db"}
	a.Metadata = map[string]string{"team": "sre"}
	legacy, err := json.Marshal(struct {
		Title, Body, Collection string
		Class                   Class
		Tags                    []string
		Metadata                map[string]string
		Status                  Status
	}{a.Title, a.Body, a.Collection, a.Class, a.Tags, a.Metadata, a.Status})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(legacy)
	if got, want := a.ContentHash(), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("ContentHash = %s, want the legacy hash %s", got, want)
	}

	withOwner := a
	withOwner.Owner = "sre"
	withReview := a
	withReview.ReviewEvery = 48 * time.Hour
	if withOwner.ContentHash() == a.ContentHash() {
		t.Error("setting Owner left the hash unchanged, want a new version")
	}
	if withReview.ContentHash() == a.ContentHash() {
		t.Error("setting ReviewEvery left the hash unchanged, want a new version")
	}
}
