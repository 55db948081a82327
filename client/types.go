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
	// ReviewEvery is how often the article must be reviewed, as a Go
	// duration from "24h" to "43800h" (5 years), such as "2160h" for 90
	// days. Empty means never, and every new version counts as a review.
	ReviewEvery string `json:"review_every,omitempty"`
	// Owner is who reviews the article, such as a team or an email
	// address: at most 200 characters, without control characters.
	Owner string `json:"owner,omitempty"`
	// ReviewDue is when the next review falls due: the current version's
	// updated_at plus review_every. ReviewOverdue is true once that time
	// has passed, as of the response. The server sets both on the current
	// version when review_every is set, and ignores them on input. A
	// pushed event carries review_due only, so a receiver compares it with
	// its own clock.
	ReviewDue     time.Time `json:"review_due,omitzero"`
	ReviewOverdue bool      `json:"review_overdue,omitempty"`
}

// Write outcomes reported in the Khub-Change response header of
// PUT /v1/articles/{id}.
const (
	OutcomeCreated   = "created"
	OutcomeUpdated   = "updated"
	OutcomeUnchanged = "unchanged"
)

// Scope selects the articles an integration receives. Empty dimensions
// match everything.
type Scope struct {
	Collections []string          `json:"collections,omitempty"`
	Classes     []string          `json:"classes,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
}

// Webhook is a push destination. Secret is "whsec_" and base64, and the
// server generates one when it is empty and returns it only at creation.
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
	// Lookups is true when the tool fetches knowledge at query time.
	Lookups bool `json:"lookups,omitempty"`
	// AcceptRisk allows a pattern that the freshness rules reject.
	AcceptRisk bool `json:"accept_risk,omitempty"`
	// Delivery is the webhook delivery tuning for push and hybrid. Nil
	// takes the hub's defaults. The server rejects it when the pattern is pull.
	Delivery *DeliverySettings `json:"delivery,omitempty"`
}

// DeliverySettings tune how an integration's webhooks are sent. Durations
// are Go durations such as "500ms", "30s" or "2h". In a request, empty
// strings and zeros take the hub's defaults. In a response every field
// contains the value in force.
type DeliverySettings struct {
	// InitialBackoff is the longest wait before the first retry of a
	// failed request (10ms to 24h). Each later wait may be twice as long,
	// up to MaxBackoff (10ms to 24h). Waits are drawn at random below that
	// ceiling.
	InitialBackoff string `json:"initial_backoff,omitempty"`
	MaxBackoff     string `json:"max_backoff,omitempty"`
	// RetryFor is how long a change is retried after its first failure
	// before it is recorded as failed (1s to 720h).
	RetryFor string `json:"retry_for,omitempty"`
	// Timeout bounds one attempt, from connecting to the response headers
	// (100ms to 2m).
	Timeout string `json:"timeout,omitempty"`
	// BatchSize is the maximum number of events in one request (1 to 500).
	// Above 1 the body is a JSON array (application/cloudevents-batch+json).
	BatchSize int `json:"batch_size,omitempty"`
	// Coalesce sends only the newest version of an article when several
	// wait to be sent, so a tool that was down catches up faster.
	Coalesce bool `json:"coalesce"`
	// RateLimit is the maximum number of requests per second to the
	// webhook, and 0 means no limit.
	RateLimit float64 `json:"rate_limit"`
	// PauseAfter is the number of failed attempts in a row after which
	// delivery pauses and only a probe is sent every ProbeEvery (10ms to
	// 24h) until the tool responds with 2xx.
	PauseAfter int    `json:"pause_after,omitempty"`
	ProbeEvery string `json:"probe_every,omitempty"`
}

// Delivery states of a push or hybrid integration.
const (
	// StateActive sends changes as they commit.
	StateActive = "active"
	// StatePaused follows a run of failed attempts: khub sends only a
	// probe now and then, and resumes by itself once a probe gets a 2xx
	// response.
	StatePaused = "paused"
	// StateDisabled follows 410 Gone from the tool: nothing is sent until
	// an operator resumes the integration.
	StateDisabled = "disabled"
)

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
	// Delivery is the delivery settings in force, with defaults filled in,
	// for push and hybrid only.
	Delivery *DeliverySettings `json:"delivery,omitempty"`
	// State is active, paused or disabled (push and hybrid only).
	// StateReason explains why it is not active, and StateSince is when it
	// last changed.
	State       string     `json:"state,omitempty"`
	StateReason string     `json:"state_reason,omitempty"`
	StateSince  *time.Time `json:"state_since,omitempty"`
	// PreviousSecretExpiresAt is set while a secret rotation's overlap
	// runs: until then every request is signed with the old secret too.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	// SLO is the integration's freshness objective over recorded samples.
	SLO *SLO `json:"slo,omitempty"`
	// Applied counts the versions the tool confirmed with receipts, beside
	// the cursors of what it was delivered.
	Applied Applied `json:"applied"`
}

// RotateSecretRequest rotates an integration's webhook secret.
type RotateSecretRequest struct {
	// Overlap is how long requests stay signed with the old secret as well,
	// up to "720h". Empty means "24h", and "0s" stops signing with the old
	// secret at once.
	Overlap string `json:"overlap,omitempty"`
	// Secret is the new secret, "whsec_" and base64 of 16 to 64 bytes.
	// When it is empty, the server generates one.
	Secret string `json:"secret,omitempty"`
}

// RotatedSecret is the response to a rotation. Secret is shown only here.
type RotatedSecret struct {
	IntegrationID string `json:"integration_id"`
	Secret        string `json:"secret"`
	// PreviousSecretExpiresAt is when requests stop carrying a signature
	// under the old secret.
	PreviousSecretExpiresAt time.Time `json:"previous_secret_expires_at"`
}

// ReplayRequest selects changes to send again. At least one field is
// required. Cursors are inclusive, and Since and Until bound the changes'
// commit times (Since <= time < Until). EventID is a webhook-id from the
// delivery history, "evt_N" or "batch_A-B", and excludes the other fields.
type ReplayRequest struct {
	FromCursor int64     `json:"from_cursor,omitempty"`
	ToCursor   int64     `json:"to_cursor,omitempty"`
	Since      time.Time `json:"since,omitzero"`
	Until      time.Time `json:"until,omitzero"`
	EventID    string    `json:"event_id,omitempty"`
}

// ReplayStarted is the response to a replay, which runs in the background on
// the node that received it. Its attempts appear in the delivery history.
type ReplayStarted struct {
	IntegrationID string     `json:"integration_id"`
	FromCursor    int64      `json:"from_cursor"`
	ToCursor      int64      `json:"to_cursor"`
	Since         *time.Time `json:"since,omitempty"`
	Until         *time.Time `json:"until,omitempty"`
}

// Freshness is an integration's measured staleness against its window.
type Freshness struct {
	Window string `json:"window"`
	// StalenessSeconds is the age of the oldest change in scope that the
	// tool has not received or fetched, or zero when it is caught up.
	StalenessSeconds float64 `json:"staleness_seconds"`
	WithinWindow     bool    `json:"within_window"`
	// OldestPendingCursor is the cursor of the change that StalenessSeconds
	// measures, or zero when caught up.
	OldestPendingCursor int64 `json:"oldest_pending_cursor,omitempty"`
}

// SearchHit is one search result.
type SearchHit struct {
	ID         string   `json:"id"`
	Title      string   `json:"title"`
	Collection string   `json:"collection"`
	Class      string   `json:"class"`
	Tags       []string `json:"tags"`
	Status     string   `json:"status"`
	Version    int64    `json:"version"`
	// Snippet is plain text around the best match, with each match between
	// '[' and ']'. SnippetHTML is the same text HTML-escaped with each match
	// in <mark></mark>: safe to insert into a page, and unambiguous where
	// the article has brackets of its own, as Markdown links do. Without
	// search text both are the start of the body.
	Snippet     string `json:"snippet"`
	SnippetHTML string `json:"snippet_html"`
	// Matched lists the search terms found in the article's title, tags
	// or body.
	Matched []string `json:"matched,omitempty"`
	// Score is higher for better matches. It compares hits of one search
	// only.
	Score float64 `json:"score"`
	// Owner is the article's owner, empty when it has none.
	// ReviewOverdue is true when the article's review is overdue as of the
	// search.
	Owner         string `json:"owner,omitempty"`
	ReviewOverdue bool   `json:"review_overdue,omitempty"`
}

// SearchResult is the response of GET /v1/search.
type SearchResult struct {
	Hits []SearchHit `json:"hits"`
	// Next, passed as the cursor of the same search, returns the following
	// page. It is empty on the last page. A search with a query also ends
	// after its first 1000 hits, while a listing without one has no limit.
	// Pages neither repeat nor skip hits while articles that the search
	// does not match change between them.
	Next string `json:"next,omitempty"`
	// Facets counts all matches of the search by class, collection and
	// tag. It is present when the search requested facets.
	Facets *Facets `json:"facets,omitempty"`
	// AnyTerm is set when no article has every word of the search, so the
	// hits match any of them.
	AnyTerm bool `json:"any_term,omitempty"`
}

// Facets are counts of the articles that match a search, each list sorted
// by count, highest first. Tags contains the 20 most frequent tags.
type Facets struct {
	Classes     []FacetCount `json:"classes"`
	Collections []FacetCount `json:"collections"`
	Tags        []FacetCount `json:"tags"`
}

// FacetCount is the number of matching articles with one value.
type FacetCount struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// Change is one entry of the change feed.
type Change struct {
	Cursor    int64  `json:"cursor"`
	ArticleID string `json:"article_id"`
	Version   int64  `json:"version"`
	// Type is created, updated, deprecated or archived, or ChangeRemoved.
	Type string `json:"type"`
	// Time is the write's time on the hub's clock, read before the write
	// waited for its turn, so writes that overlap may be out of time order
	// by milliseconds. Order changes by Cursor.
	Time time.Time `json:"time"`
}

// ChangeRemoved is the Type of a change that moved the article out of the
// caller's scope: the article now reads as not found.
const ChangeRemoved = "removed"

// ChangesPage is the response of GET /v1/changes. Next is the cursor to
// pass as after in the following call, and it can move past entries
// outside the caller's scope.
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

// DeliveryList is the response of GET /v1/integrations/{id}/deliveries.
type DeliveryList struct {
	Deliveries []Delivery `json:"deliveries"`
}

// IntegrationList is the response of GET /v1/integrations.
type IntegrationList struct {
	Integrations []Integration `json:"integrations"`
}

// VersionList is the response of GET /v1/articles/{id}/versions.
type VersionList struct {
	Versions []Article `json:"versions"`
}

// ErrorBody is the JSON body of every 4xx and 5xx response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the description of what was wrong. Field names the request field at fault,
// when there is one.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}
