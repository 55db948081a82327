// Package store defines khub's storage interface. Back-ends live in
// sub-packages (sqlite, postgres) and are the only code that speaks SQL;
// storetest holds the conformance suite that every back-end passes.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
)

// Errors that back-ends return, wrapped or bare; callers test with
// errors.Is. Each back-end maps its driver errors to these in one place.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict means a precondition failed: the article's current
	// version is not the expected one, or it already exists.
	ErrConflict = errors.New("conflict")
)

// Store is the persistent state of one hub. Implementations are safe for
// concurrent use.
type Store interface {
	// SaveArticle stores a new version of an article when its content hash
	// differs from the current version's, and appends one change-log entry
	// in the same transaction. Writing unchanged content creates nothing and
	// returns Changed false. The input must be normalized and valid.
	SaveArticle(ctx context.Context, a knowledge.Article, opts SaveOptions) (SaveResult, error)
	// GetArticle returns the current version, including archived ones.
	GetArticle(ctx context.Context, id string) (knowledge.Article, error)
	// GetArticleVersion returns one stored version.
	GetArticleVersion(ctx context.Context, id string, version int64) (knowledge.Article, error)
	// ListVersions returns every version of an article, oldest first.
	ListVersions(ctx context.Context, id string) ([]knowledge.Article, error)
	// Search runs a full-text query over current, non-archived versions.
	Search(ctx context.Context, q SearchQuery) ([]SearchHit, error)
	// CountArticles returns the number of current, non-archived articles.
	CountArticles(ctx context.Context) (int64, error)

	// ReadChanges returns up to limit change-log entries after the cursor
	// that match every filter, oldest first, each with its article version.
	// ScannedTo is the highest cursor the read covered, matched or not, so
	// a reader that continues from ScannedTo neither repeats nor skips an
	// entry, including entries whose transactions commit late.
	ReadChanges(ctx context.Context, after int64, limit int, filters ...knowledge.Scope) (ChangePage, error)
	// PruneChanges deletes change-log entries committed before the given
	// time, keeping the newest entry so the head cursor survives, and
	// returns how many it deleted. Article versions stay; only the log
	// shrinks, so readers behind the oldest entry must resynchronise.
	PruneChanges(ctx context.Context, before time.Time) (int64, error)
	// OldestCursor returns the smallest cursor still in the change log, or
	// 0 when the log is empty.
	OldestCursor(ctx context.Context) (int64, error)
	// HeadCursor returns the cursor of the newest committed change, or 0.
	HeadCursor(ctx context.Context) (int64, error)
	// OldestChangeAfter returns the oldest change after the cursor that
	// matches every filter and, when pushedOnly is set, that the
	// integration's pattern pushes. It returns ErrNotFound when there is none.
	OldestChangeAfter(ctx context.Context, in *knowledge.Integration, after int64, pushedOnly bool) (knowledge.Change, error)
	// OldestFailedChange returns the oldest change after the cursor whose
	// delivery to the integration ended with OutcomeFailed and that nothing
	// has settled since. A delivered attempt at the same or a later change
	// of the same article settles it. So does a later change of that
	// article up to the push cursor that was skipped, because it is outside
	// the integration's scope or its pattern does not push it. It returns
	// ErrNotFound when there is none. Freshness needs it because the push
	// cursor moves past failed changes, so OldestChangeAfter misses them.
	OldestFailedChange(ctx context.Context, in *knowledge.Integration, after int64) (knowledge.Change, error)

	CreateIntegration(ctx context.Context, in knowledge.Integration) error
	GetIntegration(ctx context.Context, id string) (IntegrationState, error)
	// GetIntegrationByToken finds the integration whose pull token hashes
	// to tokenHash (hex SHA-256).
	GetIntegrationByToken(ctx context.Context, tokenHash string) (IntegrationState, error)
	ListIntegrations(ctx context.Context) ([]IntegrationState, error)
	DeleteIntegration(ctx context.Context, id string) error

	// CommitDelivery records delivery attempts and moves the integration's
	// push cursor forward in one transaction. PushCursor never moves back:
	// a smaller value is ignored. Retry replaces the pending-retry state.
	CommitDelivery(ctx context.Context, c DeliveryCommit) error
	// ListDeliveries returns the newest attempts first.
	ListDeliveries(ctx context.Context, integrationID string, limit int) ([]Attempt, error)
	// QueryDeliveries returns the attempts that match f, newest first. It
	// returns ErrNotFound for an unknown integration.
	QueryDeliveries(ctx context.Context, integrationID string, f DeliveryFilter) ([]Attempt, error)
	// SetDeliveryState records a pause, a disablement or a resumption, with
	// its reason and time. It returns ErrNotFound for an unknown
	// integration.
	SetDeliveryState(ctx context.Context, integrationID string, state knowledge.DeliveryState, reason string, at time.Time) error
	// RotateSecret makes secret the integration's webhook secret and keeps
	// the old one as PreviousSecret until previousUntil. It returns
	// ErrNotFound for an unknown integration.
	RotateSecret(ctx context.Context, integrationID, secret string, previousUntil time.Time) error
	// RecordPull notes that a pull tool has read the change feed up to
	// cursor. The pull cursor never moves back.
	RecordPull(ctx context.Context, integrationID string, cursor int64, at time.Time) error

	// AcquireLease takes or renews node's lease on dispatching an
	// integration's pushes, valid for ttl from now by the store's clock, and
	// reports whether node holds it. A lease held by another node is taken
	// only once it has expired, so at most one node dispatches an
	// integration at a time. Deleting the integration deletes its lease.
	// A lease taken with a ttl of 0 expires at once. It returns
	// ErrNotFound for an unknown integration and an error for an empty node
	// or a negative ttl.
	AcquireLease(ctx context.Context, integrationID, node string, ttl time.Duration) (bool, error)
	// ReleaseLease ends node's lease early, so another node can take the
	// integration over without waiting for expiry. Releasing a lease that
	// node does not hold, or of an unknown integration, does nothing.
	ReleaseLease(ctx context.Context, integrationID, node string) error

	Close() error
}

// ChangeListener is implemented by stores that several hub processes share.
// ListenChanges calls fn with the cursor of each change that any process
// commits, until ctx ends or the connection fails, and returns the reason
// it stopped. Once it listens, it first calls fn with the head cursor, so a
// change committed before the listener started is not missed.
//
// fn runs on the listener's goroutine, one call at a time. Notifications
// may be coalesced. A change committed while no listener runs reaches fn
// only through the head cursor of the next ListenChanges call.
type ChangeListener interface {
	ListenChanges(ctx context.Context, fn func(cursor int64)) error
}

// SaveOptions are the preconditions of a write.
type SaveOptions struct {
	// IfVersion, when non-zero, requires the current version to equal it;
	// otherwise SaveArticle returns ErrConflict and writes nothing.
	IfVersion int64
	// CreateOnly requires that the article does not exist yet (ErrConflict).
	CreateOnly bool
	// MustExist requires that the article exists already (ErrNotFound).
	MustExist bool
	// Now is the commit time; zero means time.Now().
	Now time.Time
}

// SaveResult reports what SaveArticle did.
type SaveResult struct {
	Article knowledge.Article // the current version after the write
	Created bool              // the article did not exist before
	Changed bool              // a new version and change-log entry exist
	Change  knowledge.Change  // the new entry when Changed
}

// SearchQuery is a full-text search. Text uses the back-end's query syntax
// after the store has quoted each term, so user input cannot inject
// operators; an empty Text lists matching articles, newest first.
type SearchQuery struct {
	Text string
	// Filters must all match; the first is usually the caller's scope and
	// the second the request's own filters.
	Filters []knowledge.Scope
	Limit   int // 1 to 100; 0 means 20
}

// SearchHit is one ranked result.
type SearchHit struct {
	ID      string           `json:"id"`
	Title   string           `json:"title"`
	Class   knowledge.Class  `json:"class"`
	Status  knowledge.Status `json:"status"`
	Version int64            `json:"version"`
	// Snippet is plain text around the best match, with matched terms in
	// [brackets].
	Snippet string `json:"snippet"`
	// Score is higher for better matches (negated BM25 on SQLite).
	Score float64 `json:"score"`
}

// ChangePage is one read of the change log.
type ChangePage struct {
	Changes   []knowledge.Change
	ScannedTo int64
}

// IntegrationState is an integration with its progress.
type IntegrationState struct {
	knowledge.Integration
	// PushCursor is the last change the dispatcher delivered or skipped.
	PushCursor int64
	// PullCursor is the last change the tool read from the change feed;
	// PullSeen is false until it reads the feed once.
	PullCursor int64
	PullSeen   bool
	LastPullAt time.Time
	// Retry is the pending retry of the change after PushCursor, if any.
	Retry RetryState
	// State is whether webhooks flow; StateReason says why it is not
	// active, and StateSince when it last changed. An empty State reads as
	// active.
	State       knowledge.DeliveryState
	StateReason string
	StateSince  time.Time
	// PreviousSecret is the webhook secret before the last rotation. Until
	// PreviousSecretUntil, requests carry a signature under it as well.
	PreviousSecret      string
	PreviousSecretUntil time.Time
	LastError           string
	LastErrorAt         time.Time
	// LastSuccessAt is the time of the last 2xx webhook answer.
	LastSuccessAt time.Time
}

// RetryState is a delivery that failed and waits to be tried again. Its due
// time is persisted so that a restarted hub resumes the backoff.
type RetryState struct {
	Cursor  int64     // 0 when nothing is pending
	Attempt int       // attempts made so far
	DueAt   time.Time // when to try next
	// Since is the time of the change's first failed attempt; retries end
	// once the integration's RetryFor has passed since then.
	Since time.Time
}

// DeliveryFilter selects delivery attempts. Zero fields match everything.
type DeliveryFilter struct {
	Outcome   string // one of the Outcome constants
	ArticleID string
	// Since and Until bound StartedAt: Since <= StartedAt < Until.
	Since, Until time.Time
	// Limit is the number of attempts returned, newest first: 0 or less
	// means 50, and more than 1000 means 1000.
	Limit int
}

// Attempt is one HTTP delivery attempt.
type Attempt struct {
	ID            int64                `json:"id"`
	IntegrationID string               `json:"integration_id"`
	EventID       string               `json:"event_id"`
	Cursor        int64                `json:"cursor"`
	ArticleID     string               `json:"article_id"`
	Version       int64                `json:"version"`
	Type          knowledge.ChangeType `json:"type"`
	Attempt       int                  `json:"attempt"`     // 1 for the first try
	StatusCode    int                  `json:"status_code"` // 0 when no response
	Error         string               `json:"error,omitempty"`
	Latency       time.Duration        `json:"-"`
	StartedAt     time.Time            `json:"started_at"`
	// Outcome is delivered, retrying or failed.
	Outcome string `json:"outcome"`
}

// Attempt outcomes.
const (
	OutcomeDelivered = "delivered"
	OutcomeRetrying  = "retrying"
	OutcomeFailed    = "failed"
)

// DeliveryCommit is one batched write of the dispatcher.
type DeliveryCommit struct {
	IntegrationID string
	Attempts      []Attempt
	PushCursor    int64 // 0 leaves the cursor alone
	Retry         RetryState
	// LastError and LastErrorAt are set when an attempt failed; a zero
	// LastErrorAt leaves the stored error alone.
	LastError     string
	LastErrorAt   time.Time
	LastSuccessAt time.Time // zero leaves it alone
	// AttemptsOnly records the attempts and leaves the integration's
	// cursor, retry state and last error alone, for replays that run
	// beside the integration's dispatcher.
	AttemptsOnly bool
}
