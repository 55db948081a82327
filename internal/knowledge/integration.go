package knowledge

import (
	"fmt"
	"time"
)

// Pattern is how knowledge moves to an integration's tool.
type Pattern string

const (
	PatternAuto   Pattern = "auto"
	PatternPush   Pattern = "push"
	PatternPull   Pattern = "pull"
	PatternHybrid Pattern = "hybrid"
)

// Pushes reports whether khub sends webhooks for this pattern.
func (p Pattern) Pushes() bool { return p == PatternPush || p == PatternHybrid }

// Pulls reports whether the tool gets a pull token for this pattern.
func (p Pattern) Pulls() bool { return p == PatternPull || p == PatternHybrid }

// ClassOperations is the class of the articles in which khub reports its
// own delivery events (pauses, resumptions, exhausted retries), so that an
// operations channel can subscribe to them.
const ClassOperations Class = "operations"

// OpsCollection is the collection of the operations articles.
const OpsCollection = "khub-operations"

// Integration is a connection from khub to one tool.
type Integration struct {
	ID      string  `json:"id"`
	Name    string  `json:"name"`
	Pattern Pattern `json:"pattern"`
	// Freshness is the longest time a change in scope may take to reach the
	// tool.
	Freshness time.Duration `json:"-"`
	// PollInterval is the polling interval that the tool declares, or zero
	// when it does not poll.
	PollInterval time.Duration `json:"-"`
	// Lookups is true when the tool fetches knowledge at query time during
	// a workflow step, so reads are fresh whatever the window.
	Lookups    bool     `json:"lookups"`
	AcceptRisk bool     `json:"accept_risk"`
	Scope      Scope    `json:"scope"`
	Reasons    []string `json:"reasons"`
	WebhookURL string   `json:"-"`
	// WebhookSecret is the Standard Webhooks signing secret, "whsec_" and
	// base64. Never log it.
	WebhookSecret string `json:"-"`
	// TokenHash is the hex SHA-256 of the pull token; the token itself is
	// shown once at creation and not stored.
	TokenHash string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	// Delivery tunes webhook delivery; zero fields take the defaults.
	Delivery DeliverySettings `json:"delivery"`
}

// PushesChange reports whether a change that the scope announces is sent
// by webhook. A change that leaves the scope always is, as a removal: the
// tool must drop the article now, not at its next pull. Otherwise push
// sends every change, and hybrid only time-sensitive classes, operations
// events, deprecations and archivals. Operations events go only to
// integrations whose scope names their class or collection.
func (in *Integration) PushesChange(c *Change) bool {
	if (in.Pattern == PatternPush || in.Pattern == PatternHybrid) && in.Scope.Leaves(c) {
		// Also when the article became an operations event: the tool
		// must drop what it holds.
		return true
	}
	if c.Article.Class == ClassOperations && !in.Scope.NamesOperations() {
		// An integration receives khub's operations events only when its
		// scope names them, so a tool never receives its own outages.
		return false
	}
	switch in.Pattern {
	case PatternPush:
		return true
	case PatternHybrid:
		return c.Article.Class.TimeSensitive() || c.Article.Class == ClassOperations ||
			c.Type == ChangeDeprecated || c.Type == ChangeArchived
	}
	return false
}

// ParseDuration parses a Go duration for the named field and rejects
// values that are zero, negative or not durations.
func ParseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, &FieldError{Field: field, Message: "is required: give a duration such as 30s, 15m or 24h"}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, &FieldError{Field: field, Message: fmt.Sprintf("%q is not a duration: use a number with a unit, such as 30s, 15m or 24h", s)}
	}
	if d <= 0 {
		return 0, &FieldError{Field: field, Message: fmt.Sprintf("%q must be positive", s)}
	}
	return d, nil
}
