package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

func runIntegrations(t *testing.T, open opener) {
	subtest(t, "RoundTrip", open, testIntegrationRoundTrip)
	subtest(t, "DuplicateID", open, testIntegrationDuplicateID)
	subtest(t, "DuplicateName", open, testIntegrationDuplicateName)
	subtest(t, "List", open, testListIntegrations)
	subtest(t, "ByToken", open, testIntegrationByToken)
	subtest(t, "Delete", open, testDeleteIntegration)
	subtest(t, "UnknownIntegration", open, testUnknownIntegration)
	subtest(t, "RecordPull", open, testRecordPull)
}

func runDeliveries(t *testing.T, open opener) {
	subtest(t, "PushCursorNeverMovesBack", open, testPushCursorMonotonic)
	subtest(t, "RetryState", open, testRetryState)
	subtest(t, "LastErrorAndSuccess", open, testLastErrorAndSuccess)
	subtest(t, "ListNewestFirst", open, testListDeliveries)
	subtest(t, "ListLimits", open, testListDeliveriesLimits)
	subtest(t, "GroupCommit", open, testCommitDeliveries)
	subtest(t, "GroupCommitUnknownIntegration", open, testCommitDeliveriesNotFound)
	subtest(t, "GroupCommitForeignAttempt", open, testCommitDeliveriesForeignAttempt)
}

// fullIntegration sets every field of knowledge.Integration to a value
// other than its zero value.
func fullIntegration(id string) knowledge.Integration {
	return knowledge.Integration{
		ID:           id,
		Name:         "Support bot " + id,
		Pattern:      knowledge.PatternHybrid,
		Freshness:    15*time.Minute + 3*time.Nanosecond,
		PollInterval: 90 * time.Second,
		Lookups:      true,
		AcceptRisk:   true,
		Scope: knowledge.Scope{
			Collections: []string{"ops", "support"},
			Classes:     []knowledge.Class{knowledge.ClassPolicy, knowledge.ClassRunbook},
			Tags:        []string{"billing", "a<b&c"},
			Metadata:    map[string]string{"region": "eu", "tier": "gold \"plus\""},
		},
		Reasons:       []string{"policy changes must arrive within 15m", "the tool polls – every 90s"},
		WebhookURL:    "https://bot.example.test/hooks/khub?x=1&y=2",
		WebhookSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		TokenHash:     "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" + id,
		CreatedAt:     at(0),
	}
}

// createIntegration stores in and fails the test on error.
func createIntegration(t *testing.T, s store.Store, in knowledge.Integration) {
	t.Helper()
	if err := s.CreateIntegration(context.Background(), in); err != nil {
		t.Fatalf("CreateIntegration(%q): %v", in.ID, err)
	}
}

// getIntegration loads an integration and fails the test on error.
func getIntegration(t *testing.T, s store.Store, id string) store.IntegrationState {
	t.Helper()
	st, err := s.GetIntegration(context.Background(), id)
	if err != nil {
		t.Fatalf("GetIntegration(%q): %v", id, err)
	}
	return st
}

// wantIntegration compares every field of got with want, times by instant.
func wantIntegration(t *testing.T, name string, got, want knowledge.Integration) {
	t.Helper()
	wantTime(t, name+" CreatedAt", got.CreatedAt, want.CreatedAt)
	got.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s =\n%+v\nwant\n%+v", name, got, want)
	}
}

func testIntegrationRoundTrip(t *testing.T, s store.Store) {
	want := fullIntegration("bot")
	createIntegration(t, s, want)
	st := getIntegration(t, s, "bot")
	wantIntegration(t, "GetIntegration", st.Integration, want)

	// A new integration has made no progress.
	if st.PushCursor != 0 || st.PullCursor != 0 || st.PullSeen {
		t.Errorf("new integration progress = push %d, pull %d, seen %v; want 0, 0, false", st.PushCursor, st.PullCursor, st.PullSeen)
	}
	if st.Retry != (store.RetryState{}) {
		t.Errorf("new integration retry = %+v, want none", st.Retry)
	}
	if st.LastError != "" || !st.LastErrorAt.IsZero() || !st.LastSuccessAt.IsZero() || !st.LastPullAt.IsZero() {
		t.Errorf("new integration has status %q %v %v %v, want zero values", st.LastError, st.LastErrorAt, st.LastSuccessAt, st.LastPullAt)
	}

	// Zero and empty values come back as they went in.
	minimal := knowledge.Integration{ID: "minimal", Name: "Minimal", Pattern: knowledge.PatternPull, CreatedAt: at(1)}
	createIntegration(t, s, minimal)
	wantIntegration(t, "minimal integration", getIntegration(t, s, "minimal").Integration, minimal)

	empty := knowledge.Integration{ID: "empty", Name: "Empty", Pattern: knowledge.PatternPush, CreatedAt: at(2),
		Reasons: []string{}}
	empty.Scope.Normalize()
	createIntegration(t, s, empty)
	wantIntegration(t, "integration with empty collections", getIntegration(t, s, "empty").Integration, empty)
}

func testIntegrationDuplicateID(t *testing.T, s store.Store) {
	createIntegration(t, s, fullIntegration("bot"))
	again := fullIntegration("bot")
	again.Name = "Another"
	again.TokenHash = "other"
	err := s.CreateIntegration(context.Background(), again)
	wantErr(t, "CreateIntegration with a taken id", err, store.ErrConflict)
	if got := getIntegration(t, s, "bot").Name; got != "Support bot bot" {
		t.Errorf("name after a conflict = %q, want the first integration's", got)
	}
}

func testIntegrationDuplicateName(t *testing.T, s store.Store) {
	createIntegration(t, s, fullIntegration("bot"))
	again := fullIntegration("bot2")
	again.Name = "Support bot bot"
	err := s.CreateIntegration(context.Background(), again)
	wantErr(t, "CreateIntegration with a taken name", err, store.ErrConflict)
	if _, err := s.GetIntegration(context.Background(), "bot2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetIntegration after a name conflict: %v, want ErrNotFound", err)
	}
}

func testListIntegrations(t *testing.T, s store.Store) {
	ctx := context.Background()
	list, err := s.ListIntegrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Errorf("empty store lists %d integrations, want 0", len(list))
	}

	ids := []string{"c", "a", "b"}
	for _, id := range ids {
		createIntegration(t, s, fullIntegration(id))
	}
	if err := s.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: "a", PushCursor: 7}); err != nil {
		t.Fatal(err)
	}
	list, err = s.ListIntegrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range list {
		got = append(got, st.ID)
		wantIntegration(t, "listed "+st.ID, st.Integration, fullIntegration(st.ID))
		if st.ID == "a" && st.PushCursor != 7 {
			t.Errorf("listed a: PushCursor = %d, want 7", st.PushCursor)
		}
	}
	slices.Sort(got)
	if want := []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("listed ids = %v, want %v", got, want)
	}
}

func testIntegrationByToken(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, fullIntegration("bot"))
	other := fullIntegration("other")
	createIntegration(t, s, other)
	noToken := knowledge.Integration{ID: "push-only", Name: "Push only", Pattern: knowledge.PatternPush, CreatedAt: at(0)}
	createIntegration(t, s, noToken)

	st, err := s.GetIntegrationByToken(ctx, other.TokenHash)
	if err != nil {
		t.Fatalf("GetIntegrationByToken: %v", err)
	}
	if st.ID != "other" {
		t.Errorf("GetIntegrationByToken returned %q, want other", st.ID)
	}
	wantIntegration(t, "by token", st.Integration, other)

	_, err = s.GetIntegrationByToken(ctx, "0000000000000000000000000000000000000000000000000000000000000000")
	wantErr(t, "GetIntegrationByToken of an unknown hash", err, store.ErrNotFound)
	// An integration without a token must not match an empty hash.
	_, err = s.GetIntegrationByToken(ctx, "")
	wantErr(t, "GetIntegrationByToken of an empty hash", err, store.ErrNotFound)
}

func testDeleteIntegration(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, fullIntegration("bot"))
	createIntegration(t, s, fullIntegration("keep"))
	for _, id := range []string{"bot", "keep"} {
		err := s.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: id, PushCursor: 1,
			Attempts: []store.Attempt{newAttempt(id, 1, 1)}})
		if err != nil {
			t.Fatal(err)
		}
	}

	if err := s.DeleteIntegration(ctx, "bot"); err != nil {
		t.Fatalf("DeleteIntegration: %v", err)
	}
	_, err := s.GetIntegration(ctx, "bot")
	wantErr(t, "GetIntegration after delete", err, store.ErrNotFound)
	_, err = s.GetIntegrationByToken(ctx, fullIntegration("bot").TokenHash)
	wantErr(t, "GetIntegrationByToken after delete", err, store.ErrNotFound)
	err = s.DeleteIntegration(ctx, "bot")
	wantErr(t, "second DeleteIntegration", err, store.ErrNotFound)

	// A new integration with the same id starts without the old attempts.
	createIntegration(t, s, fullIntegration("bot"))
	attempts, err := s.ListDeliveries(ctx, "bot", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != 0 {
		t.Errorf("recreated integration has %d attempts, want 0", len(attempts))
	}
	if st := getIntegration(t, s, "bot"); st.PushCursor != 0 {
		t.Errorf("recreated integration PushCursor = %d, want 0", st.PushCursor)
	}
	attempts, err = s.ListDeliveries(ctx, "keep", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != 1 {
		t.Errorf("other integration has %d attempts after the delete, want 1", len(attempts))
	}
}

func testUnknownIntegration(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.GetIntegration(ctx, "nope")
	wantErr(t, "GetIntegration", err, store.ErrNotFound)
	err = s.DeleteIntegration(ctx, "nope")
	wantErr(t, "DeleteIntegration", err, store.ErrNotFound)
	err = s.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: "nope", PushCursor: 3,
		Attempts: []store.Attempt{newAttempt("nope", 3, 1)}})
	wantErr(t, "CommitDelivery", err, store.ErrNotFound)
	_, err = s.ListDeliveries(ctx, "nope", 0)
	wantErr(t, "ListDeliveries", err, store.ErrNotFound)
	err = s.RecordPull(ctx, "nope", 3, at(0))
	wantErr(t, "RecordPull", err, store.ErrNotFound)

	// The failed commit wrote no attempts for a later integration of that id.
	createIntegration(t, s, fullIntegration("nope"))
	attempts, err := s.ListDeliveries(ctx, "nope", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != 0 {
		t.Errorf("attempts of a rejected commit were stored: %d", len(attempts))
	}
}

func testRecordPull(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, fullIntegration("bot"))

	if err := s.RecordPull(ctx, "bot", 10, at(1)); err != nil {
		t.Fatal(err)
	}
	st := getIntegration(t, s, "bot")
	if st.PullCursor != 10 || !st.PullSeen {
		t.Errorf("after a pull to 10: cursor %d, seen %v; want 10, true", st.PullCursor, st.PullSeen)
	}
	wantTime(t, "LastPullAt", st.LastPullAt, at(1))

	if err := s.RecordPull(ctx, "bot", 4, at(2)); err != nil {
		t.Fatal(err)
	}
	st = getIntegration(t, s, "bot")
	if st.PullCursor != 10 {
		t.Errorf("a pull to 4 moved the cursor back to %d, want 10", st.PullCursor)
	}
	wantTime(t, "LastPullAt after an older cursor", st.LastPullAt, at(2))

	// A pull of an empty feed reads cursor 0 and still counts as seen.
	createIntegration(t, s, fullIntegration("fresh"))
	if err := s.RecordPull(ctx, "fresh", 0, at(3)); err != nil {
		t.Fatal(err)
	}
	if st := getIntegration(t, s, "fresh"); !st.PullSeen || st.PullCursor != 0 {
		t.Errorf("after a pull at 0: cursor %d, seen %v; want 0, true", st.PullCursor, st.PullSeen)
	}

	if err := s.RecordPull(ctx, "bot", 25, at(4)); err != nil {
		t.Fatal(err)
	}
	if st := getIntegration(t, s, "bot"); st.PullCursor != 25 {
		t.Errorf("after a pull to 25: cursor %d, want 25", st.PullCursor)
	}
}

// newAttempt returns a delivered first attempt of the change at cursor.
func newAttempt(integrationID string, cursor int64, attempt int) store.Attempt {
	return store.Attempt{
		IntegrationID: integrationID,
		EventID:       fmt.Sprintf("evt_%s_%d_%d", integrationID, cursor, attempt),
		Cursor:        cursor,
		ArticleID:     fmt.Sprintf("article%d", cursor),
		Version:       cursor + 100,
		Type:          knowledge.ChangeUpdated,
		Attempt:       attempt,
		StatusCode:    204,
		Latency:       1500*time.Microsecond + 7*time.Nanosecond,
		StartedAt:     at(int(cursor)),
		Outcome:       store.OutcomeDelivered,
	}
}

func testPushCursorMonotonic(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, fullIntegration("bot"))
	steps := []struct {
		commit, want int64
	}{
		{5, 5},
		{3, 5}, // smaller: ignored
		{0, 5}, // zero: left alone
		{9, 9},
		{9, 9},
	}
	for _, step := range steps {
		if err := s.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: "bot", PushCursor: step.commit}); err != nil {
			t.Fatal(err)
		}
		if got := getIntegration(t, s, "bot").PushCursor; got != step.want {
			t.Errorf("after a commit of %d: PushCursor = %d, want %d", step.commit, got, step.want)
		}
	}
}

func testRetryState(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, fullIntegration("bot"))

	retry := store.RetryState{Cursor: 12, Attempt: 3, DueAt: at(30)}
	failed := newAttempt("bot", 12, 3)
	failed.StatusCode = 503
	failed.Error = "server returned 503 Service Unavailable"
	failed.Outcome = store.OutcomeRetrying
	err := s.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: "bot", PushCursor: 11, Retry: retry,
		Attempts: []store.Attempt{failed}})
	if err != nil {
		t.Fatal(err)
	}
	st := getIntegration(t, s, "bot")
	if st.Retry.Cursor != 12 || st.Retry.Attempt != 3 {
		t.Errorf("retry = %+v, want cursor 12 attempt 3", st.Retry)
	}
	wantTime(t, "Retry.DueAt", st.Retry.DueAt, at(30))
	if st.PushCursor != 11 {
		t.Errorf("PushCursor = %d, want 11", st.PushCursor)
	}

	// The next commit replaces the retry state, here with none.
	if err := s.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: "bot", PushCursor: 12}); err != nil {
		t.Fatal(err)
	}
	st = getIntegration(t, s, "bot")
	if st.Retry.Cursor != 0 || st.Retry.Attempt != 0 || !st.Retry.DueAt.IsZero() {
		t.Errorf("retry after a clearing commit = %+v, want none", st.Retry)
	}
}

func testLastErrorAndSuccess(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, fullIntegration("bot"))
	commit := func(c store.DeliveryCommit) store.IntegrationState {
		t.Helper()
		c.IntegrationID = "bot"
		if err := s.CommitDelivery(ctx, c); err != nil {
			t.Fatal(err)
		}
		return getIntegration(t, s, "bot")
	}

	st := commit(store.DeliveryCommit{LastError: "connection refused", LastErrorAt: at(1)})
	if st.LastError != "connection refused" {
		t.Errorf("LastError = %q, want connection refused", st.LastError)
	}
	wantTime(t, "LastErrorAt", st.LastErrorAt, at(1))
	if !st.LastSuccessAt.IsZero() {
		t.Errorf("LastSuccessAt = %v, want zero", st.LastSuccessAt)
	}

	// A zero LastErrorAt leaves the stored error alone.
	st = commit(store.DeliveryCommit{LastSuccessAt: at(2)})
	if st.LastError != "connection refused" {
		t.Errorf("LastError after a success = %q, want it kept", st.LastError)
	}
	wantTime(t, "LastErrorAt after a success", st.LastErrorAt, at(1))
	wantTime(t, "LastSuccessAt", st.LastSuccessAt, at(2))

	// A zero LastSuccessAt leaves the stored success alone.
	st = commit(store.DeliveryCommit{LastError: "timed out", LastErrorAt: at(3)})
	if st.LastError != "timed out" {
		t.Errorf("LastError = %q, want timed out", st.LastError)
	}
	wantTime(t, "LastErrorAt", st.LastErrorAt, at(3))
	wantTime(t, "LastSuccessAt after an error", st.LastSuccessAt, at(2))
}

func testListDeliveries(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, fullIntegration("bot"))
	createIntegration(t, s, fullIntegration("other"))

	// Two commits: one with two attempts, then one with three.
	var all []store.Attempt
	for _, batch := range [][]int64{{1, 2}, {3, 4, 5}} {
		var attempts []store.Attempt
		for _, cursor := range batch {
			a := newAttempt("bot", cursor, 1)
			if cursor == 4 {
				a.StatusCode = 0
				a.Error = "dial tcp: connection refused"
				a.Outcome = store.OutcomeFailed
				a.Type = knowledge.ChangeArchived
			}
			attempts = append(attempts, a)
		}
		all = append(all, attempts...)
		if err := s.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: "bot", PushCursor: batch[len(batch)-1], Attempts: attempts}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: "other", Attempts: []store.Attempt{newAttempt("other", 9, 1)}}); err != nil {
		t.Fatal(err)
	}

	got, err := s.ListDeliveries(ctx, "bot", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(all) {
		t.Fatalf("ListDeliveries returned %d attempts, want %d", len(got), len(all))
	}
	ids := map[int64]bool{}
	for i, a := range got {
		want := all[len(all)-1-i]
		if ids[a.ID] {
			t.Errorf("attempt id %d is used twice", a.ID)
		}
		ids[a.ID] = true
		wantTime(t, fmt.Sprintf("attempt %d StartedAt", i), a.StartedAt, want.StartedAt)
		a.ID, a.StartedAt, want.StartedAt = 0, time.Time{}, time.Time{}
		if a != want {
			t.Errorf("attempt %d =\n%+v\nwant\n%+v", i, a, want)
		}
	}

	got, err = s.ListDeliveries(ctx, "bot", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Cursor != 5 || got[1].Cursor != 4 {
		t.Errorf("ListDeliveries with limit 2 = %d attempts starting at cursor %v, want cursors 5 and 4", len(got), cursorsOf(got))
	}
}

func cursorsOf(attempts []store.Attempt) []int64 {
	out := make([]int64, len(attempts))
	for i, a := range attempts {
		out[i] = a.Cursor
	}
	return out
}

func testListDeliveriesLimits(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, fullIntegration("bot"))
	var attempts []store.Attempt
	for i := range 1005 {
		attempts = append(attempts, newAttempt("bot", int64(i+1), 1))
	}
	if err := s.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: "bot", Attempts: attempts}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ limit, want int }{{0, 50}, {10, 10}, {1000, 1000}, {5000, 1000}} {
		got, err := s.ListDeliveries(ctx, "bot", tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tc.want {
			t.Errorf("ListDeliveries(limit %d) returned %d attempts, want %d", tc.limit, len(got), tc.want)
		}
		if len(got) > 0 && got[0].Cursor != 1005 {
			t.Errorf("ListDeliveries(limit %d) starts at cursor %d, want the newest, 1005", tc.limit, got[0].Cursor)
		}
	}
}
