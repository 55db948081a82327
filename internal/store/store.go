// Package store defines khub's storage interface. Back-ends live in
// sub-packages (sqlite, postgres) and are the only code that speaks SQL;
// storetest holds the conformance suite that every back-end passes.
package store

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store/fulltext"
)

// Errors that back-ends return, wrapped or bare; callers test with
// errors.Is. Each back-end maps its driver errors to these in one place.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict means a precondition failed: the article's current
	// version is not the expected one, or it already exists.
	ErrConflict = errors.New("conflict")
	// ErrBadCursor means that SearchQuery.Cursor is not a cursor that
	// Search returned for the same text and filters. The error's message
	// tells the caller what to send instead.
	ErrBadCursor = fulltext.ErrBadCursor
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
	// GetArticleMeta returns the current version as GetArticle does, with
	// Body left empty. It reads no body, so a caller that needs only the
	// other fields, such as a revalidation, should use it.
	GetArticleMeta(ctx context.Context, id string) (knowledge.Article, error)
	// GetArticleVersion returns one stored version.
	GetArticleVersion(ctx context.Context, id string, version int64) (knowledge.Article, error)
	// ListVersions returns every version of an article, oldest first.
	ListVersions(ctx context.Context, id string) ([]knowledge.Article, error)
	// Search runs a full-text query over current, non-archived versions
	// and returns one page of hits; see SearchQuery for the contract.
	Search(ctx context.Context, q SearchQuery) (SearchResult, error)
	// CountArticles returns the number of current, non-archived articles.
	CountArticles(ctx context.Context) (int64, error)

	// ReadChanges returns up to limit change-log entries after the cursor
	// that match every filter, oldest first, each with its article version.
	// ScannedTo is the highest cursor the read covered, matched or not, so
	// a reader that continues from ScannedTo neither repeats nor skips an
	// entry, including entries whose transactions commit late.
	//
	// An entry matches when its new version matches every filter, or when
	// the version before did. So a change that moves an article out of a
	// scope is returned for that scope, with Left set, and its readers drop
	// the article (knowledge.Scope.Leaves). Each entry's Previous is set.
	ReadChanges(ctx context.Context, after int64, limit int, filters ...knowledge.Scope) (ChangePage, error)
	// ReadChangeEntries returns the entries and ScannedTo that ReadChanges
	// returns, with Article left zero and Previous nil. It reads no article bodies, so a
	// reader that needs only the entries, such as the change feed, should
	// use it.
	ReadChangeEntries(ctx context.Context, after int64, limit int, filters ...knowledge.Scope) (ChangePage, error)
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
	// As in ReadChanges, a change that moves an article out of the
	// integration's scope counts, and hybrid pushes it.
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
	// UpdateIntegration writes the fields of u to the integration and
	// leaves everything else alone. It returns ErrNotFound for an unknown
	// integration.
	UpdateIntegration(ctx context.Context, id string, u IntegrationUpdate) error
	// CountChanges counts the change-log entries committed at or after
	// since whose article version matches scope, grouped by class and
	// change type, in no particular order. A zero since counts the whole
	// log. Pruned entries are not counted.
	CountChanges(ctx context.Context, scope knowledge.Scope, since time.Time) ([]ChangeTally, error)

	// CommitDelivery records delivery attempts and moves the integration's
	// push cursor forward in one transaction. PushCursor never moves back:
	// a smaller value is ignored. Retry replaces the pending-retry state.
	CommitDelivery(ctx context.Context, c DeliveryCommit) error
	// CommitDeliveries writes several commits in one transaction, each as
	// CommitDelivery would and in the order given, so that the dispatchers
	// of a node share one write (group commit). A commit whose integration
	// does not exist is left out and its index returned in notFound, so
	// that a deleted integration does not hold back the others. On error
	// nothing is written. Pass the commits of different integrations
	// sorted by integration id, so that concurrent callers lock rows in
	// the same order.
	CommitDeliveries(ctx context.Context, commits []DeliveryCommit) (notFound []int, err error)
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

	// RecordStaleness stores freshness samples in one transaction. A sample
	// with the integration and At of a stored one merges into it, keeping
	// the larger staleness and WithinWindow only when both were within, so
	// nodes that sample the same bucket keep one sample, the worst. Samples
	// of unknown integrations are dropped without error.
	RecordStaleness(ctx context.Context, samples []StalenessSample) error
	// StalenessSeries returns the integration's samples with since <= At <
	// until, merged into consecutive steps of length step from since and
	// oldest first. Each step with samples gives one sample at the step's
	// start with the worst staleness, within the window only when all its
	// samples were. An unknown integration has no samples.
	StalenessSeries(ctx context.Context, integrationID string, since, until time.Time, step time.Duration) ([]StalenessSample, error)
	// SummarizeStaleness condenses the integration's samples with At in
	// the hour and in the 24 hours up to now, both ends included.
	SummarizeStaleness(ctx context.Context, integrationID string, now time.Time) (StalenessSummary, error)
	// PruneStaleness deletes the samples with At before the given time and
	// returns how many it deleted.
	PruneStaleness(ctx context.Context, before time.Time) (int64, error)

	// DescribeVersions returns, for each key that names a stored version,
	// that version and its article's current version, both without their
	// bodies. Keys that name no version are left out of the map. It takes
	// at most MaxReceipts keys. The articles' tags and metadata may be
	// shared with the store: callers must not change them.
	DescribeVersions(ctx context.Context, keys []VersionKey) (map[VersionKey]VersionInfo, error)
	// RecordReceipts records at the given time that the integration's tool
	// applied the given versions, at most MaxReceipts of them. For each
	// article it keeps the highest version, so a receipt for a lower
	// version updates only ReceivedAt. It returns ErrNotFound and records
	// nothing when the integration is unknown or a key names no stored
	// version.
	RecordReceipts(ctx context.Context, integrationID string, keys []VersionKey, at time.Time) error
	// SummarizeReceipts counts the integration's receipts, and the
	// articles behind among them up to maxBehind.
	SummarizeReceipts(ctx context.Context, in *knowledge.Integration, maxBehind int) (ReceiptSummary, error)
	// ArticleProgress returns the integration's receipt for the article
	// and the highest versions of it that were pushed and pulled. An
	// unknown integration or article has zero progress.
	ArticleProgress(ctx context.Context, in *IntegrationState, articleID string) (ArticleProgress, error)

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
	// Archive stores the current version's content with status archived,
	// read in the transaction that writes it, so that a concurrent write
	// of the article cannot make it conflict. The article passed gives
	// only the id. Archive implies MustExist.
	Archive bool
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

// SearchQuery is a full-text search.
//
// Text follows the syntax of fulltext.Query: words separated by white space
// must all appear, text in double quotes is a phrase, and a word ending in
// '*' is a prefix of at least three letters. Case and accents are ignored,
// CJK text matches any substring of two or more characters, and symbols,
// emoji and the operators of the back-ends' own query languages are
// searched as separators, so no input is an error. When no article has
// every term and there are several, any term may match (see Any). An empty
// Text lists matching articles, most recently updated first.
type SearchQuery struct {
	Text string
	// Filters must all match; the first is usually the caller's scope and
	// the second the request's own filters.
	Filters []knowledge.Scope
	Limit   int // 1 to 100; 0 means 20
	// Any matches articles that have any of the terms, ranked by BM25 on
	// SQLite and cover density on PostgreSQL, instead of all of them first.
	// Lookups use it for long, noisy text.
	Any bool
	// TitleFirst ranks first the articles whose title or tags match the
	// text, by the relevance of those fields alone, and ranks every match
	// only when fewer than Limit articles are found that way. On a large
	// corpus it scores far fewer articles, and a title names what an
	// article is about. Such a search has one page: Next stays empty and
	// a Cursor is ErrBadCursor.
	TitleFirst bool
	// Cursor is SearchResult.Next of the previous page, empty for the first
	// page. A cursor from another text or other filters is ErrBadCursor.
	Cursor string
	// Facets requests SearchResult.Facets.
	Facets bool
	// NoSnippets leaves Snippet, SnippetHTML and Matched empty and saves
	// reading the body of each hit.
	NoSnippets bool
	// Parsed, when set, is fulltext.Parse(Text) from a caller that parsed
	// the text already, so that the store does not parse it again.
	Parsed *fulltext.Query
}

// Query returns the parsed text: Parsed, or else fulltext.Parse(Text).
func (q *SearchQuery) Query() fulltext.Query {
	if q.Parsed != nil {
		return *q.Parsed
	}
	return fulltext.Parse(q.Text)
}

// SearchResult is one page of hits.
type SearchResult struct {
	// Hits are ordered by score, highest first, and by id among equal
	// scores; without search text, by update time, newest first, and by id.
	Hits []SearchHit
	// Next continues with the following page when passed as
	// SearchQuery.Cursor with the same text and filters. It is empty on the
	// last page and once fulltext.MaxDepth hits have been returned. Pages
	// neither repeat nor skip hits while articles that the query does not
	// match are written between them, as fulltext.NextPage explains.
	Next string
	// Facets counts every match of the query, not only this page; nil
	// unless SearchQuery.Facets is set.
	Facets *Facets
	// AnyTerm reports that no article had every term, so the hits match
	// any of them. It stays false when SearchQuery.Any asked for that.
	AnyTerm bool
}

// Facets are counts of the articles that match a query, by class,
// collection and tag, each sorted by count, highest first, then by value.
type Facets struct {
	Classes     []FacetCount `json:"classes"`
	Collections []FacetCount `json:"collections"`
	// Tags holds the MaxTagFacets most frequent tags.
	Tags []FacetCount `json:"tags"`
}

// MaxTagFacets is the number of tags that Facets.Tags holds.
const MaxTagFacets = 20

// FacetCount is the number of matching articles with one value.
type FacetCount struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// Sort orders each facet by count, highest first, then by value, and keeps
// the MaxTagFacets most frequent tags. Back-ends call it before they
// return facets.
func (f *Facets) Sort() {
	for _, list := range []*[]FacetCount{&f.Classes, &f.Collections, &f.Tags} {
		slices.SortFunc(*list, func(a, b FacetCount) int {
			if c := cmp.Compare(b.Count, a.Count); c != 0 {
				return c
			}
			return strings.Compare(a.Value, b.Value)
		})
	}
	f.Tags = f.Tags[:min(len(f.Tags), MaxTagFacets)]
}

// SearchHit is one ranked result. Its Tags and Metadata may be shared
// with the back-end's own copy of the article, so callers must not change
// them.
type SearchHit struct {
	ID         string            `json:"id"`
	Title      string            `json:"title"`
	Collection string            `json:"collection"`
	Class      knowledge.Class   `json:"class"`
	Tags       []string          `json:"tags"`
	Metadata   map[string]string `json:"metadata"`
	Status     knowledge.Status  `json:"status"`
	Version    int64             `json:"version"`
	// Snippet is plain text around the best match, with each match between
	// '[' and ']' (fulltext.MarkOpen and MarkClose). SnippetHTML is the
	// same text HTML-escaped, with each match in <mark></mark>; it is safe
	// to insert into a page, and unlike Snippet it is unambiguous where the
	// article text has brackets of its own. Without search text both are
	// the start of the body.
	Snippet     string `json:"snippet"`
	SnippetHTML string `json:"snippet_html"`
	// Matched lists the query terms found in the title, tags or body, as
	// written in the query.
	Matched []string `json:"matched,omitempty"`
	// Score is higher for better matches: negated BM25 on SQLite, with the
	// title weighted 10, tags 5 and body 1; ts_rank_cd on PostgreSQL, with
	// weights A, B and C. Scores of the two back-ends are not comparable.
	// It is 0 without search text.
	Score float64 `json:"score"`
	// MetadataFolds are knowledge.MetadataFoldHashes of Metadata, when
	// the store keeps them, so that a lookup can rule out its attributes
	// without reading the map; nil otherwise.
	MetadataFolds []uint64 `json:"-"`
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
