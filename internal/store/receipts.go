package store

import (
	"cmp"
	"slices"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
)

// MaxReceipts is the largest number of keys that RecordReceipts and
// DescribeVersions take in one call.
const MaxReceipts = 1000

// VersionKey names one version of an article.
type VersionKey struct {
	ArticleID string
	Version   int64
}

// VersionInfo is a stored version and its article's current version, both
// with an empty Body. Scope checks and review states need every field but
// the text, which may be large.
type VersionInfo struct {
	Version knowledge.Article
	Current knowledge.Article
}

// Receipt is an integration's confirmation that its tool applied a
// version of an article.
type Receipt struct {
	ArticleID string
	// Version is the highest version the tool confirmed.
	Version int64
	// AppliedAt is when the receipt that raised Version to its value
	// arrived. ReceivedAt is when the newest receipt for the article
	// arrived, whatever version it named.
	AppliedAt  time.Time
	ReceivedAt time.Time
}

// ReceiptSummary is an integration's receipts in figures.
type ReceiptSummary struct {
	// Articles is the number of articles with a receipt.
	Articles int64
	// Behind is the number of articles with a receipt whose current
	// version is inside the integration's scope and higher than the
	// applied one. It counts up to the limit given to SummarizeReceipts,
	// and BehindCapped is true when more articles are behind.
	Behind       int64
	BehindCapped bool
	// LastReceiptAt is the ReceivedAt of the newest receipt, zero when
	// none arrived.
	LastReceiptAt time.Time
}

// ArticleProgress is how far one article has reached an integration's
// tool.
type ArticleProgress struct {
	// Applied is the tool's receipt for the article. Its Version is 0 when
	// none arrived.
	Applied Receipt
	// Pushed is the highest version delivered by webhook with a 2xx
	// response, 0 when none was.
	Pushed int64
	// Pulled is the highest version inside the integration's scope whose
	// change-log entry is at or before the pull cursor, so the tool has
	// read it from the change feed. It is 0 when there is none, and
	// entries removed by retention are not counted.
	Pulled int64
}

// HighestPerArticle returns the keys with the highest version of each
// article, sorted by article id. Back-ends write receipts in this order, so
// that two overlapping batches take their row locks in the same order,
// which rules out a deadlock between them, and so that one statement
// updates each row once.
func HighestPerArticle(keys []VersionKey) []VersionKey {
	out := slices.Clone(keys)
	slices.SortFunc(out, func(a, b VersionKey) int {
		return cmp.Or(cmp.Compare(a.ArticleID, b.ArticleID), cmp.Compare(b.Version, a.Version))
	})
	return slices.CompactFunc(out, func(a, b VersionKey) bool { return a.ArticleID == b.ArticleID })
}
