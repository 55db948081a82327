package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// A batched request that delivers several events is stored as one packed
// row and read back as one attempt per event. These tests check that every
// reader of delivery history finds the events of such a row.
func runPackedDeliveries(t *testing.T, open opener) {
	subtest(t, "History", open, testPackedHistory)
	subtest(t, "SettlesFailure", open, testPackedSettlesFailure)
	subtest(t, "ArticleProgress", open, testPackedProgress)
}

// batchAttempts returns the attempts of one batched request that delivered
// the changes.
func batchAttempts(integrationID, requestID string, started time.Time, changes ...knowledge.Change) []store.Attempt {
	out := make([]store.Attempt, len(changes))
	for i, c := range changes {
		out[i] = store.Attempt{
			IntegrationID: integrationID,
			EventID:       requestID,
			Cursor:        c.Cursor,
			ArticleID:     c.ArticleID,
			Version:       c.Version,
			Type:          c.Type,
			Attempt:       1,
			StatusCode:    202,
			Latency:       3*time.Millisecond + 11*time.Nanosecond,
			StartedAt:     started,
			Outcome:       store.OutcomeDelivered,
		}
	}
	return out
}

func commitDelivery(t *testing.T, s store.Store, c store.DeliveryCommit) {
	t.Helper()
	if err := s.CommitDelivery(context.Background(), c); err != nil {
		t.Fatalf("CommitDelivery(%s): %v", c.IntegrationID, err)
	}
}

// attemptKey returns the fields of an attempt that a test compares.
func attemptKey(a store.Attempt) string {
	return fmt.Sprintf("%d %s@%d %s %s #%d %d %s", a.Cursor, a.ArticleID, a.Version, a.Type, a.EventID, a.Attempt, a.StatusCode, a.Outcome)
}

func wantAttempts(t *testing.T, s store.Store, name string, f store.DeliveryFilter, want []store.Attempt) {
	t.Helper()
	got, err := s.QueryDeliveries(context.Background(), "batched", f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(got) != len(want) {
		var keys []string
		for _, a := range got {
			keys = append(keys, attemptKey(a))
		}
		t.Fatalf("%s: %d attempts %q, want %d", name, len(got), keys, len(want))
	}
	for i := range want {
		if attemptKey(got[i]) != attemptKey(want[i]) {
			t.Errorf("%s[%d] = %s, want %s", name, i, attemptKey(got[i]), attemptKey(want[i]))
		}
		if got[i].IntegrationID != "batched" || got[i].Latency != want[i].Latency {
			t.Errorf("%s[%d]: integration %q latency %s, want batched and %s", name, i, got[i].IntegrationID, got[i].Latency, want[i].Latency)
		}
		wantTime(t, fmt.Sprintf("%s[%d] StartedAt", name, i), got[i].StartedAt, want[i].StartedAt)
	}
}

func testPackedHistory(t *testing.T, s store.Store) {
	c := seedFailed(t, s)
	createIntegration(t, s, knowledge.Integration{ID: "batched", Name: "batched", Pattern: knowledge.PatternPush, CreatedAt: at(0)})

	// One request with changes 1 to 3 (pol, rb, pol), one with change 4
	// alone, and a replay of changes 1 and 2 in one request.
	batch := batchAttempts("batched", "req_a", at(10), c[0], c[1], c[2])
	single := batchAttempts("batched", "req_b", at(11), c[3])
	commitDelivery(t, s, store.DeliveryCommit{IntegrationID: "batched", PushCursor: c[3].Cursor,
		Attempts: append(append([]store.Attempt{}, batch...), single...)})
	replay := batchAttempts("batched", "req_a", at(20), c[0], c[1])
	commitDelivery(t, s, store.DeliveryCommit{IntegrationID: "batched", AttemptsOnly: true, Attempts: replay})

	all := []store.Attempt{replay[1], replay[0], single[0], batch[2], batch[1], batch[0]}
	wantAttempts(t, s, "all", store.DeliveryFilter{}, all)
	wantAttempts(t, s, "limit 4", store.DeliveryFilter{Limit: 4}, all[:4])
	wantAttempts(t, s, "article pol", store.DeliveryFilter{ArticleID: "pol"}, []store.Attempt{replay[0], batch[2], batch[0]})
	wantAttempts(t, s, "article rb, limit 1", store.DeliveryFilter{ArticleID: "rb", Limit: 1}, []store.Attempt{replay[1]})
	wantAttempts(t, s, "article ref", store.DeliveryFilter{ArticleID: "ref"}, []store.Attempt{single[0]})
	wantAttempts(t, s, "until minute 11", store.DeliveryFilter{Until: at(11)}, []store.Attempt{batch[2], batch[1], batch[0]})
	wantAttempts(t, s, "failed", store.DeliveryFilter{Outcome: store.OutcomeFailed}, nil)
}

func testPackedSettlesFailure(t *testing.T, s store.Store) {
	c := seedFailed(t, s)
	in := knowledge.Integration{ID: "batched", Name: "batched", Pattern: knowledge.PatternPush, CreatedAt: at(0)}
	commit := failedSeed(t, s, in)
	commit(c[0], store.OutcomeFailed, c[0].Cursor)
	commit(c[1], store.OutcomeFailed, c[1].Cursor)
	wantFailed(t, s, &in, 0, &c[0])

	// A batch with the policy's update settles the policy's failure but
	// not the runbook's, whose article has no later change.
	commitDelivery(t, s, store.DeliveryCommit{IntegrationID: in.ID, PushCursor: c[3].Cursor,
		Attempts: batchAttempts(in.ID, "req_a", at(10), c[2], c[3])})
	wantFailed(t, s, &in, 0, &c[1])
	wantFailed(t, s, &in, c[1].Cursor, nil)
}

func testPackedProgress(t *testing.T, s store.Store) {
	c := seedFailed(t, s)
	createIntegration(t, s, knowledge.Integration{ID: "batched", Name: "batched", Pattern: knowledge.PatternPush, CreatedAt: at(0)})
	commitDelivery(t, s, store.DeliveryCommit{IntegrationID: "batched", PushCursor: c[3].Cursor,
		Attempts: batchAttempts("batched", "req_a", at(10), c[0], c[2], c[3])})

	// The runbook's change 2 lies inside the batch's range but was not in
	// it, as when a scope left it out. Retention keeps only the newest
	// change, which no batch holds, and must not change the results.
	for _, pruned := range []bool{false, true} {
		if pruned {
			if _, err := s.PruneChanges(context.Background(), at(60)); err != nil {
				t.Fatal(err)
			}
		}
		for _, w := range []struct {
			article string
			pushed  int64
		}{{"pol", c[2].Version}, {"ref", c[3].Version}, {"rb", 0}} {
			if p := progress(t, s, "batched", w.article); p.Pushed != w.pushed {
				t.Errorf("pruned %v: ArticleProgress(%s).Pushed = %d, want %d", pruned, w.article, p.Pushed, w.pushed)
			}
		}
	}
}
