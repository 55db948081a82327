package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/store"
)

func runStaleness(t *testing.T, open opener) {
	subtest(t, "MergeKeepsWorst", open, testStalenessMergeKeepsWorst)
	subtest(t, "UnknownIntegrationDropped", open, testStalenessUnknownDropped)
	subtest(t, "SeriesSteps", open, testStalenessSeriesSteps)
	subtest(t, "SeriesInvalidStep", open, testStalenessSeriesInvalidStep)
	subtest(t, "Summary", open, testStalenessSummary)
	subtest(t, "Prune", open, testStalenessPrune)
	subtest(t, "DeletedWithIntegration", open, testStalenessDeleted)
}

// sample returns a sample of integration id at baseTime plus offset.
func sample(id string, offset, staleness time.Duration, within bool) store.StalenessSample {
	return store.StalenessSample{IntegrationID: id, At: baseTime.Add(offset), Staleness: staleness, WithinWindow: within}
}

// record calls RecordStaleness and fails the test on error.
func record(t *testing.T, s store.Store, samples ...store.StalenessSample) {
	t.Helper()
	if err := s.RecordStaleness(context.Background(), samples); err != nil {
		t.Fatalf("RecordStaleness(%d samples): %v", len(samples), err)
	}
}

// series calls StalenessSeries and fails the test on error.
func series(t *testing.T, s store.Store, id string, since, until time.Time, step time.Duration) []store.StalenessSample {
	t.Helper()
	out, err := s.StalenessSeries(context.Background(), id, since, until, step)
	if err != nil {
		t.Fatalf("StalenessSeries(%q, step %v): %v", id, step, err)
	}
	return out
}

// wantSamples compares samples by time, staleness and within window.
func wantSamples(t *testing.T, name string, got, want []store.StalenessSample) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d samples %+v, want %d %+v", name, len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.IntegrationID != w.IntegrationID {
			t.Errorf("%s[%d].IntegrationID = %q, want %q", name, i, g.IntegrationID, w.IntegrationID)
		}
		wantTime(t, name+" At", g.At, w.At)
		if g.Staleness != w.Staleness {
			t.Errorf("%s[%d].Staleness = %v, want %v", name, i, g.Staleness, w.Staleness)
		}
		if g.WithinWindow != w.WithinWindow {
			t.Errorf("%s[%d].WithinWindow = %v, want %v", name, i, g.WithinWindow, w.WithinWindow)
		}
	}
}

func testStalenessMergeKeepsWorst(t *testing.T, s store.Store) {
	createIntegration(t, s, fullIntegration("int-a"))
	createIntegration(t, s, fullIntegration("int-b"))

	// Three nodes sample the same bucket of int-a: the worst staleness and
	// any outside reading win, whatever the order.
	record(t, s, sample("int-a", 0, 5*time.Second, true), sample("int-b", 0, time.Second, true))
	record(t, s, sample("int-a", 0, 20*time.Minute+7*time.Nanosecond, false))
	record(t, s, sample("int-a", 0, 3*time.Second, true))
	// Two samples of one bucket in one call merge as well.
	record(t, s, sample("int-b", time.Minute, 2*time.Second, true), sample("int-b", time.Minute, 4*time.Second, true))

	got := series(t, s, "int-a", baseTime, baseTime.Add(time.Hour), time.Microsecond)
	wantSamples(t, "int-a", got, []store.StalenessSample{sample("int-a", 0, 20*time.Minute+7*time.Nanosecond, false)})

	got = series(t, s, "int-b", baseTime, baseTime.Add(time.Hour), time.Microsecond)
	wantSamples(t, "int-b", got, []store.StalenessSample{
		sample("int-b", 0, time.Second, true),
		sample("int-b", time.Minute, 4*time.Second, true),
	})
}

func testStalenessUnknownDropped(t *testing.T, s store.Store) {
	createIntegration(t, s, fullIntegration("int-a"))
	record(t, s, sample("int-gone", 0, time.Second, true), sample("int-a", 0, 2*time.Second, true))
	record(t, s) // An empty batch does nothing.

	got := series(t, s, "int-a", baseTime, baseTime.Add(time.Hour), time.Minute)
	wantSamples(t, "int-a", got, []store.StalenessSample{sample("int-a", 0, 2*time.Second, true)})
	if got := series(t, s, "int-gone", baseTime, baseTime.Add(time.Hour), time.Minute); len(got) != 0 {
		t.Errorf("unknown integration has %d samples, want 0", len(got))
	}
}

func testStalenessSeriesSteps(t *testing.T, s store.Store) {
	createIntegration(t, s, fullIntegration("int-a"))
	record(t, s,
		sample("int-a", -15*time.Second, time.Hour, false), // before since
		sample("int-a", 0, 10*time.Second, true),
		sample("int-a", 15*time.Second, 40*time.Second, true),
		sample("int-a", 30*time.Second, 20*time.Second, false),
		sample("int-a", 75*time.Second, 5*time.Second, true),
		sample("int-a", 150*time.Second, 6*time.Second, true),
		sample("int-a", 180*time.Second, time.Hour, false), // at until
	)
	since, until := baseTime, baseTime.Add(3*time.Minute)

	// One-minute steps: the first holds three samples, the second one, and
	// the third one; until is exclusive and since inclusive.
	got := series(t, s, "int-a", since, until, time.Minute)
	wantSamples(t, "1m steps", got, []store.StalenessSample{
		sample("int-a", 0, 40*time.Second, false),
		sample("int-a", time.Minute, 5*time.Second, true),
		sample("int-a", 2*time.Minute, 6*time.Second, true),
	})

	// Steps start at since, not at a round time, and steps without samples
	// are left out.
	got = series(t, s, "int-a", since.Add(10*time.Second), until, 50*time.Second)
	wantSamples(t, "50s steps from since+10s", got, []store.StalenessSample{
		sample("int-a", 10*time.Second, 40*time.Second, false),
		sample("int-a", 60*time.Second, 5*time.Second, true),
		sample("int-a", 110*time.Second, 6*time.Second, true),
	})

	// A step shorter than the sampling gives every sample on its own.
	got = series(t, s, "int-a", since, until, time.Second)
	times := make([]time.Duration, len(got))
	for i, g := range got {
		times[i] = g.At.Sub(baseTime)
	}
	want := []time.Duration{0, 15 * time.Second, 30 * time.Second, 75 * time.Second, 150 * time.Second}
	if !slices.Equal(times, want) {
		t.Errorf("1s steps at %v after since, want %v", times, want)
	}
}

func testStalenessSeriesInvalidStep(t *testing.T, s store.Store) {
	createIntegration(t, s, fullIntegration("int-a"))
	for _, step := range []time.Duration{0, -time.Second, 999 * time.Nanosecond} {
		if _, err := s.StalenessSeries(context.Background(), "int-a", baseTime, baseTime.Add(time.Hour), step); err == nil {
			t.Errorf("StalenessSeries with step %v succeeded, want an error", step)
		}
	}
}

func testStalenessSummary(t *testing.T, s store.Store) {
	createIntegration(t, s, fullIntegration("int-a"))
	createIntegration(t, s, fullIntegration("int-b"))
	now := baseTime.Add(48 * time.Hour)
	ago := func(d time.Duration) time.Duration { return 48*time.Hour - d }
	record(t, s,
		sample("int-a", ago(25*time.Hour), 9*time.Hour, false), // older than a day
		sample("int-a", ago(24*time.Hour), 100*time.Second, false),
		sample("int-a", ago(2*time.Hour), 70*time.Second, true),
		sample("int-a", ago(time.Hour), 50*time.Second, false),
		sample("int-a", ago(10*time.Minute), 5*time.Second, true),
		sample("int-a", ago(0), 1*time.Second, true),
		sample("int-a", ago(-time.Minute), 8*time.Hour, false), // after now
		sample("int-b", ago(time.Minute), time.Hour, false),
	)

	sum, err := s.SummarizeStaleness(context.Background(), "int-a", now)
	if err != nil {
		t.Fatalf("SummarizeStaleness: %v", err)
	}
	if sum.WorstHour != 50*time.Second {
		t.Errorf("WorstHour = %v, want 50s", sum.WorstHour)
	}
	if sum.WorstDay != 100*time.Second {
		t.Errorf("WorstDay = %v, want 100s", sum.WorstDay)
	}
	if sum.DaySamples != 5 {
		t.Errorf("DaySamples = %d, want 5", sum.DaySamples)
	}
	if sum.DayWithin != 3 {
		t.Errorf("DayWithin = %d, want 3", sum.DayWithin)
	}

	empty, err := s.SummarizeStaleness(context.Background(), "int-none", now)
	if err != nil {
		t.Fatalf("SummarizeStaleness of an integration without samples: %v", err)
	}
	if empty != (store.StalenessSummary{}) {
		t.Errorf("summary without samples = %+v, want zero", empty)
	}
}

func testStalenessPrune(t *testing.T, s store.Store) {
	createIntegration(t, s, fullIntegration("int-a"))
	createIntegration(t, s, fullIntegration("int-b"))
	record(t, s,
		sample("int-a", 0, time.Second, true),
		sample("int-b", time.Minute, time.Second, true),
		sample("int-a", 2*time.Minute, 2*time.Second, true),
	)
	n, err := s.PruneStaleness(context.Background(), baseTime.Add(2*time.Minute))
	if err != nil {
		t.Fatalf("PruneStaleness: %v", err)
	}
	if n != 2 {
		t.Errorf("PruneStaleness deleted %d samples, want 2", n)
	}
	got := series(t, s, "int-a", baseTime, baseTime.Add(time.Hour), time.Second)
	wantSamples(t, "int-a after prune", got, []store.StalenessSample{sample("int-a", 2*time.Minute, 2*time.Second, true)})
}

func testStalenessDeleted(t *testing.T, s store.Store) {
	createIntegration(t, s, fullIntegration("int-a"))
	record(t, s, sample("int-a", 0, time.Second, true))
	if err := s.DeleteIntegration(context.Background(), "int-a"); err != nil {
		t.Fatalf("DeleteIntegration: %v", err)
	}
	createIntegration(t, s, fullIntegration("int-a"))
	if got := series(t, s, "int-a", baseTime, baseTime.Add(time.Hour), time.Second); len(got) != 0 {
		t.Errorf("integration created again with a deleted one's id has %d samples, want 0", len(got))
	}
}
