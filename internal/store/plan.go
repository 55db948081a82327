package store

import (
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
)

// ChangeTally is the number of change-log entries of one article class and
// change type, so that a caller can tell which of them a pattern pushes.
type ChangeTally struct {
	Class knowledge.Class
	Type  knowledge.ChangeType
	Count int64
}

// IntegrationUpdate is the part of an integration that can change without
// replacing it. UpdateIntegration writes every field, so the caller starts
// from the stored values. The name, pattern, scope, secrets, pull token,
// cursors, retry state and delivery state stay as they are, because the
// cursors and credentials are only valid for the pattern and scope they were
// made under.
type IntegrationUpdate struct {
	Freshness    time.Duration
	PollInterval time.Duration
	Lookups      bool
	AcceptRisk   bool
	// Reasons explain the pattern under the new settings.
	Reasons    []string
	WebhookURL string
	Delivery   knowledge.DeliverySettings
}
