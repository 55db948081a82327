package client

import "time"

// Article is an article as the API sends and receives it. On input the
// server ignores version, created_at and updated_at.
type Article struct {
	ID         string            `json:"id,omitempty"`
	Title      string            `json:"title"`
	Body       string            `json:"body"`
	Collection string            `json:"collection"`
	Class      string            `json:"class"`
	Tags       []string          `json:"tags,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	// Status is published (the default), deprecated or archived.
	Status    string    `json:"status,omitempty"`
	Version   int64     `json:"version,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Write outcomes reported in the Khub-Change response header of
// PUT /v1/articles/{id}.
const (
	OutcomeCreated   = "created"
	OutcomeUpdated   = "updated"
	OutcomeUnchanged = "unchanged"
)

// Scope selects the articles an integration sees; empty dimensions match
// everything.
type Scope struct {
	Collections []string          `json:"collections,omitempty"`
	Classes     []string          `json:"classes,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// Webhook is a push destination. Secret is "whsec_" and base64; the server
// generates one when it is empty and returns it only at creation.
type Webhook struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
}

// IntegrationRequest creates an integration. Durations are Go durations
// such as "30s", "15m" or "24h".
type IntegrationRequest struct {
	Name string `json:"name"`
	// Freshness is required: the longest a change may take to reach the tool.
	Freshness string `json:"freshness"`
	// Pattern is auto (the default), push, pull or hybrid.
	Pattern string   `json:"pattern,omitempty"`
	Scope   Scope    `json:"scope"`
	Webhook *Webhook `json:"webhook,omitempty"`
	// PollInterval is how often a pulling tool polls (default 1m).
	PollInterval string `json:"poll_interval,omitempty"`
	// Lookups says that the tool fetches knowledge at query time.
	Lookups bool `json:"lookups,omitempty"`
	// AcceptRisk allows a pattern that the freshness rules reject.
	AcceptRisk bool `json:"accept_risk,omitempty"`
}

// Integration is an integration with its progress and freshness.
type Integration struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Pattern      string    `json:"pattern"`
	Reasons      []string  `json:"reasons"`
	Freshness    Freshness `json:"freshness"`
	Scope        Scope     `json:"scope"`
	Webhook      *Webhook  `json:"webhook,omitempty"`
	PollInterval string    `json:"poll_interval,omitempty"`
	Lookups      bool      `json:"lookups"`
	AcceptRisk   bool      `json:"accept_risk"`
	CreatedAt    time.Time `json:"created_at"`
	// Token is the pull token, returned only when the integration is
	// created, for pull and hybrid patterns.
	Token string `json:"token,omitempty"`
	// PushCursor is the last change-log cursor delivered or skipped by push.
	PushCursor int64 `json:"push_cursor"`
	// PullCursor is the last cursor the tool read from the change feed.
	PullCursor    int64      `json:"pull_cursor"`
	LastPullAt    *time.Time `json:"last_pull_at,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrorAt   *time.Time `json:"last_error_at,omitempty"`
	LastSuccessAt *time.Time `json:"last_success_at,omitempty"`
	// RetryDueAt is when a failed delivery is tried again, if one is pending.
	RetryDueAt *time.Time `json:"retry_due_at,omitempty"`
}

// Freshness is an integration's measured staleness against its window.
type Freshness struct {
	Window string `json:"window"`
	// StalenessSeconds is the age of the oldest change in scope that the
	// tool has not received or fetched; zero when it is caught up.
	StalenessSeconds float64 `json:"staleness_seconds"`
	WithinWindow     bool    `json:"within_window"`
	// OldestPendingCursor is the cursor of the change that StalenessSeconds
	// measures; zero when caught up.
	OldestPendingCursor int64 `json:"oldest_pending_cursor,omitempty"`
}

// SearchHit is one search result.
type SearchHit struct {
	ID      string  `json:"id"`
	Title   string  `json:"title"`
	Class   string  `json:"class"`
	Status  string  `json:"status"`
	Version int64   `json:"version"`
	Snippet string  `json:"snippet"`
	Score   float64 `json:"score"`
}

// SearchResult is the answer of GET /v1/search.
type SearchResult struct {
	Hits []SearchHit `json:"hits"`
}

// Change is one entry of the change feed.
type Change struct {
	Cursor    int64     `json:"cursor"`
	ArticleID string    `json:"article_id"`
	Version   int64     `json:"version"`
	Type      string    `json:"type"`
	Time      time.Time `json:"time"`
}

// ChangesPage is the answer of GET /v1/changes. Next is the cursor to pass
// as after in the following call; it can move past entries outside the
// caller's scope.
type ChangesPage struct {
	Changes []Change `json:"changes"`
	Next    int64    `json:"next"`
}

// Delivery is one webhook delivery attempt.
type Delivery struct {
	EventID    string    `json:"event_id"`
	Cursor     int64     `json:"cursor"`
	ArticleID  string    `json:"article_id"`
	Version    int64     `json:"version"`
	Type       string    `json:"type"`
	Attempt    int       `json:"attempt"`
	StatusCode int       `json:"status_code"`
	Error      string    `json:"error,omitempty"`
	LatencyMS  float64   `json:"latency_ms"`
	StartedAt  time.Time `json:"started_at"`
	// Outcome is delivered, retrying or failed.
	Outcome string `json:"outcome"`
}

// DeliveryList is the answer of GET /v1/integrations/{id}/deliveries.
type DeliveryList struct {
	Deliveries []Delivery `json:"deliveries"`
}

// IntegrationList is the answer of GET /v1/integrations.
type IntegrationList struct {
	Integrations []Integration `json:"integrations"`
}

// VersionList is the answer of GET /v1/articles/{id}/versions.
type VersionList struct {
	Versions []Article `json:"versions"`
}

// ErrorBody is the JSON body of every 4xx and 5xx answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what was wrong. Field names the request field at fault,
// when there is one.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}
