package client

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a webhook's timestamp may be from the
// receiver's clock, in either direction, before the webhook is rejected as
// a possible replay. Five minutes is the Standard Webhooks recommendation.
const DefaultTolerance = 5 * time.Minute

// Errors returned by VerifyWebhook.
var (
	ErrMissingHeaders   = errors.New("webhook: missing webhook-id, webhook-timestamp or webhook-signature header")
	ErrInvalidTimestamp = errors.New("webhook: timestamp is invalid or outside the tolerance")
	ErrNoMatch          = errors.New("webhook: no signature matches")
)

// VerifyWebhook checks a webhook that khub signed per Standard Webhooks:
// the HMAC-SHA256 of "id.timestamp.body" with the secret ("whsec_" and
// base64) must equal one of the v1 signatures in the webhook-signature
// header, and the timestamp must be within tolerance of now (zero
// tolerance means DefaultTolerance). Pass the raw body bytes as received.
// khub records a 4xx response as failed at once and moves on, so a
// receiver should respond with 503, which khub retries, while it lacks the
// secret.
func VerifyWebhook(secret string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return fmt.Errorf("webhook: secret is not whsec_ followed by base64: %w", err)
	}
	id, ts, sigs := header.Get("webhook-id"), header.Get("webhook-timestamp"), header.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return ErrMissingHeaders
	}
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrInvalidTimestamp
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrInvalidTimestamp
	}

	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	// The header contains space-separated "version,signature" pairs, and
	// several appear while a secret is being rotated.
	for sig := range strings.FieldsSeq(sigs) {
		version, encoded, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(encoded)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatch
}

// EventRemoved is the type of the event for a change that moved an
// article out of the integration's scope. Its Data holds only the
// article's ID and Version; the receiver should drop its copy.
const EventRemoved = "khub.article.removed"

// Event is a CloudEvents 1.0 event as khub pushes it. Data is the article
// version the change created, or for EventRemoved only its id and
// version.
type Event struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype,omitempty"`
	Data            Article   `json:"data"`
}

// ParseEvents decodes a webhook body: one CloudEvent, or a JSON array of
// them for a batch. Verify the body with VerifyWebhook first.
func ParseEvents(body []byte) ([]Event, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var evs []Event
		if err := json.Unmarshal(body, &evs); err != nil {
			return nil, fmt.Errorf("webhook: decode event batch: %w", err)
		}
		return evs, nil
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, fmt.Errorf("webhook: decode event: %w", err)
	}
	if ev.SpecVersion != "1.0" {
		return nil, fmt.Errorf("webhook: specversion %q is not 1.0", ev.SpecVersion)
	}
	return []Event{ev}, nil
}
