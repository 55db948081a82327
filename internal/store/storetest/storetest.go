// Package storetest is the conformance suite of store.Store. Every back-end
// runs it unchanged from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... })
//	}
//
// The suite checks only what the store package documents, so it holds
// nothing specific to one database. Times that it writes have microsecond
// precision, the finest that every supported database keeps.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// Run runs every conformance test. open must return a new, empty store for
// each call and close it when the test ends, with t.Cleanup. Subtests run in
// parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Articles", func(t *testing.T) { runArticles(t, open) })
	t.Run("Changes", func(t *testing.T) { runChanges(t, open) })
	t.Run("Search", func(t *testing.T) { runSearch(t, open) })
	t.Run("Integrations", func(t *testing.T) { runIntegrations(t, open) })
	t.Run("Deliveries", func(t *testing.T) { runDeliveries(t, open) })
	t.Run("DeliveryControls", func(t *testing.T) { runDeliveryControls(t, open) })
	t.Run("FailedDeliveries", func(t *testing.T) { runFailedDeliveries(t, open) })
	t.Run("PackedDeliveries", func(t *testing.T) { runPackedDeliveries(t, open) })
	t.Run("Leases", func(t *testing.T) { runLeases(t, open) })
	t.Run("Retention", func(t *testing.T) { runRetention(t, open) })
	t.Run("Review", func(t *testing.T) { runReview(t, open) })
	t.Run("Receipts", func(t *testing.T) { runReceipts(t, open) })
	t.Run("Staleness", func(t *testing.T) { runStaleness(t, open) })
	t.Run("Planning", func(t *testing.T) { runPlanning(t, open) })
}

// opener is the open function of Run.
type opener = func(t *testing.T) store.Store

// subtest runs fn in parallel with its siblings, on a fresh store.
func subtest(t *testing.T, name string, open opener, fn func(t *testing.T, s store.Store)) {
	t.Run(name, func(t *testing.T) {
		t.Parallel()
		fn(t, open(t))
	})
}

// baseTime is the first commit time that the tests pass to SaveArticle. It
// has microsecond precision.
var baseTime = time.Date(2025, time.March, 4, 5, 6, 7, 123456000, time.UTC)

// at returns baseTime plus n minutes.
func at(n int) time.Time { return baseTime.Add(time.Duration(n) * time.Minute) }

// newArticle returns a valid runbook in collection "ops".
func newArticle(id string) knowledge.Article {
	return knowledge.Article{
		ID:         id,
		Title:      "Article " + id,
		Body:       "The body of article " + id + ".",
		Collection: "ops",
		Class:      knowledge.ClassRunbook,
	}
}

// save normalizes a, as the store contract requires, stores it and fails
// the test on error.
func save(t *testing.T, s store.Store, a knowledge.Article, opts store.SaveOptions) store.SaveResult {
	t.Helper()
	a.Normalize()
	res, err := s.SaveArticle(context.Background(), a, opts)
	if err != nil {
		t.Fatalf("SaveArticle(%q): %v", a.ID, err)
	}
	return res
}

// saveAt stores a with commit time at(minute).
func saveAt(t *testing.T, s store.Store, a knowledge.Article, minute int) store.SaveResult {
	t.Helper()
	return save(t, s, a, store.SaveOptions{Now: at(minute)})
}

// wantErr fails the test unless err wraps target.
func wantErr(t *testing.T, name string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error = %v, want %v", name, err, target)
	}
}

// wantTime fails the test unless got is the same instant as want, in UTC.
func wantTime(t *testing.T, name string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
	if !got.IsZero() && got.Location() != time.UTC {
		t.Errorf("%s has location %v, want UTC", name, got.Location())
	}
}

// head returns the store's head cursor and fails the test on error.
func head(t *testing.T, s store.Store) int64 {
	t.Helper()
	c, err := s.HeadCursor(context.Background())
	if err != nil {
		t.Fatalf("HeadCursor: %v", err)
	}
	return c
}

// versionCount returns how many versions the article has, 0 when it does
// not exist.
func versionCount(t *testing.T, s store.Store, id string) int {
	t.Helper()
	vs, err := s.ListVersions(context.Background(), id)
	if errors.Is(err, store.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatalf("ListVersions(%q): %v", id, err)
	}
	return len(vs)
}

// readAll reads the change log after the cursor with the filters, one page
// of size limit at a time, until a page comes back empty.
func readAll(t *testing.T, s store.Store, after int64, limit int, filters ...knowledge.Scope) ([]knowledge.Change, int64) {
	t.Helper()
	var out []knowledge.Change
	for range 10000 {
		page, err := s.ReadChanges(context.Background(), after, limit, filters...)
		if err != nil {
			t.Fatalf("ReadChanges(%d, %d): %v", after, limit, err)
		}
		if page.ScannedTo < after {
			t.Fatalf("ReadChanges(%d) moved ScannedTo back to %d", after, page.ScannedTo)
		}
		out = append(out, page.Changes...)
		if len(page.Changes) == 0 {
			return out, page.ScannedTo
		}
		after = page.ScannedTo
	}
	t.Fatal("ReadChanges did not reach the end of the log")
	return nil, 0
}

// changeKeys formats changes as "id@version" for messages and comparisons.
func changeKeys(cs []knowledge.Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = fmt.Sprintf("%s@%d", c.ArticleID, c.Version)
	}
	return out
}

// hitIDs returns the ids of search hits in order.
func hitIDs(hits []store.SearchHit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.ID
	}
	return out
}
