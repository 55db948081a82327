package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/khub-dev/khub/internal/store"
)

// testCommitDeliveries writes the commits of two integrations, one of them
// with a commit of attempts only, in one group and checks that each
// integration ends as if its commits had been written one by one.
func testCommitDeliveries(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, fullIntegration("a"))
	createIntegration(t, s, fullIntegration("b"))

	notFound, err := s.CommitDeliveries(ctx, nil)
	if err != nil || len(notFound) != 0 {
		t.Fatalf("CommitDeliveries(nil) = %v, %v, want no indexes and no error", notFound, err)
	}

	retry := store.RetryState{Cursor: 3, Attempt: 2, DueAt: at(9), Since: at(8)}
	commits := []store.DeliveryCommit{
		{IntegrationID: "a", PushCursor: 2, Retry: retry,
			Attempts: []store.Attempt{newAttempt("a", 1, 1), newAttempt("a", 2, 1)}},
		{IntegrationID: "a", AttemptsOnly: true, Attempts: []store.Attempt{newAttempt("a", 1, 2)}},
		{IntegrationID: "b", PushCursor: 5, LastError: "timed out", LastErrorAt: at(4),
			Attempts: []store.Attempt{newAttempt("b", 5, 1)}},
		// A later commit of "a" replaces its retry state, and its lower
		// cursor is ignored.
		{IntegrationID: "a", PushCursor: 1, LastSuccessAt: at(6)},
	}
	notFound, err = s.CommitDeliveries(ctx, commits)
	if err != nil {
		t.Fatal(err)
	}
	if len(notFound) != 0 {
		t.Errorf("CommitDeliveries returned not-found indexes %v, want none", notFound)
	}

	a := getIntegration(t, s, "a")
	if a.PushCursor != 2 {
		t.Errorf("a: PushCursor = %d, want 2", a.PushCursor)
	}
	if a.Retry != (store.RetryState{}) {
		t.Errorf("a: Retry = %+v, want it cleared by the last commit", a.Retry)
	}
	wantTime(t, "a: LastSuccessAt", a.LastSuccessAt, at(6))
	b := getIntegration(t, s, "b")
	if b.PushCursor != 5 {
		t.Errorf("b: PushCursor = %d, want 5", b.PushCursor)
	}
	if b.LastError != "timed out" {
		t.Errorf("b: LastError = %q, want timed out", b.LastError)
	}
	wantTime(t, "b: LastErrorAt", b.LastErrorAt, at(4))

	got, err := s.ListDeliveries(ctx, "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"evt_a_1_2", "evt_a_2_1", "evt_a_1_1"} // newest first
	if ids := eventIDs(got); !slices.Equal(ids, want) {
		t.Errorf("attempts of a = %v, want %v", ids, want)
	}
	got, err = s.ListDeliveries(ctx, "b", 0)
	if err != nil {
		t.Fatal(err)
	}
	if ids := eventIDs(got); !slices.Equal(ids, []string{"evt_b_5_1"}) {
		t.Errorf("attempts of b = %v, want [evt_b_5_1]", ids)
	}
}

// testCommitDeliveriesNotFound checks that a commit for an unknown
// integration is left out and reported, and the others are written.
func testCommitDeliveriesNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, fullIntegration("a"))
	createIntegration(t, s, fullIntegration("b"))
	commits := []store.DeliveryCommit{
		{IntegrationID: "a", PushCursor: 1, Attempts: []store.Attempt{newAttempt("a", 1, 1)}},
		{IntegrationID: "gone", PushCursor: 2, Attempts: []store.Attempt{newAttempt("gone", 2, 1)}},
		{IntegrationID: "gone", AttemptsOnly: true, Attempts: []store.Attempt{newAttempt("gone", 2, 2)}},
		{IntegrationID: "b", PushCursor: 3, Attempts: []store.Attempt{newAttempt("b", 3, 1)}},
	}
	notFound, err := s.CommitDeliveries(ctx, commits)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(notFound, []int{1, 2}) {
		t.Errorf("not-found indexes = %v, want [1 2]", notFound)
	}
	if c := getIntegration(t, s, "a").PushCursor; c != 1 {
		t.Errorf("a: PushCursor = %d, want 1", c)
	}
	if c := getIntegration(t, s, "b").PushCursor; c != 3 {
		t.Errorf("b: PushCursor = %d, want 3", c)
	}
	for _, id := range []string{"a", "b"} {
		got, err := s.ListDeliveries(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Errorf("%s has %d attempts, want 1", id, len(got))
		}
	}
	_, err = s.ListDeliveries(ctx, "gone", 0)
	wantErr(t, "ListDeliveries(gone)", err, store.ErrNotFound)
}

// testCommitDeliveriesForeignAttempt checks that an attempt of another
// integration fails the whole group and writes nothing.
func testCommitDeliveriesForeignAttempt(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, fullIntegration("a"))
	createIntegration(t, s, fullIntegration("b"))
	commits := []store.DeliveryCommit{
		{IntegrationID: "a", PushCursor: 1, Attempts: []store.Attempt{newAttempt("a", 1, 1)}},
		{IntegrationID: "b", PushCursor: 2, Attempts: []store.Attempt{newAttempt("a", 2, 1)}},
	}
	if _, err := s.CommitDeliveries(ctx, commits); err == nil {
		t.Fatal("CommitDeliveries with an attempt of a in a commit for b succeeded, want an error")
	}
	if c := getIntegration(t, s, "a").PushCursor; c != 0 {
		t.Errorf("a: PushCursor = %d after a failed group, want 0", c)
	}
	got, err := s.ListDeliveries(ctx, "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("a has %d attempts after a failed group, want 0", len(got))
	}
}

func eventIDs(attempts []store.Attempt) []string {
	out := make([]string, len(attempts))
	for i, a := range attempts {
		out[i] = a.EventID
	}
	return out
}
