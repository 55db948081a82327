package knowledge

import (
	"fmt"
	"time"
)

// DeliverySettings tune how one push or hybrid integration's webhooks are
// sent. Zero fields take the hub's defaults, so stored settings stay valid
// when a default changes.
type DeliverySettings struct {
	// InitialBackoff is the ceiling of the first retry wait. Each later
	// wait doubles the ceiling up to MaxBackoff, and the wait is drawn
	// uniformly below the ceiling (full jitter).
	InitialBackoff time.Duration `json:"initial_backoff,omitempty"`
	MaxBackoff     time.Duration `json:"max_backoff,omitempty"`
	// RetryFor is the retry period of a change, counted from its first
	// failed attempt. After it the change is given up and recorded as failed.
	RetryFor time.Duration `json:"retry_for,omitempty"`
	// Timeout bounds one attempt, from connect to the response headers.
	Timeout time.Duration `json:"timeout,omitempty"`
	// BatchSize is the maximum number of events sent in one request, as an
	// application/cloudevents-batch+json array. 1 sends one event per
	// request as application/cloudevents+json.
	BatchSize int `json:"batch_size,omitempty"`
	// Coalesce sends only the newest version of each article when several
	// versions wait in one page of the backlog, so a tool that was down
	// catches up faster. The older versions are passed over, not sent.
	Coalesce bool `json:"coalesce,omitempty"`
	// RateLimit caps requests per second to the webhook, and 0 means no cap.
	RateLimit float64 `json:"rate_limit,omitempty"`
	// PauseAfter is the number of failed attempts in a row after which the
	// integration is paused. It then only sends a probe every ProbeEvery
	// until a probe is delivered.
	PauseAfter int           `json:"pause_after,omitempty"`
	ProbeEvery time.Duration `json:"probe_every,omitempty"`
}

// Defaults of DeliverySettings. With these, a change is retried for three
// days, and waits grow from at most 5s to at most 1h.
const (
	DefaultInitialBackoff = 5 * time.Second
	DefaultMaxBackoff     = time.Hour
	DefaultRetryFor       = 72 * time.Hour
	DefaultTimeout        = 15 * time.Second
	DefaultBatchSize      = 1
	DefaultPauseAfter     = 10
	DefaultProbeEvery     = time.Minute

	// MaxBatchSize bounds BatchSize, so one request stays well under a
	// typical receiver's body limit.
	MaxBatchSize = 500
)

// WithDefaults returns the settings with every zero field set to its
// default.
func (s DeliverySettings) WithDefaults() DeliverySettings {
	if s.InitialBackoff <= 0 {
		s.InitialBackoff = DefaultInitialBackoff
	}
	if s.MaxBackoff <= 0 {
		s.MaxBackoff = DefaultMaxBackoff
	}
	s.MaxBackoff = max(s.MaxBackoff, s.InitialBackoff)
	if s.RetryFor <= 0 {
		s.RetryFor = DefaultRetryFor
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultTimeout
	}
	if s.BatchSize <= 0 {
		s.BatchSize = DefaultBatchSize
	}
	if s.PauseAfter <= 0 {
		s.PauseAfter = DefaultPauseAfter
	}
	if s.ProbeEvery <= 0 {
		s.ProbeEvery = DefaultProbeEvery
	}
	return s
}

// Validate checks the settings as given in a request; field names are the
// request's, under "delivery".
func (s DeliverySettings) Validate() error {
	check := func(field string, d, least, most time.Duration) error {
		if d != 0 && (d < least || d > most) {
			return &FieldError{Field: "delivery." + field, Message: fmt.Sprintf("%s is out of range: use a duration from %s to %s", d, least, most)}
		}
		return nil
	}
	for _, err := range []error{
		check("initial_backoff", s.InitialBackoff, 10*time.Millisecond, 24*time.Hour),
		check("max_backoff", s.MaxBackoff, 10*time.Millisecond, 24*time.Hour),
		check("retry_for", s.RetryFor, time.Second, 30*24*time.Hour),
		check("timeout", s.Timeout, 100*time.Millisecond, 2*time.Minute),
		check("probe_every", s.ProbeEvery, 10*time.Millisecond, 24*time.Hour),
	} {
		if err != nil {
			return err
		}
	}
	if s.InitialBackoff != 0 && s.MaxBackoff != 0 && s.MaxBackoff < s.InitialBackoff {
		return &FieldError{Field: "delivery.max_backoff", Message: "is shorter than initial_backoff: make it at least as long"}
	}
	if s.BatchSize < 0 || s.BatchSize > MaxBatchSize {
		return &FieldError{Field: "delivery.batch_size", Message: fmt.Sprintf("%d is out of range: use 1 to %d", s.BatchSize, MaxBatchSize)}
	}
	if s.RateLimit < 0 {
		return &FieldError{Field: "delivery.rate_limit", Message: "must not be negative: give events per second, or 0 for no limit"}
	}
	if s.PauseAfter < 0 {
		return &FieldError{Field: "delivery.pause_after", Message: "must not be negative: give a number of failed attempts, or 0 for the default"}
	}
	return nil
}

// DeliveryState is whether an integration's webhooks flow.
type DeliveryState string

const (
	// StateActive sends changes as they commit.
	StateActive DeliveryState = "active"
	// StatePaused follows a run of failures. Only probes are sent until one
	// is delivered, and then the integration resumes by itself.
	StatePaused DeliveryState = "paused"
	// StateDisabled follows 410 Gone from the tool: nothing is sent until
	// an operator resumes the integration.
	StateDisabled DeliveryState = "disabled"
)
