package storetest

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

func runPlanning(t *testing.T, open opener) {
	subtest(t, "UpdateIntegration", open, testUpdateIntegration)
	subtest(t, "UpdateUnknownIntegration", open, testUpdateUnknownIntegration)
	subtest(t, "CountChanges", open, testCountChanges)
	subtest(t, "CountChangesEmptyLog", open, testCountChangesEmptyLog)
}

func testUpdateIntegration(t *testing.T, s store.Store) {
	ctx := context.Background()
	before := fullIntegration("bot")
	before.Delivery = fullDeliverySettings()
	createIntegration(t, s, before)
	createIntegration(t, s, fullIntegration("other"))

	// Give the integration progress, a delivery state and a rotated
	// secret, all of which an update must keep.
	if err := s.CommitDelivery(ctx, store.DeliveryCommit{
		IntegrationID: "bot", PushCursor: 7,
		Retry:     store.RetryState{Cursor: 8, Attempt: 2, DueAt: at(5), Since: at(4)},
		LastError: "503 Service Unavailable", LastErrorAt: at(4), LastSuccessAt: at(3),
		Attempts: []store.Attempt{newAttempt("bot", 7, 1)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordPull(ctx, "bot", 6, at(2)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeliveryState(ctx, "bot", knowledge.StatePaused, "10 failed attempts in a row", at(6)); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateSecret(ctx, "bot", "whsec_bmV3IHNlY3JldCBvZiBzaXh0ZWVuIGJ5dGVz", at(30)); err != nil {
		t.Fatal(err)
	}
	old := getIntegration(t, s, "bot")

	u := store.IntegrationUpdate{
		Freshness:    2*time.Minute + 5*time.Nanosecond,
		PollInterval: 0,
		Lookups:      false,
		AcceptRisk:   false,
		Reasons:      []string{"The window is now 2m."},
		WebhookURL:   "https://bot.example.test/hooks/v2",
		Delivery:     knowledge.DeliverySettings{BatchSize: 50, RateLimit: 0.5},
	}
	if err := s.UpdateIntegration(ctx, "bot", u); err != nil {
		t.Fatalf("UpdateIntegration: %v", err)
	}
	got := getIntegration(t, s, "bot")

	want := old
	want.Freshness, want.PollInterval, want.Lookups, want.AcceptRisk = u.Freshness, u.PollInterval, u.Lookups, u.AcceptRisk
	want.Reasons, want.WebhookURL, want.Delivery = u.Reasons, u.WebhookURL, u.Delivery
	wantIntegration(t, "updated integration", got.Integration, want.Integration)
	if got.PushCursor != 7 || got.PullCursor != 6 || !got.PullSeen {
		t.Errorf("after the update: push cursor %d, pull cursor %d, seen %v; want 7, 6, true", got.PushCursor, got.PullCursor, got.PullSeen)
	}
	if got.Retry.Cursor != 8 || got.Retry.Attempt != 2 {
		t.Errorf("after the update: retry %+v, want cursor 8, attempt 2", got.Retry)
	}
	wantTime(t, "Retry.DueAt after the update", got.Retry.DueAt, at(5))
	if got.State != knowledge.StatePaused || got.StateReason != old.StateReason {
		t.Errorf("after the update: state %q (%q), want paused (%q)", got.State, got.StateReason, old.StateReason)
	}
	if got.PreviousSecret != before.WebhookSecret {
		t.Errorf("after the update: previous secret %q, want the secret before the rotation", got.PreviousSecret)
	}
	wantTime(t, "PreviousSecretUntil after the update", got.PreviousSecretUntil, at(30))
	if got.LastError != old.LastError {
		t.Errorf("after the update: last error %q, want %q", got.LastError, old.LastError)
	}
	wantTime(t, "LastSuccessAt after the update", got.LastSuccessAt, at(3))

	// The pull token still finds the integration.
	byToken, err := s.GetIntegrationByToken(ctx, before.TokenHash)
	if err != nil || byToken.ID != "bot" {
		t.Errorf("GetIntegrationByToken after the update = %q, %v; want bot", byToken.ID, err)
	}
	// Other integrations are untouched.
	wantIntegration(t, "other integration", getIntegration(t, s, "other").Integration, fullIntegration("other"))
	// The delivery history stays.
	attempts, err := s.ListDeliveries(ctx, "bot", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != 1 {
		t.Errorf("after the update: %d delivery attempts, want 1", len(attempts))
	}

	// Nil reasons and zero settings come back as they went in.
	if err := s.UpdateIntegration(ctx, "bot", store.IntegrationUpdate{Freshness: time.Hour}); err != nil {
		t.Fatal(err)
	}
	got = getIntegration(t, s, "bot")
	if got.Reasons != nil || got.Delivery != (knowledge.DeliverySettings{}) || got.WebhookURL != "" {
		t.Errorf("after a minimal update: reasons %q, delivery %+v, webhook %q; want nil, zero, empty", got.Reasons, got.Delivery, got.WebhookURL)
	}
}

func testUpdateUnknownIntegration(t *testing.T, s store.Store) {
	err := s.UpdateIntegration(context.Background(), "nobody", store.IntegrationUpdate{Freshness: time.Minute})
	wantErr(t, "UpdateIntegration of an unknown id", err, store.ErrNotFound)
}

// tallyMap turns tallies into "class/type" → count, failing the test on a
// group that appears twice.
func tallyMap(t *testing.T, tallies []store.ChangeTally) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, c := range tallies {
		key := fmt.Sprintf("%s/%s", c.Class, c.Type)
		if _, dup := out[key]; dup {
			t.Errorf("group %s is counted twice", key)
		}
		out[key] += c.Count
	}
	return out
}

func testCountChanges(t *testing.T, s store.Store) {
	ctx := context.Background()
	article := func(id string, class knowledge.Class, collection string, tags []string, meta map[string]string) knowledge.Article {
		a := newArticle(id)
		a.Class, a.Collection, a.Tags, a.Metadata = class, collection, tags, meta
		return a
	}
	// Minute 0: three creations. Minute 10: two updates. Minute 20: a
	// deprecation and an archival.
	p1 := article("p1", knowledge.ClassPolicy, "handbook", []string{"hr"}, map[string]string{"region": "eu"})
	p2 := article("p2", knowledge.ClassPolicy, "handbook", []string{"travel"}, map[string]string{"region": "us"})
	r1 := article("r1", knowledge.ClassRunbook, "ops", []string{"db"}, nil)
	for _, a := range []knowledge.Article{p1, p2, r1} {
		saveAt(t, s, a, 0)
	}
	p1.Body, r1.Body = "Changed.", "Changed."
	saveAt(t, s, p1, 10)
	saveAt(t, s, r1, 10)
	p2.Status = knowledge.StatusDeprecated
	saveAt(t, s, p2, 20)
	r1.Status = knowledge.StatusArchived
	saveAt(t, s, r1, 20)

	cases := []struct {
		name  string
		scope knowledge.Scope
		since time.Time
		want  map[string]int64
	}{
		{"whole log", knowledge.Scope{}, time.Time{}, map[string]int64{
			"policy/created": 2, "policy/updated": 1, "policy/deprecated": 1,
			"runbook/created": 1, "runbook/updated": 1, "runbook/archived": 1,
		}},
		{"since is inclusive", knowledge.Scope{}, at(10), map[string]int64{
			"policy/updated": 1, "policy/deprecated": 1, "runbook/updated": 1, "runbook/archived": 1,
		}},
		{"after the newest change", knowledge.Scope{}, at(21), map[string]int64{}},
		{"class", knowledge.Scope{Classes: []knowledge.Class{knowledge.ClassRunbook}}, time.Time{}, map[string]int64{
			"runbook/created": 1, "runbook/updated": 1, "runbook/archived": 1,
		}},
		{"collection and since", knowledge.Scope{Collections: []string{"handbook"}}, at(5), map[string]int64{
			"policy/updated": 1, "policy/deprecated": 1,
		}},
		{"tag", knowledge.Scope{Tags: []string{"travel"}}, time.Time{}, map[string]int64{
			"policy/created": 1, "policy/deprecated": 1,
		}},
		{"metadata", knowledge.Scope{Metadata: map[string]string{"region": "eu"}}, time.Time{}, map[string]int64{
			"policy/created": 1, "policy/updated": 1,
		}},
		{"nothing matches", knowledge.Scope{Classes: []knowledge.Class{knowledge.ClassSafety}}, time.Time{}, map[string]int64{}},
	}
	for _, tc := range cases {
		tc.scope.Normalize()
		tallies, err := s.CountChanges(ctx, tc.scope, tc.since)
		if err != nil {
			t.Fatalf("%s: CountChanges: %v", tc.name, err)
		}
		got := tallyMap(t, tallies)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: counts = %v, want %v", tc.name, sortedPairs(got), sortedPairs(tc.want))
		}
	}

	// Pruned entries are not counted, though their versions stay.
	if _, err := s.PruneChanges(ctx, at(10)); err != nil {
		t.Fatal(err)
	}
	tallies, err := s.CountChanges(ctx, knowledge.Scope{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"policy/updated": 1, "policy/deprecated": 1, "runbook/updated": 1, "runbook/archived": 1}
	if got := tallyMap(t, tallies); !reflect.DeepEqual(got, want) {
		t.Errorf("after pruning before minute 10: counts = %v, want %v", sortedPairs(got), sortedPairs(want))
	}
}

func testCountChangesEmptyLog(t *testing.T, s store.Store) {
	tallies, err := s.CountChanges(context.Background(), knowledge.Scope{}, at(0))
	if err != nil {
		t.Fatal(err)
	}
	if len(tallies) != 0 {
		t.Errorf("CountChanges of an empty log = %+v, want none", tallies)
	}
}

// sortedPairs formats counts in key order, so that messages compare easily.
func sortedPairs(m map[string]int64) []string {
	out := []string{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return out
}
