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

func TestPullWithoutFeedIsFresh(t *testing.T) {
	st, s := setup(t, knowledge.PatternPull)
	write(t, st, "a", "runbook", 0)
	r := measure(t, st, s.ID, t0.Add(time.Hour))
	if r.Staleness != 0 {
		t.Errorf("lookup-only pull tool: staleness %s, want 0", r.Staleness)
	}

	if err := st.RecordPull(context.Background(), s.ID, 0, t0); err != nil {
		t.Fatal(err)
	}
	r = measure(t, st, s.ID, t0.Add(time.Hour))
	if r.Staleness != time.Hour {
		t.Errorf("feed reader behind: staleness %s, want 1h", r.Staleness)
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
