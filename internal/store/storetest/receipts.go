package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

func runReview(t *testing.T, open opener) {
	subtest(t, "FieldsRoundTrip", open, testReviewFieldsRoundTrip)
	subtest(t, "FieldsMakeVersions", open, testReviewFieldsMakeVersions)
}

func runReceipts(t *testing.T, open opener) {
	subtest(t, "DescribeVersions", open, testDescribeVersions)
	subtest(t, "KeepHighestVersion", open, testReceiptsKeepHighest)
	subtest(t, "AllOrNothing", open, testReceiptsAllOrNothing)
	subtest(t, "Summary", open, testReceiptSummary)
	subtest(t, "ArticleProgress", open, testArticleProgress)
	subtest(t, "DeletedWithIntegration", open, testReceiptsDeletedWithIntegration)
}

// reviewed returns newArticle(id) with a review interval and an owner.
func reviewed(id string) knowledge.Article {
	a := newArticle(id)
	a.ReviewEvery = 2160*time.Hour + 30*time.Minute
	a.Owner = "Platform team <platform@example.com>"
	return a
}

// wantReview fails the test unless a carries the review fields of want.
func wantReview(t *testing.T, name string, a, want knowledge.Article) {
	t.Helper()
	if a.ReviewEvery != want.ReviewEvery {
		t.Errorf("%s: ReviewEvery = %v, want %v", name, a.ReviewEvery, want.ReviewEvery)
	}
	if a.Owner != want.Owner {
		t.Errorf("%s: Owner = %q, want %q", name, a.Owner, want.Owner)
	}
}

func testReviewFieldsRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := reviewed("rv")
	res := saveAt(t, s, a, 0)
	wantReview(t, "SaveArticle result", res.Article, a)
	wantReview(t, "SaveArticle change", res.Change.Article, a)

	cur, err := s.GetArticle(ctx, "rv")
	if err != nil {
		t.Fatal(err)
	}
	wantReview(t, "GetArticle", cur, a)
	v1, err := s.GetArticleVersion(ctx, "rv", 1)
	if err != nil {
		t.Fatal(err)
	}
	wantReview(t, "GetArticleVersion", v1, a)
	versions, err := s.ListVersions(ctx, "rv")
	if err != nil {
		t.Fatal(err)
	}
	wantReview(t, "ListVersions", versions[0], a)
	changes, _ := readAll(t, s, 0, 10)
	if len(changes) != 1 {
		t.Fatalf("ReadChanges returned %d changes, want 1", len(changes))
	}
	wantReview(t, "ReadChanges", changes[0].Article, a)

	plain := saveAt(t, s, newArticle("plain"), 1)
	wantReview(t, "article without review fields", plain.Article, knowledge.Article{})
}

func testReviewFieldsMakeVersions(t *testing.T, s store.Store) {
	a := reviewed("rv")
	saveAt(t, s, a, 0)
	if res := saveAt(t, s, a, 1); res.Changed {
		t.Errorf("saving the same review fields again created version %d, want no change", res.Article.Version)
	}

	a.Owner = "SRE"
	if res := saveAt(t, s, a, 2); !res.Changed || res.Article.Version != 2 {
		t.Errorf("a new owner: Changed %v, version %d; want a new version 2", res.Changed, res.Article.Version)
	}
	a.ReviewEvery = 0
	res := saveAt(t, s, a, 3)
	if !res.Changed || res.Article.Version != 3 {
		t.Errorf("no review interval: Changed %v, version %d; want a new version 3", res.Changed, res.Article.Version)
	}
	wantReview(t, "version 3", res.Article, a)
}

// receiptIntegration returns a hybrid integration whose scope is the
// collection "ops".
func receiptIntegration(id string) knowledge.Integration {
	return knowledge.Integration{
		ID:        id,
		Name:      "Tool " + id,
		Pattern:   knowledge.PatternHybrid,
		Freshness: time.Minute,
		Scope:     knowledge.Scope{Collections: []string{"ops"}},
		CreatedAt: at(0),
	}
}

// key names version v of article id.
func key(id string, v int64) store.VersionKey {
	return store.VersionKey{ArticleID: id, Version: v}
}

// recordReceipts records keys at(minute) and fails the test on error.
func recordReceipts(t *testing.T, s store.Store, integrationID string, minute int, keys ...store.VersionKey) {
	t.Helper()
	if err := s.RecordReceipts(context.Background(), integrationID, keys, at(minute)); err != nil {
		t.Fatalf("RecordReceipts(%q, %v): %v", integrationID, keys, err)
	}
}

// progress returns the integration's progress on an article.
func progress(t *testing.T, s store.Store, integrationID, articleID string) store.ArticleProgress {
	t.Helper()
	st := getIntegration(t, s, integrationID)
	p, err := s.ArticleProgress(context.Background(), &st, articleID)
	if err != nil {
		t.Fatalf("ArticleProgress(%q, %q): %v", integrationID, articleID, err)
	}
	return p
}

// summary returns the integration's receipt summary.
func summary(t *testing.T, s store.Store, integrationID string, maxBehind int) store.ReceiptSummary {
	t.Helper()
	st := getIntegration(t, s, integrationID)
	sum, err := s.SummarizeReceipts(context.Background(), &st.Integration, maxBehind)
	if err != nil {
		t.Fatalf("SummarizeReceipts(%q): %v", integrationID, err)
	}
	return sum
}

// wantApplied fails the test unless the integration's receipt for the
// article names version and the given times.
func wantApplied(t *testing.T, s store.Store, integrationID, articleID string, version int64, appliedAt, receivedAt time.Time) {
	t.Helper()
	p := progress(t, s, integrationID, articleID)
	if p.Applied.ArticleID != articleID {
		t.Errorf("receipt of %s names article %q", articleID, p.Applied.ArticleID)
	}
	if p.Applied.Version != version {
		t.Errorf("receipt of %s: version %d, want %d", articleID, p.Applied.Version, version)
	}
	wantTime(t, "receipt of "+articleID+" AppliedAt", p.Applied.AppliedAt, appliedAt)
	wantTime(t, "receipt of "+articleID+" ReceivedAt", p.Applied.ReceivedAt, receivedAt)
}

func testDescribeVersions(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := reviewed("a")
	saveAt(t, s, a, 0)
	a.Collection, a.Body = "other", "The second body."
	saveAt(t, s, a, 1)
	saveAt(t, s, newArticle("b"), 2)

	keys := []store.VersionKey{key("a", 1), key("a", 2), key("b", 1), key("a", 3), key("missing", 1), key("a", 1)}
	infos, err := s.DescribeVersions(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 {
		t.Errorf("DescribeVersions returned %d entries, want 3 (a@1, a@2, b@1)", len(infos))
	}
	for _, missing := range []store.VersionKey{key("a", 3), key("missing", 1)} {
		if _, ok := infos[missing]; ok {
			t.Errorf("DescribeVersions returned %v, which names no stored version", missing)
		}
	}

	old := infos[key("a", 1)]
	if old.Version.ID != "a" || old.Version.Version != 1 || old.Version.Collection != "ops" {
		t.Errorf("a@1 Version = %s@%d in %q, want a@1 in ops", old.Version.ID, old.Version.Version, old.Version.Collection)
	}
	if old.Current.Version != 2 || old.Current.Collection != "other" {
		t.Errorf("a@1 Current = version %d in %q, want version 2 in other", old.Current.Version, old.Current.Collection)
	}
	if old.Version.Body != "" || old.Current.Body != "" {
		t.Errorf("a@1 bodies = %q and %q, want both empty", old.Version.Body, old.Current.Body)
	}
	wantReview(t, "a@1 Version", old.Version, a)
	wantReview(t, "a@1 Current", old.Current, a)
	wantTime(t, "a@1 Current UpdatedAt", old.Current.UpdatedAt, at(1))
	if b := infos[key("b", 1)]; b.Current.Version != 1 || b.Version.Class != knowledge.ClassRunbook {
		t.Errorf("b@1 = current version %d, class %q; want 1, runbook", b.Current.Version, b.Version.Class)
	}

	empty, err := s.DescribeVersions(ctx, nil)
	if err != nil || len(empty) != 0 {
		t.Errorf("DescribeVersions(nil) = %v, %v; want an empty map", empty, err)
	}
}

func testReceiptsKeepHighest(t *testing.T, s store.Store) {
	createIntegration(t, s, receiptIntegration("tool"))
	a := newArticle("a")
	for i := range 3 {
		a.Body = fmt.Sprintf("Body %d.", i)
		saveAt(t, s, a, i)
	}
	saveAt(t, s, newArticle("b"), 3)

	recordReceipts(t, s, "tool", 10, key("a", 2), key("b", 1))
	wantApplied(t, s, "tool", "a", 2, at(10), at(10))

	// A late receipt for an older version only shows that the tool is
	// alive.
	recordReceipts(t, s, "tool", 11, key("a", 1))
	wantApplied(t, s, "tool", "a", 2, at(10), at(11))

	// The same version again keeps the time it was first applied.
	recordReceipts(t, s, "tool", 12, key("a", 2))
	wantApplied(t, s, "tool", "a", 2, at(10), at(12))

	// Within one batch the highest version of an article wins.
	recordReceipts(t, s, "tool", 13, key("a", 3), key("a", 1))
	wantApplied(t, s, "tool", "a", 3, at(13), at(13))
	wantApplied(t, s, "tool", "b", 1, at(10), at(10))

	sum := summary(t, s, "tool", 100)
	if sum.Articles != 2 {
		t.Errorf("Articles = %d, want 2", sum.Articles)
	}
	wantTime(t, "LastReceiptAt", sum.LastReceiptAt, at(13))
}

func testReceiptsAllOrNothing(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, receiptIntegration("tool"))
	saveAt(t, s, newArticle("a"), 0)
	saveAt(t, s, newArticle("b"), 1)

	err := s.RecordReceipts(ctx, "tool", []store.VersionKey{key("a", 1), key("b", 2)}, at(5))
	wantErr(t, "a receipt for a missing version", err, store.ErrNotFound)
	err = s.RecordReceipts(ctx, "tool", []store.VersionKey{key("missing", 1)}, at(5))
	wantErr(t, "a receipt for a missing article", err, store.ErrNotFound)
	if sum := summary(t, s, "tool", 100); sum.Articles != 0 {
		t.Errorf("after failed batches Articles = %d, want 0", sum.Articles)
	}
	if p := progress(t, s, "tool", "a"); p.Applied.Version != 0 {
		t.Errorf("a failed batch recorded a@%d", p.Applied.Version)
	}

	err = s.RecordReceipts(ctx, "nobody", []store.VersionKey{key("a", 1)}, at(5))
	wantErr(t, "receipts of an unknown integration", err, store.ErrNotFound)
	err = s.RecordReceipts(ctx, "nobody", nil, at(5))
	wantErr(t, "no receipts of an unknown integration", err, store.ErrNotFound)
	if err := s.RecordReceipts(ctx, "tool", nil, at(5)); err != nil {
		t.Errorf("no receipts: %v", err)
	}
}

func testReceiptSummary(t *testing.T, s store.Store) {
	createIntegration(t, s, receiptIntegration("tool"))
	createIntegration(t, s, receiptIntegration("idle"))
	ids := []string{"a1", "a2", "a3", "a4"}
	for i, id := range ids {
		saveAt(t, s, newArticle(id), i)
		recordReceipts(t, s, "tool", 10+i, key(id, 1))
	}
	sum := summary(t, s, "tool", 100)
	if sum.Articles != 4 || sum.Behind != 0 || sum.BehindCapped {
		t.Errorf("all applied: %+v, want 4 articles and none behind", sum)
	}
	wantTime(t, "LastReceiptAt", sum.LastReceiptAt, at(13))

	// a1 and a2 get new versions in scope; a3's new version leaves the
	// scope, so the tool need not apply it.
	for _, id := range []string{"a1", "a2"} {
		a := newArticle(id)
		a.Body = "Changed."
		saveAt(t, s, a, 20)
	}
	moved := newArticle("a3")
	moved.Collection = "other"
	saveAt(t, s, moved, 21)

	sum = summary(t, s, "tool", 100)
	if sum.Articles != 4 || sum.Behind != 2 || sum.BehindCapped {
		t.Errorf("two behind: %+v, want 4 articles, 2 behind, not capped", sum)
	}
	if sum := summary(t, s, "tool", 2); sum.Behind != 2 || sum.BehindCapped {
		t.Errorf("two behind with a cap of 2: %+v, want 2 behind, not capped", sum)
	}
	if sum := summary(t, s, "tool", 1); sum.Behind != 1 || !sum.BehindCapped {
		t.Errorf("two behind with a cap of 1: %+v, want 1 behind, capped", sum)
	}

	recordReceipts(t, s, "tool", 30, key("a1", 2))
	if sum := summary(t, s, "tool", 100); sum.Behind != 1 {
		t.Errorf("after a1@2 was applied: %d behind, want 1", sum.Behind)
	}

	idle := summary(t, s, "idle", 100)
	if idle.Articles != 0 || idle.Behind != 0 || !idle.LastReceiptAt.IsZero() {
		t.Errorf("integration without receipts: %+v, want zero", idle)
	}
}

func testArticleProgress(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, receiptIntegration("tool"))
	createIntegration(t, s, receiptIntegration("other"))
	a := newArticle("a")
	c1 := saveAt(t, s, a, 0).Change
	a.Collection = "elsewhere" // version 2 is outside the scope
	c2 := saveAt(t, s, a, 1).Change
	a.Collection = "ops"
	c3 := saveAt(t, s, a, 2).Change

	if p := progress(t, s, "tool", "a"); p.Applied.Version != 0 || p.Pushed != 0 || p.Pulled != 0 {
		t.Errorf("before any delivery: %+v, want zero", p)
	}

	attempt := func(integrationID string, c knowledge.Change, outcome string) store.Attempt {
		return store.Attempt{
			IntegrationID: integrationID, EventID: fmt.Sprintf("evt_%d", c.Cursor), Cursor: c.Cursor,
			ArticleID: c.ArticleID, Version: c.Version, Type: c.Type, Attempt: 1,
			StatusCode: 500, StartedAt: at(10), Outcome: outcome,
		}
	}
	delivered := attempt("tool", c1, store.OutcomeDelivered)
	delivered.StatusCode = 204
	err := s.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: "tool",
		Attempts: []store.Attempt{delivered, attempt("tool", c3, store.OutcomeFailed)}})
	if err != nil {
		t.Fatal(err)
	}
	other := attempt("other", c3, store.OutcomeDelivered)
	other.StatusCode = 204
	if err := s.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: "other", Attempts: []store.Attempt{other}}); err != nil {
		t.Fatal(err)
	}
	if p := progress(t, s, "tool", "a"); p.Pushed != 1 {
		t.Errorf("Pushed = %d, want 1: the attempt at version 3 failed, and another integration's delivery does not count", p.Pushed)
	}

	if err := s.RecordPull(ctx, "tool", c2.Cursor, at(11)); err != nil {
		t.Fatal(err)
	}
	if p := progress(t, s, "tool", "a"); p.Pulled != 1 {
		t.Errorf("Pulled after reading to version 2 = %d, want 1: version 2 is outside the scope", p.Pulled)
	}
	if err := s.RecordPull(ctx, "tool", c3.Cursor, at(12)); err != nil {
		t.Fatal(err)
	}
	if p := progress(t, s, "tool", "a"); p.Pulled != 3 {
		t.Errorf("Pulled after reading to version 3 = %d, want 3", p.Pulled)
	}

	recordReceipts(t, s, "tool", 13, key("a", 3))
	wantApplied(t, s, "tool", "a", 3, at(13), at(13))
	if p := progress(t, s, "other", "a"); p.Applied.Version != 0 {
		t.Errorf("another integration's receipt shows as applied version %d", p.Applied.Version)
	}
	if p := progress(t, s, "tool", "missing"); p.Applied.Version != 0 || p.Pushed != 0 || p.Pulled != 0 {
		t.Errorf("unknown article: %+v, want zero", p)
	}
}

func testReceiptsDeletedWithIntegration(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, receiptIntegration("tool"))
	saveAt(t, s, newArticle("a"), 0)
	recordReceipts(t, s, "tool", 1, key("a", 1))
	if err := s.DeleteIntegration(ctx, "tool"); err != nil {
		t.Fatal(err)
	}
	createIntegration(t, s, receiptIntegration("tool"))
	if sum := summary(t, s, "tool", 100); sum.Articles != 0 {
		t.Errorf("a new integration with a deleted one's id has %d receipts, want 0", sum.Articles)
	}
}
