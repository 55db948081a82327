package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

func runFailedDeliveries(t *testing.T, open opener) {
	subtest(t, "Push", open, testFailedPush)
	subtest(t, "Removal", open, testFailedRemoval)
	subtest(t, "Hybrid", open, testFailedHybrid)
	subtest(t, "PerIntegration", open, testFailedPerIntegration)
	subtest(t, "Pull", open, testFailedPull)
}

// seedFailed stores, in order: a policy created (1), a runbook created (2),
// the policy updated (3), a reference created (4) and the policy reclassed
// as a runbook (5). It returns the five changes.
func seedFailed(t *testing.T, s store.Store) []knowledge.Change {
	var out []knowledge.Change
	add := func(res store.SaveResult) { out = append(out, res.Change) }
	pol := newArticle("pol")
	pol.Class = knowledge.ClassPolicy
	add(saveAt(t, s, pol, 0))
	add(saveAt(t, s, newArticle("rb"), 1))
	pol.Body = "Updated policy."
	add(saveAt(t, s, pol, 2))
	ref := newArticle("ref")
	ref.Class = knowledge.ClassReference
	add(saveAt(t, s, ref, 3))
	pol.Class = knowledge.ClassRunbook
	add(saveAt(t, s, pol, 4))
	return out
}

// failedSeed creates an integration and returns a function that commits one
// attempt at a change with the given outcome together with a push cursor.
func failedSeed(t *testing.T, s store.Store, in knowledge.Integration) func(c knowledge.Change, outcome string, pushCursor int64) {
	createIntegration(t, s, in)
	return func(c knowledge.Change, outcome string, pushCursor int64) {
		t.Helper()
		a := store.Attempt{
			IntegrationID: in.ID,
			EventID:       fmt.Sprintf("evt_%d", c.Cursor),
			Cursor:        c.Cursor,
			ArticleID:     c.ArticleID,
			Version:       c.Version,
			Type:          c.Type,
			Attempt:       1,
			StatusCode:    400,
			StartedAt:     c.Time,
			Outcome:       outcome,
		}
		if outcome == store.OutcomeDelivered {
			a.StatusCode = 204
		}
		err := s.CommitDelivery(context.Background(), store.DeliveryCommit{IntegrationID: in.ID, Attempts: []store.Attempt{a}, PushCursor: pushCursor})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// advance moves an integration's push cursor without recording attempts, as
// the dispatcher does for changes it skips.
func advance(t *testing.T, s store.Store, id string, cursor int64) {
	t.Helper()
	if err := s.CommitDelivery(context.Background(), store.DeliveryCommit{IntegrationID: id, PushCursor: cursor}); err != nil {
		t.Fatal(err)
	}
}

// wantFailed checks OldestFailedChange: want is the expected change, or nil
// for store.ErrNotFound.
func wantFailed(t *testing.T, s store.Store, in *knowledge.Integration, after int64, want *knowledge.Change) {
	t.Helper()
	c, err := s.OldestFailedChange(context.Background(), in, after)
	name := fmt.Sprintf("OldestFailedChange(%s, %d)", in.ID, after)
	if want == nil {
		if err == nil {
			t.Errorf("%s = cursor %d (%s@%d), want ErrNotFound", name, c.Cursor, c.ArticleID, c.Version)
		} else {
			wantErr(t, name, err, store.ErrNotFound)
		}
		return
	}
	if err != nil {
		t.Errorf("%s: %v, want cursor %d", name, err, want.Cursor)
		return
	}
	if c.Cursor != want.Cursor || c.ArticleID != want.ArticleID || c.Version != want.Version {
		t.Errorf("%s = cursor %d (%s@%d), want %d (%s@%d)", name, c.Cursor, c.ArticleID, c.Version, want.Cursor, want.ArticleID, want.Version)
	}
	wantTime(t, name+" time", c.Time, want.Time)
	if c.Article.ID != c.ArticleID || c.Article.Version != c.Version {
		t.Errorf("%s: change %s@%d carries article %s@%d", name, c.ArticleID, c.Version, c.Article.ID, c.Article.Version)
	}
}

func testFailedPush(t *testing.T, s store.Store) {
	c := seedFailed(t, s)
	in := knowledge.Integration{ID: "wh", Name: "wh", Pattern: knowledge.PatternPush, CreatedAt: at(0),
		Scope: knowledge.Scope{Classes: []knowledge.Class{knowledge.ClassPolicy}}}
	commit := failedSeed(t, s, in)
	wantFailed(t, s, &in, 0, nil)

	commit(c[0], store.OutcomeFailed, c[0].Cursor)
	wantFailed(t, s, &in, 0, &c[0])
	wantFailed(t, s, &in, c[0].Cursor, nil)

	// A second failure of the same article leaves the first one pending,
	// and changes of other articles do not settle it.
	commit(c[2], store.OutcomeFailed, c[3].Cursor)
	wantFailed(t, s, &in, 0, &c[0])
	wantFailed(t, s, &in, c[0].Cursor, &c[2])

	// The reclassed policy left the scope. Push sends that change as a
	// removal, so moving past it settles nothing; its delivery does.
	advance(t, s, in.ID, c[4].Cursor)
	wantFailed(t, s, &in, 0, &c[0])
	commit(c[4], store.OutcomeDelivered, c[4].Cursor)
	wantFailed(t, s, &in, 0, nil)
}

// testFailedRemoval fails the removal of an article that left the scope
// and checks that later changes outside the scope do not settle it: the
// tool still holds the article.
func testFailedRemoval(t *testing.T, s store.Store) {
	c := seedFailed(t, s)
	in := knowledge.Integration{ID: "wh", Name: "wh", Pattern: knowledge.PatternPush, CreatedAt: at(0),
		Scope: knowledge.Scope{Classes: []knowledge.Class{knowledge.ClassPolicy}}}
	commit := failedSeed(t, s, in)
	commit(c[4], store.OutcomeFailed, c[4].Cursor)
	pol := newArticle("pol")
	pol.Body = "Edited as a runbook."
	later := saveAt(t, s, pol, 5)
	advance(t, s, in.ID, later.Change.Cursor)
	wantFailed(t, s, &in, 0, &c[4])
}

func testFailedHybrid(t *testing.T, s store.Store) {
	c := seedFailed(t, s)
	in := knowledge.Integration{ID: "hy", Name: "hy", Pattern: knowledge.PatternHybrid, CreatedAt: at(0)}
	commit := failedSeed(t, s, in)

	commit(c[0], store.OutcomeFailed, c[1].Cursor)
	wantFailed(t, s, &in, 0, &c[0])

	// A later version of the same article delivered settles the failure.
	commit(c[2], store.OutcomeDelivered, c[2].Cursor)
	wantFailed(t, s, &in, 0, nil)

	// An update of a runbook is not pushed by hybrid, so the reclassed
	// policy's update is skipped, which settles the failure before it.
	other := knowledge.Integration{ID: "hy2", Name: "hy2", Pattern: knowledge.PatternHybrid, CreatedAt: at(0)}
	commitOther := failedSeed(t, s, other)
	commitOther(c[2], store.OutcomeFailed, c[3].Cursor)
	wantFailed(t, s, &other, 0, &c[2])
	advance(t, s, other.ID, c[4].Cursor)
	wantFailed(t, s, &other, 0, nil)
}

func testFailedPerIntegration(t *testing.T, s store.Store) {
	c := seedFailed(t, s)
	a := knowledge.Integration{ID: "a", Name: "a", Pattern: knowledge.PatternPush, CreatedAt: at(0)}
	b := knowledge.Integration{ID: "b", Name: "b", Pattern: knowledge.PatternPush, CreatedAt: at(0)}
	commitA := failedSeed(t, s, a)
	commitB := failedSeed(t, s, b)

	commitA(c[0], store.OutcomeFailed, c[1].Cursor)
	commitB(c[0], store.OutcomeDelivered, c[1].Cursor)
	commitB(c[2], store.OutcomeDelivered, c[2].Cursor)
	// Deliveries to b say nothing about what a's tool has.
	wantFailed(t, s, &a, 0, &c[0])
	wantFailed(t, s, &b, 0, nil)

	// Attempts still retrying are not final failures.
	commitA(c[2], store.OutcomeRetrying, 0)
	wantFailed(t, s, &a, c[0].Cursor, nil)
}

func testFailedPull(t *testing.T, s store.Store) {
	seedFailed(t, s)
	in := knowledge.Integration{ID: "pl", Name: "pl", Pattern: knowledge.PatternPull, CreatedAt: at(0), TokenHash: "h"}
	createIntegration(t, s, in)
	wantFailed(t, s, &in, 0, nil)
}
