package storetest

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

func runDeliveryControls(t *testing.T, open opener) {
	subtest(t, "SettingsRoundTrip", open, testDeliverySettingsRoundTrip)
	subtest(t, "State", open, testDeliveryState)
	subtest(t, "RotateSecret", open, testRotateSecret)
	subtest(t, "RetrySince", open, testRetrySince)
	subtest(t, "QueryFilters", open, testQueryDeliveries)
	subtest(t, "QueryLimits", open, testQueryDeliveriesLimits)
	subtest(t, "QueryUnknownIntegration", open, testQueryDeliveriesUnknown)
}

// fullDeliverySettings sets every field of knowledge.DeliverySettings to a
// value other than its zero value and its default.
func fullDeliverySettings() knowledge.DeliverySettings {
	return knowledge.DeliverySettings{
		InitialBackoff: 250*time.Millisecond + 1*time.Nanosecond,
		MaxBackoff:     10 * time.Minute,
		RetryFor:       36 * time.Hour,
		Timeout:        7 * time.Second,
		BatchSize:      25,
		Coalesce:       true,
		RateLimit:      2.5,
		PauseAfter:     4,
		ProbeEvery:     30 * time.Second,
	}
}

func testDeliverySettingsRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	want := fullIntegration("bot")
	want.Delivery = fullDeliverySettings()
	createIntegration(t, s, want)
	// An integration without settings keeps the zero value, which means
	// every default.
	createIntegration(t, s, fullIntegration("plain"))

	wantIntegration(t, "GetIntegration", getIntegration(t, s, "bot").Integration, want)
	byToken, err := s.GetIntegrationByToken(ctx, want.TokenHash)
	if err != nil {
		t.Fatalf("GetIntegrationByToken: %v", err)
	}
	wantIntegration(t, "GetIntegrationByToken", byToken.Integration, want)

	list, err := s.ListIntegrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("ListIntegrations returned %d integrations, want 2", len(list))
	}
	for _, st := range list {
		switch st.ID {
		case "bot":
			wantIntegration(t, "listed bot", st.Integration, want)
		case "plain":
			if st.Delivery != (knowledge.DeliverySettings{}) {
				t.Errorf("listed plain: Delivery = %+v, want the zero value", st.Delivery)
			}
		default:
			t.Errorf("ListIntegrations returned unknown integration %q", st.ID)
		}
	}
}

// wantState fails the test unless the integration's delivery state, reason
// and time are the expected ones. An empty state counts as active.
func wantState(t *testing.T, name string, st store.IntegrationState, state knowledge.DeliveryState, reason string, since time.Time) {
	t.Helper()
	got := st.State
	if got == "" {
		got = knowledge.StateActive
	}
	if got != state {
		t.Errorf("%s: State = %q, want %q", name, st.State, state)
	}
	if st.StateReason != reason {
		t.Errorf("%s: StateReason = %q, want %q", name, st.StateReason, reason)
	}
	wantTime(t, name+": StateSince", st.StateSince, since)
}

func testDeliveryState(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, fullIntegration("bot"))
	createIntegration(t, s, fullIntegration("other"))
	wantState(t, "new integration", getIntegration(t, s, "bot"), knowledge.StateActive, "", time.Time{})

	steps := []struct {
		state  knowledge.DeliveryState
		reason string
		minute int
	}{
		{knowledge.StatePaused, "10 failed attempts in a row", 5},
		{knowledge.StateDisabled, "the webhook answered 410 Gone", 6},
		{knowledge.StateActive, "", 7},
	}
	for _, step := range steps {
		if err := s.SetDeliveryState(ctx, "bot", step.state, step.reason, at(step.minute)); err != nil {
			t.Fatalf("SetDeliveryState(%q): %v", step.state, err)
		}
		wantState(t, "after SetDeliveryState("+string(step.state)+")", getIntegration(t, s, "bot"),
			step.state, step.reason, at(step.minute))
	}

	// Every integration read returns the state, and SetDeliveryState changes
	// one integration only.
	if err := s.SetDeliveryState(ctx, "bot", knowledge.StatePaused, "probing", at(8)); err != nil {
		t.Fatal(err)
	}
	byToken, err := s.GetIntegrationByToken(ctx, fullIntegration("bot").TokenHash)
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, "by token", byToken, knowledge.StatePaused, "probing", at(8))
	list, err := s.ListIntegrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range list {
		if st.ID == "bot" {
			wantState(t, "listed bot", st, knowledge.StatePaused, "probing", at(8))
		} else {
			wantState(t, "listed "+st.ID, st, knowledge.StateActive, "", time.Time{})
		}
	}

	err = s.SetDeliveryState(ctx, "nope", knowledge.StatePaused, "x", at(9))
	wantErr(t, "SetDeliveryState of an unknown integration", err, store.ErrNotFound)
}

func testRotateSecret(t *testing.T, s store.Store) {
	ctx := context.Background()
	in := fullIntegration("bot")
	createIntegration(t, s, in)
	st := getIntegration(t, s, "bot")
	if st.PreviousSecret != "" || !st.PreviousSecretUntil.IsZero() {
		t.Errorf("new integration: previous secret %q until %v, want none", st.PreviousSecret, st.PreviousSecretUntil)
	}

	const first, second = "whsec_Zmlyc3Qgcm90YXRlZCBzZWNyZXQ=", "whsec_c2Vjb25kIHJvdGF0ZWQgc2VjcmV0"
	if err := s.RotateSecret(ctx, "bot", first, at(60)); err != nil {
		t.Fatalf("RotateSecret: %v", err)
	}
	st = getIntegration(t, s, "bot")
	if st.WebhookSecret != first {
		t.Errorf("after a rotation: WebhookSecret = %q, want %q", st.WebhookSecret, first)
	}
	if st.PreviousSecret != in.WebhookSecret {
		t.Errorf("after a rotation: PreviousSecret = %q, want the original %q", st.PreviousSecret, in.WebhookSecret)
	}
	wantTime(t, "after a rotation: PreviousSecretUntil", st.PreviousSecretUntil, at(60))
	if st.TokenHash != in.TokenHash || st.WebhookURL != in.WebhookURL {
		t.Errorf("a rotation changed the token hash or webhook URL: %q %q", st.TokenHash, st.WebhookURL)
	}

	// A second rotation replaces the previous secret and its expiry.
	if err := s.RotateSecret(ctx, "bot", second, at(90)); err != nil {
		t.Fatalf("second RotateSecret: %v", err)
	}
	st = getIntegration(t, s, "bot")
	if st.WebhookSecret != second {
		t.Errorf("after a second rotation: WebhookSecret = %q, want %q", st.WebhookSecret, second)
	}
	if st.PreviousSecret != first {
		t.Errorf("after a second rotation: PreviousSecret = %q, want %q", st.PreviousSecret, first)
	}
	wantTime(t, "after a second rotation: PreviousSecretUntil", st.PreviousSecretUntil, at(90))

	list, err := s.ListIntegrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].PreviousSecret != first || !list[0].PreviousSecretUntil.Equal(at(90)) {
		t.Errorf("ListIntegrations does not return the previous secret and its expiry: %+v", list)
	}

	err = s.RotateSecret(ctx, "nope", first, at(60))
	wantErr(t, "RotateSecret of an unknown integration", err, store.ErrNotFound)
}

func testRetrySince(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, fullIntegration("bot"))

	retry := store.RetryState{Cursor: 12, Attempt: 2, DueAt: at(30), Since: at(10)}
	if err := s.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: "bot", PushCursor: 11, Retry: retry}); err != nil {
		t.Fatal(err)
	}
	st := getIntegration(t, s, "bot")
	wantTime(t, "Retry.Since", st.Retry.Since, at(10))
	wantTime(t, "Retry.DueAt", st.Retry.DueAt, at(30))

	// The dispatcher passes Since on with each later attempt at the same
	// change, and the store keeps it.
	retry.Attempt, retry.DueAt = 3, at(40)
	if err := s.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: "bot", Retry: retry}); err != nil {
		t.Fatal(err)
	}
	st = getIntegration(t, s, "bot")
	wantTime(t, "Retry.Since after another attempt", st.Retry.Since, at(10))
	if st.Retry.Attempt != 3 {
		t.Errorf("Retry.Attempt = %d, want 3", st.Retry.Attempt)
	}

	// A commit without a retry clears Since with the rest of the state.
	if err := s.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: "bot", PushCursor: 12}); err != nil {
		t.Fatal(err)
	}
	if st := getIntegration(t, s, "bot"); st.Retry != (store.RetryState{}) {
		t.Errorf("retry after a clearing commit = %+v, want none", st.Retry)
	}
}

// queryCursors runs QueryDeliveries and returns the cursors of the
// attempts, in the order returned.
func queryCursors(t *testing.T, s store.Store, integrationID string, f store.DeliveryFilter) []int64 {
	t.Helper()
	got, err := s.QueryDeliveries(context.Background(), integrationID, f)
	if err != nil {
		t.Fatalf("QueryDeliveries(%q, %+v): %v", integrationID, f, err)
	}
	return cursorsOf(got)
}

func testQueryDeliveries(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, fullIntegration("bot"))
	createIntegration(t, s, fullIntegration("other"))

	// Six attempts, one a minute from at(1), alternating between two
	// articles, with every outcome.
	outcomes := []string{
		store.OutcomeDelivered, store.OutcomeRetrying, store.OutcomeFailed,
		store.OutcomeDelivered, store.OutcomeRetrying, store.OutcomeDelivered,
	}
	var all []store.Attempt
	for i, outcome := range outcomes {
		cursor := int64(i + 1)
		a := newAttempt("bot", cursor, 1)
		a.ArticleID = "alpha"
		if cursor%2 == 0 {
			a.ArticleID = "beta"
		}
		a.Outcome = outcome
		if outcome != store.OutcomeDelivered {
			a.StatusCode = 503
			a.Error = "server returned 503 Service Unavailable"
		}
		all = append(all, a)
	}
	if err := s.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: "bot", Attempts: all}); err != nil {
		t.Fatal(err)
	}
	// Another integration's attempt at the same article and time must not
	// match.
	foreign := newAttempt("other", 3, 1)
	foreign.ArticleID = "alpha"
	if err := s.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: "other", Attempts: []store.Attempt{foreign}}); err != nil {
		t.Fatal(err)
	}

	// Every field of a returned attempt is the stored one.
	got, err := s.QueryDeliveries(ctx, "bot", store.DeliveryFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(all) {
		t.Fatalf("QueryDeliveries without a filter returned %d attempts, want %d", len(got), len(all))
	}
	for i, a := range got {
		want := all[len(all)-1-i]
		wantTime(t, "attempt StartedAt", a.StartedAt, want.StartedAt)
		a.ID, a.StartedAt, want.StartedAt = 0, time.Time{}, time.Time{}
		if !reflect.DeepEqual(a, want) {
			t.Errorf("attempt %d =\n%+v\nwant\n%+v", i, a, want)
		}
	}

	// A zone other than UTC must select by instant.
	plusTwo := time.FixedZone("UTC+2", 2*60*60)
	cases := []struct {
		name   string
		filter store.DeliveryFilter
		want   []int64
	}{
		{"no filter", store.DeliveryFilter{}, []int64{6, 5, 4, 3, 2, 1}},
		{"delivered", store.DeliveryFilter{Outcome: store.OutcomeDelivered}, []int64{6, 4, 1}},
		{"failed", store.DeliveryFilter{Outcome: store.OutcomeFailed}, []int64{3}},
		{"article alpha", store.DeliveryFilter{ArticleID: "alpha"}, []int64{5, 3, 1}},
		{"article beta, limit 1", store.DeliveryFilter{ArticleID: "beta", Limit: 1}, []int64{6}},
		{"unknown article", store.DeliveryFilter{ArticleID: "gamma"}, []int64{}},
		{"outcome and article", store.DeliveryFilter{Outcome: store.OutcomeRetrying, ArticleID: "alpha"}, []int64{5}},
		{"since and until", store.DeliveryFilter{Since: at(2), Until: at(5)}, []int64{4, 3, 2}},
		{"since only", store.DeliveryFilter{Since: at(5)}, []int64{6, 5}},
		{"until only", store.DeliveryFilter{Until: at(2)}, []int64{1}},
		{"bounds in another zone", store.DeliveryFilter{Since: at(2).In(plusTwo), Until: at(4).In(plusTwo)}, []int64{3, 2}},
		{"bounds one microsecond apart", store.DeliveryFilter{Since: at(3), Until: at(3).Add(time.Microsecond)}, []int64{3}},
		{"empty range", store.DeliveryFilter{Since: at(3), Until: at(3)}, []int64{}},
		{"every filter", store.DeliveryFilter{Outcome: store.OutcomeDelivered, ArticleID: "beta", Since: at(3), Until: at(7)}, []int64{6, 4}},
		{"limit 2", store.DeliveryFilter{Limit: 2}, []int64{6, 5}},
	}
	for _, tc := range cases {
		if got := queryCursors(t, s, "bot", tc.filter); !slices.Equal(got, tc.want) {
			t.Errorf("QueryDeliveries, %s: cursors %v, want %v", tc.name, got, tc.want)
		}
	}
}

func testQueryDeliveriesLimits(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, fullIntegration("bot"))
	var attempts []store.Attempt
	for i := range 1005 {
		a := newAttempt("bot", int64(i+1), 1)
		a.ArticleID = "alpha"
		attempts = append(attempts, a)
	}
	if err := s.CommitDelivery(ctx, store.DeliveryCommit{IntegrationID: "bot", Attempts: attempts}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ limit, want int }{{0, 50}, {-1, 50}, {10, 10}, {1000, 1000}, {5000, 1000}} {
		got := queryCursors(t, s, "bot", store.DeliveryFilter{ArticleID: "alpha", Limit: tc.limit})
		if len(got) != tc.want {
			t.Errorf("QueryDeliveries(limit %d) returned %d attempts, want %d", tc.limit, len(got), tc.want)
		}
		if len(got) > 0 && got[0] != 1005 {
			t.Errorf("QueryDeliveries(limit %d) starts at cursor %d, want the newest, 1005", tc.limit, got[0])
		}
	}
}

func testQueryDeliveriesUnknown(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.QueryDeliveries(ctx, "nope", store.DeliveryFilter{})
	wantErr(t, "QueryDeliveries of an unknown integration", err, store.ErrNotFound)
	_, err = s.QueryDeliveries(ctx, "nope", store.DeliveryFilter{ArticleID: "alpha", Outcome: store.OutcomeFailed})
	wantErr(t, "QueryDeliveries of an unknown integration with filters", err, store.ErrNotFound)

	// A known integration without attempts is not an error.
	createIntegration(t, s, fullIntegration("bot"))
	got, err := s.QueryDeliveries(ctx, "bot", store.DeliveryFilter{})
	if err != nil {
		t.Fatalf("QueryDeliveries of an integration without attempts: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("QueryDeliveries of an integration without attempts returned %d attempts, want 0", len(got))
	}
}
