package freshness_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/freshness"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/sqlite"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func setup(t *testing.T, pattern knowledge.Pattern) (store.Store, store.IntegrationState) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "khub.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	in := knowledge.Integration{ID: "int_1", Name: "tool", Pattern: pattern, Freshness: 10 * time.Minute, CreatedAt: t0, TokenHash: "h"}
	in.Scope.Normalize()
	if err := st.CreateIntegration(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	s, err := st.GetIntegration(context.Background(), in.ID)
	if err != nil {
		t.Fatal(err)
	}
	return st, s
}

// write stores a change at t0 plus offset and returns its cursor.
func write(t *testing.T, st store.Store, id string, class knowledge.Class, offset time.Duration) int64 {
	t.Helper()
	a := knowledge.Article{ID: id, Title: id, Body: offset.String(), Collection: "c", Class: class}
	a.Normalize()
	res, err := st.SaveArticle(context.Background(), a, store.SaveOptions{Now: t0.Add(offset)})
	if err != nil {
		t.Fatal(err)
	}
	return res.Change.Cursor
}

func measure(t *testing.T, st store.Store, id string, now time.Time) freshness.Report {
	t.Helper()
	s, err := st.GetIntegration(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	r, err := freshness.Measure(context.Background(), st, &s, now)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPushStalenessFollowsCursor(t *testing.T) {
	st, s := setup(t, knowledge.PatternPush)
	ctx := context.Background()
	c1 := write(t, st, "a", "policy", 0)
	write(t, st, "b", "policy", time.Minute)

	r := measure(t, st, s.ID, t0.Add(20*time.Minute))
	if r.Staleness != 20*time.Minute || r.WithinWindow {
		t.Errorf("undelivered: staleness %s within %v, want 20m outside", r.Staleness, r.WithinWindow)
	}

	if err := st.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: s.ID, PushCursor: c1}); err != nil {
		t.Fatal(err)
	}
	r = measure(t, st, s.ID, t0.Add(5*time.Minute))
	if r.Staleness != 4*time.Minute || !r.WithinWindow {
		t.Errorf("first delivered: staleness %s within %v, want 4m within", r.Staleness, r.WithinWindow)
	}
}

func TestPullWithoutFeed(t *testing.T) {
	st, s := setup(t, knowledge.PatternPull)
	write(t, st, "a", "runbook", 0)
	// A tool that polls but has never read the feed has received nothing.
	r := measure(t, st, s.ID, t0.Add(time.Hour))
	if r.Staleness != time.Hour || r.WithinWindow || r.OldestPending != 1 {
		t.Errorf("pull tool that never read the feed: staleness %s within %v at cursor %d, want 1h outside at cursor 1",
			r.Staleness, r.WithinWindow, r.OldestPending)
	}

	if err := st.RecordPull(context.Background(), s.ID, 1, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	r = measure(t, st, s.ID, t0.Add(time.Hour))
	if r.Staleness != 0 || !r.WithinWindow {
		t.Errorf("feed reader caught up: staleness %s within %v, want 0 within", r.Staleness, r.WithinWindow)
	}
}

func TestPullWithLookupsIsFresh(t *testing.T) {
	st, _ := setup(t, knowledge.PatternPull)
	in := knowledge.Integration{ID: "int_2", Name: "lookups", Pattern: knowledge.PatternPull, Lookups: true, Freshness: 10 * time.Minute, CreatedAt: t0, TokenHash: "h2"}
	in.Scope.Normalize()
	if err := st.CreateIntegration(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	write(t, st, "a", "runbook", 0)
	r := measure(t, st, in.ID, t0.Add(time.Hour))
	if r.Staleness != 0 {
		t.Errorf("lookup tool: staleness %s, want 0", r.Staleness)
	}

	// Once it reads the feed, the feed is what it has received.
	if err := st.RecordPull(context.Background(), in.ID, 0, t0); err != nil {
		t.Fatal(err)
	}
	r = measure(t, st, in.ID, t0.Add(time.Hour))
	if r.Staleness != time.Hour {
		t.Errorf("lookup tool behind on the feed: staleness %s, want 1h", r.Staleness)
	}
}

// fail records a final failed delivery of the change at cursor and moves
// the push cursor past it, as the dispatcher does.
func fail(t *testing.T, st store.Store, id string, c knowledge.Change) {
	t.Helper()
	a := store.Attempt{EventID: "evt", Cursor: c.Cursor, ArticleID: c.ArticleID, Version: c.Version, Type: c.Type,
		Attempt: 1, StatusCode: 400, Error: "HTTP 400", StartedAt: c.Time, Outcome: store.OutcomeFailed}
	err := st.CommitDelivery(context.Background(), store.DeliveryCommit{IntegrationID: id, Attempts: []store.Attempt{a},
		PushCursor: c.Cursor, LastError: a.Error, LastErrorAt: c.Time})
	if err != nil {
		t.Fatal(err)
	}
}

// deliver records a delivered attempt of the change at cursor.
func deliver(t *testing.T, st store.Store, id string, c knowledge.Change) {
	t.Helper()
	a := store.Attempt{EventID: "evt", Cursor: c.Cursor, ArticleID: c.ArticleID, Version: c.Version, Type: c.Type,
		Attempt: 1, StatusCode: 204, StartedAt: c.Time, Outcome: store.OutcomeDelivered}
	err := st.CommitDelivery(context.Background(), store.DeliveryCommit{IntegrationID: id, Attempts: []store.Attempt{a},
		PushCursor: c.Cursor, LastSuccessAt: c.Time})
	if err != nil {
		t.Fatal(err)
	}
}

// change returns the change-log entry at cursor.
func change(t *testing.T, st store.Store, cursor int64) knowledge.Change {
	t.Helper()
	page, err := st.ReadChanges(context.Background(), cursor-1, 1)
	if err != nil || len(page.Changes) != 1 || page.Changes[0].Cursor != cursor {
		t.Fatalf("read change %d: %+v %v", cursor, page.Changes, err)
	}
	return page.Changes[0]
}

func TestFailedDeliveryStaysStale(t *testing.T) {
	st, s := setup(t, knowledge.PatternPush)
	a1 := change(t, st, write(t, st, "a", "policy", 0))
	fail(t, st, s.ID, a1)

	// The cursor moved past the change, but the tool never got it.
	r := measure(t, st, s.ID, t0.Add(20*time.Minute))
	if r.Staleness != 20*time.Minute || r.WithinWindow || r.OldestPending != a1.Cursor {
		t.Errorf("after a failed delivery: staleness %s within %v at cursor %d, want 20m outside at cursor %d",
			r.Staleness, r.WithinWindow, r.OldestPending, a1.Cursor)
	}

	// Another article delivered does not make up for it.
	b := change(t, st, write(t, st, "b", "policy", time.Minute))
	deliver(t, st, s.ID, b)
	if r := measure(t, st, s.ID, t0.Add(20*time.Minute)); r.Staleness != 20*time.Minute {
		t.Errorf("after another article was delivered: staleness %s, want 20m", r.Staleness)
	}

	// A later version of the same article delivered does.
	a2 := change(t, st, write(t, st, "a", "policy", 25*time.Minute))
	if r := measure(t, st, s.ID, t0.Add(30*time.Minute)); r.Staleness != 30*time.Minute {
		t.Errorf("new version not yet delivered: staleness %s, want 30m from the failed change", r.Staleness)
	}
	deliver(t, st, s.ID, a2)
	if r := measure(t, st, s.ID, t0.Add(30*time.Minute)); r.Staleness != 0 || !r.WithinWindow {
		t.Errorf("new version delivered: staleness %s within %v, want 0 within", r.Staleness, r.WithinWindow)
	}
}

func TestFailedDeliverySettledByRemoval(t *testing.T) {
	st, _ := setup(t, knowledge.PatternPush)
	in := knowledge.Integration{ID: "int_pol", Name: "policies", Pattern: knowledge.PatternPush, Freshness: 10 * time.Minute, CreatedAt: t0,
		Scope: knowledge.Scope{Classes: []knowledge.Class{knowledge.ClassPolicy}}}
	in.Scope.Normalize()
	if err := st.CreateIntegration(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	a1 := change(t, st, write(t, st, "a", "policy", 0))
	fail(t, st, in.ID, a1)
	if r := measure(t, st, in.ID, t0.Add(5*time.Minute)); r.Staleness != 5*time.Minute {
		t.Errorf("after a failed delivery: staleness %s, want 5m", r.Staleness)
	}

	// The article leaves the scope. The dispatcher sends that change as a
	// removal, and until the tool has it, the failure still counts.
	moved := change(t, st, write(t, st, "a", "runbook", time.Minute))
	if r := measure(t, st, in.ID, t0.Add(5*time.Minute)); r.Staleness != 5*time.Minute {
		t.Errorf("after the article left the scope: staleness %s, want 5m", r.Staleness)
	}
	deliver(t, st, in.ID, moved)
	if r := measure(t, st, in.ID, t0.Add(5*time.Minute)); r.Staleness != 0 {
		t.Errorf("after the removal was delivered: staleness %s, want 0", r.Staleness)
	}
}

func TestHybridFailedPushFetchedFromFeed(t *testing.T) {
	st, s := setup(t, knowledge.PatternHybrid)
	pol := change(t, st, write(t, st, "pol", "policy", 0))
	fail(t, st, s.ID, pol)
	if err := st.RecordPull(context.Background(), s.ID, 0, t0); err != nil {
		t.Fatal(err)
	}
	if r := measure(t, st, s.ID, t0.Add(5*time.Minute)); r.Staleness != 5*time.Minute {
		t.Errorf("failed push not yet read from the feed: staleness %s, want 5m", r.Staleness)
	}
	// The tool read the change from the feed, so it has it after all.
	if err := st.RecordPull(context.Background(), s.ID, pol.Cursor, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r := measure(t, st, s.ID, t0.Add(5*time.Minute)); r.Staleness != 0 {
		t.Errorf("failed push read from the feed: staleness %s, want 0", r.Staleness)
	}
}

func TestHybridCountsBothSides(t *testing.T) {
	st, s := setup(t, knowledge.PatternHybrid)
	ctx := context.Background()
	pol := write(t, st, "pol", "policy", 0)
	write(t, st, "rb", "runbook", 2*time.Minute)

	// The policy was pushed; the runbook waits for the feed.
	if err := st.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: s.ID, PushCursor: pol + 1}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordPull(ctx, s.ID, 0, t0); err != nil {
		t.Fatal(err)
	}
	r := measure(t, st, s.ID, t0.Add(10*time.Minute))
	if r.Staleness != 8*time.Minute {
		t.Errorf("runbook unfetched: staleness %s, want 8m", r.Staleness)
	}

	if err := st.RecordPull(ctx, s.ID, pol+1, t0.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	r = measure(t, st, s.ID, t0.Add(10*time.Minute))
	if r.Staleness != 0 || !r.WithinWindow {
		t.Errorf("caught up: staleness %s within %v, want 0 within", r.Staleness, r.WithinWindow)
	}
}

// TestPullStaleAfterPruning checks that a pull tool whose unread changes
// retention removed stays stale, though no kept entry is in its scope.
func TestPullStaleAfterPruning(t *testing.T) {
	st, _ := setup(t, knowledge.PatternPull)
	ctx := context.Background()
	in := knowledge.Integration{ID: "int_rb", Name: "runbooks", Pattern: knowledge.PatternPull, Freshness: 10 * time.Minute,
		CreatedAt: t0, TokenHash: "h2", Scope: knowledge.Scope{Classes: []knowledge.Class{"runbook"}}}
	in.Scope.Normalize()
	if err := st.CreateIntegration(ctx, in); err != nil {
		t.Fatal(err)
	}
	c1 := write(t, st, "a", "runbook", 0)
	if err := st.RecordPull(ctx, in.ID, c1, t0); err != nil {
		t.Fatal(err)
	}
	c2 := write(t, st, "b", "runbook", time.Minute)
	write(t, st, "p", "policy", 2*time.Minute)
	if r := measure(t, st, in.ID, t0.Add(3*time.Minute)); r.OldestPending != c2 {
		t.Fatalf("before pruning: oldest pending %d, want %d", r.OldestPending, c2)
	}

	// Only the policy change, outside the scope, is kept.
	if _, err := st.PruneChanges(ctx, t0.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	r := measure(t, st, in.ID, t0.Add(20*time.Minute))
	if r.OldestPending != c2 {
		t.Errorf("after pruning: oldest pending %d, want the first removed cursor %d", r.OldestPending, c2)
	}
	// Measured from the oldest kept entry, at 2m.
	if r.Staleness != 18*time.Minute || r.WithinWindow {
		t.Errorf("after pruning: staleness %s within %v, want 18m outside the window", r.Staleness, r.WithinWindow)
	}
}

// TestHybridPushOnlyFreshAfterPruning checks that a hybrid tool that
// never read the feed is not counted stale for removed entries: they may
// all be changes that it got by push.
func TestHybridPushOnlyFreshAfterPruning(t *testing.T) {
	st, s := setup(t, knowledge.PatternHybrid)
	ctx := context.Background()
	write(t, st, "pol-1", "policy", 0)
	last := write(t, st, "pol-2", "policy", time.Minute)
	if err := st.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: s.ID, PushCursor: last}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PruneChanges(ctx, t0.Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	r := measure(t, st, s.ID, t0.Add(20*time.Minute))
	if r.Staleness != 0 || !r.WithinWindow {
		t.Errorf("pushed changes, one removed: staleness %s within %v, want 0 within", r.Staleness, r.WithinWindow)
	}
}
