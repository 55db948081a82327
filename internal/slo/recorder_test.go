package slo

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/khub-dev/khub/internal/changelog"
	"github.com/khub-dev/khub/internal/freshness"
	"github.com/khub-dev/khub/internal/hub"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/sqlite"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable time source shared by the hub and the recorder.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// logBuffer collects log output from concurrent goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fixture is a SQLite store with one pull integration, "int-a" named
// "helpdesk", with a 10-minute window, one article committed at t0, and a
// recorder over it with a 15s interval.
type fixture struct {
	t     *testing.T
	st    store.Store
	hub   *hub.Hub
	clock *clock
	rec   *Recorder
	reg   *prometheus.Registry
	logs  *logBuffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "khub.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, st: st, clock: &clock{now: t0}, reg: prometheus.NewRegistry(), logs: &logBuffer{}}
	f.hub = &hub.Hub{Store: st, Wake: &changelog.Broadcaster{}, Now: f.clock.Now}
	f.rec = f.newRecorder(NewMetrics(f.reg))

	in := knowledge.Integration{ID: "int-a", Name: "helpdesk", Pattern: knowledge.PatternPull, Freshness: 10 * time.Minute, CreatedAt: t0, TokenHash: "h"}
	in.Scope.Normalize()
	if err := st.CreateIntegration(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	a := knowledge.Article{ID: "runbook", Title: "Runbook", Body: "Restart it.", Collection: "handbook", Class: knowledge.ClassRunbook}
	a.Normalize()
	if _, err := st.SaveArticle(context.Background(), a, store.SaveOptions{Now: t0}); err != nil {
		t.Fatal(err)
	}
	return f
}

// newRecorder returns another recorder over the fixture's hub, as a second
// node sharing the store would run.
func (f *fixture) newRecorder(m *Metrics) *Recorder {
	logger := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return New(f.hub, Config{Interval: 15 * time.Second, Retention: time.Hour, Metrics: m, Logger: logger, Now: f.clock.Now})
}

// sampleAt sets the clock to t0 plus offset and runs one round of rec.
func (f *fixture) sampleAt(rec *Recorder, offset time.Duration) {
	f.t.Helper()
	f.clock.set(t0.Add(offset))
	if err := rec.sample(context.Background()); err != nil {
		f.t.Fatalf("sample at t0+%v: %v", offset, err)
	}
}

// alert returns the alert article of int-a, or ok false when there is none.
func (f *fixture) alert() (knowledge.Article, bool) {
	f.t.Helper()
	a, exists, err := f.rec.readAlert(context.Background(), "int-a")
	if err != nil {
		f.t.Fatalf("read alert: %v", err)
	}
	return a, exists
}

// catchUp records that int-a read the whole change feed.
func (f *fixture) catchUp() {
	f.t.Helper()
	head, err := f.st.HeadCursor(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.RecordPull(context.Background(), "int-a", head, f.clock.Now()); err != nil {
		f.t.Fatal(err)
	}
}

// gauge returns the value of int-a's series of the recorder gauge named by
// its Metrics field, or -1 when it has none.
func (f *fixture) gauge(field string) float64 {
	f.t.Helper()
	name := map[string]string{
		"alerting":  "khub_integration_alerting",
		"staleness": "khub_integration_staleness_seconds",
		"window":    "khub_integration_freshness_window_seconds",
	}[field]
	families, err := f.reg.Gather()
	if err != nil {
		f.t.Fatalf("gather: %v", err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "integration_id" && l.GetValue() == "int-a" {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

// seriesCount returns the number of series in the fixture's registry.
func (f *fixture) seriesCount() int {
	f.t.Helper()
	families, err := f.reg.Gather()
	if err != nil {
		f.t.Fatalf("gather: %v", err)
	}
	n := 0
	for _, fam := range families {
		n += len(fam.GetMetric())
	}
	return n
}

func TestAlertNeedsTwoSamples(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.sampleAt(f.rec, 5*time.Minute)
	f.sampleAt(f.rec, 11*time.Minute) // first sample outside the window
	if _, ok := f.alert(); ok {
		t.Fatal("alert written after one sample outside the window, want two samples")
	}
	if got := f.gauge("alerting"); got != 0 {
		t.Errorf("khub_integration_alerting after one sample outside = %v, want 0", got)
	}

	f.sampleAt(f.rec, 11*time.Minute+15*time.Second)
	a, ok := f.alert()
	if !ok {
		t.Fatal("no alert after two samples outside the window")
	}
	if a.ID != "alert-int-a" || a.Collection != knowledge.OpsCollection || a.Class != knowledge.ClassOperations {
		t.Errorf("alert article is %s in %s/%s, want alert-int-a in %s/%s", a.ID, a.Collection, a.Class, knowledge.OpsCollection, knowledge.ClassOperations)
	}
	if !slices.Contains(a.Tags, AlertTag) {
		t.Errorf("alert tags = %v, want %q among them", a.Tags, AlertTag)
	}
	wantMeta := map[string]string{
		"event":             EventRaised,
		"integration_id":    "int-a",
		"integration":       "helpdesk",
		"staleness_seconds": "675.000",
		"window_seconds":    "600.000",
	}
	for k, want := range wantMeta {
		if got := a.Metadata[k]; got != want {
			t.Errorf("alert metadata %s = %q, want %q", k, got, want)
		}
	}
	if !strings.Contains(a.Body, "helpdesk (int-a)") || !strings.Contains(a.Body, "11m15s") {
		t.Errorf("alert body lacks the integration or its staleness:\n%s", a.Body)
	}
	if got := f.gauge("alerting"); got != 1 {
		t.Errorf("khub_integration_alerting while raised = %v, want 1", got)
	}
	logs := f.logs.String()
	for _, key := range []string{"level=WARN", `msg="freshness alert raised"`, "integration_id=int-a", "name=helpdesk", "staleness=11m15s"} {
		if !strings.Contains(logs, key) {
			t.Errorf("logs lack %s:\n%s", key, logs)
		}
	}

	// Further samples outside the window write nothing.
	f.sampleAt(f.rec, 11*time.Minute+30*time.Second)
	if again, _ := f.alert(); again.Version != a.Version {
		t.Errorf("alert version moved from %d to %d while the alert stayed raised", a.Version, again.Version)
	}
}

func TestAlertClearsAfterTwoSamples(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.sampleAt(f.rec, 11*time.Minute)
	f.sampleAt(f.rec, 11*time.Minute+15*time.Second)
	raised, ok := f.alert()
	if !ok {
		t.Fatal("no alert after two samples outside the window")
	}

	f.catchUp()
	f.sampleAt(f.rec, 12*time.Minute)
	if a, _ := f.alert(); a.Version != raised.Version {
		t.Fatalf("alert changed to version %d (%s) after one sample within the window, want two samples", a.Version, a.Metadata["event"])
	}
	f.sampleAt(f.rec, 12*time.Minute+15*time.Second)
	cleared, _ := f.alert()
	if cleared.Version != raised.Version+1 {
		t.Fatalf("alert version = %d after two samples within, want %d", cleared.Version, raised.Version+1)
	}
	if got := cleared.Metadata["event"]; got != EventCleared {
		t.Errorf("alert event = %q, want %q", got, EventCleared)
	}
	if got := f.gauge("alerting"); got != 0 {
		t.Errorf("khub_integration_alerting after clearing = %v, want 0", got)
	}
	if !strings.Contains(f.logs.String(), `msg="freshness alert cleared"`) {
		t.Errorf("logs lack the cleared alert:\n%s", f.logs.String())
	}
}

func TestAlertFlappingSampleIgnored(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// Outside, within, outside: never two in a row, so no alert.
	f.sampleAt(f.rec, 11*time.Minute)
	f.catchUp()
	f.sampleAt(f.rec, 11*time.Minute+15*time.Second)
	a := knowledge.Article{ID: "runbook-2", Title: "Second", Body: "Later.", Collection: "handbook", Class: knowledge.ClassRunbook}
	a.Normalize()
	if _, err := f.st.SaveArticle(context.Background(), a, store.SaveOptions{Now: t0}); err != nil {
		t.Fatal(err)
	}
	f.sampleAt(f.rec, 11*time.Minute+30*time.Second)
	if _, ok := f.alert(); ok {
		t.Error("alert raised by samples that alternate around the window")
	}
}

func TestAlertWrittenOnceByTwoNodes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	other := f.newRecorder(nil)
	for _, offset := range []time.Duration{11 * time.Minute, 11*time.Minute + 15*time.Second, 11*time.Minute + 30*time.Second} {
		f.sampleAt(f.rec, offset)
		f.sampleAt(other, offset)
	}
	a, ok := f.alert()
	if !ok || a.Version != 1 {
		t.Fatalf("alert after two nodes raised it: version %d (exists %v), want version 1", a.Version, ok)
	}

	// The other node clears it; the first then finds it cleared.
	f.catchUp()
	for _, offset := range []time.Duration{12 * time.Minute, 12*time.Minute + 15*time.Second} {
		f.sampleAt(other, offset)
	}
	f.sampleAt(f.rec, 12*time.Minute+20*time.Second)
	f.sampleAt(f.rec, 12*time.Minute+35*time.Second)
	a, _ = f.alert()
	if a.Version != 2 || a.Metadata["event"] != EventCleared {
		t.Errorf("alert after two nodes cleared it: version %d event %q, want version 2 %q", a.Version, a.Metadata["event"], EventCleared)
	}
	if got := f.gauge("alerting"); got != 0 {
		t.Errorf("khub_integration_alerting on the node that did not clear = %v, want 0", got)
	}
}

func TestSamplesStoredPerBucket(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	// Two rounds in one 15s bucket merge into one sample, the worse.
	f.sampleAt(f.rec, 11*time.Minute+1*time.Second)
	f.sampleAt(f.rec, 11*time.Minute+9*time.Second)
	f.sampleAt(f.rec, 11*time.Minute+16*time.Second)

	got, err := f.st.StalenessSeries(ctx, "int-a", t0, t0.Add(time.Hour), time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("stored %d samples, want 2: %+v", len(got), got)
	}
	if !got[0].At.Equal(t0.Add(11*time.Minute)) || got[0].Staleness != 11*time.Minute+9*time.Second || got[0].WithinWindow {
		t.Errorf("first sample = %+v, want at t0+11m with 11m9s outside the window", got[0])
	}
	if !got[1].At.Equal(t0.Add(11*time.Minute + 15*time.Second)) {
		t.Errorf("second sample at %v, want t0+11m15s", got[1].At)
	}

	staleness := f.gauge("staleness")
	if staleness != (11*time.Minute + 16*time.Second).Seconds() {
		t.Errorf("khub_integration_staleness_seconds = %v, want 676", staleness)
	}
	if window := f.gauge("window"); window != 600 {
		t.Errorf("khub_integration_freshness_window_seconds = %v, want 600", window)
	}
}

func TestSamplesPrunedAfterRetention(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.sampleAt(f.rec, 0)
	f.sampleAt(f.rec, 30*time.Minute)
	// Retention is 1h, so a prune runs at most every 6 minutes. The round
	// at t0+1h10m deletes the sample at t0 and keeps the one at t0+30m.
	f.sampleAt(f.rec, 70*time.Minute)
	got, err := f.st.StalenessSeries(ctx, "int-a", t0.Add(-time.Hour), t0.Add(2*time.Hour), time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	var at []time.Duration
	for _, s := range got {
		at = append(at, s.At.Sub(t0))
	}
	if want := []time.Duration{30 * time.Minute, 70 * time.Minute}; !slices.Equal(at, want) {
		t.Errorf("samples after pruning at %v, want %v", at, want)
	}
}

func TestDeletedIntegrationClearsAlert(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.sampleAt(f.rec, 11*time.Minute)
	f.sampleAt(f.rec, 11*time.Minute+15*time.Second)
	if _, ok := f.alert(); !ok {
		t.Fatal("no alert after two samples outside the window")
	}
	if err := f.st.DeleteIntegration(context.Background(), "int-a"); err != nil {
		t.Fatal(err)
	}
	f.sampleAt(f.rec, 11*time.Minute+30*time.Second)
	a, _ := f.alert()
	if a.Metadata["event"] != EventCleared || a.Metadata["integration"] != "helpdesk" {
		t.Errorf("alert of deleted integration: event %q for %q, want %q for helpdesk", a.Metadata["event"], a.Metadata["integration"], EventCleared)
	}
	if !strings.Contains(a.Title, "deleted") {
		t.Errorf("alert title %q does not say the integration was deleted", a.Title)
	}
	if n := f.seriesCount(); n != 0 {
		t.Errorf("registry keeps %d series after the integration was deleted, want 0", n)
	}
}

func TestSummarizeFromSamples(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.sampleAt(f.rec, 5*time.Minute)
	f.sampleAt(f.rec, 11*time.Minute)
	f.sampleAt(f.rec, 11*time.Minute+15*time.Second)
	f.catchUp()
	f.sampleAt(f.rec, 12*time.Minute)

	in, err := f.st.GetIntegration(ctx, "int-a")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := f.hub.Freshness(ctx, &in)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Summarize(ctx, f.st, &in, rep, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Staleness != 0 {
		t.Errorf("Staleness = %v, want 0 after catching up", sum.Staleness)
	}
	if sum.WorstHour != 11*time.Minute+15*time.Second || sum.WorstDay != sum.WorstHour {
		t.Errorf("WorstHour %v WorstDay %v, want 11m15s both", sum.WorstHour, sum.WorstDay)
	}
	if sum.WithinRatioDay != 0.5 {
		t.Errorf("WithinRatioDay = %v, want 0.5 (2 of 4 samples within)", sum.WithinRatioDay)
	}
	if !sum.Alerting {
		t.Error("Alerting = false, want true: one sample within does not clear the alert")
	}
}

func TestSummarizeWithoutSamples(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	in, err := f.st.GetIntegration(ctx, "int-a")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rep  time.Duration
		want float64
	}{{time.Minute, 1}, {time.Hour, 0}} {
		report := freshness.Report{Window: 10 * time.Minute, Staleness: tc.rep, WithinWindow: tc.rep <= 10*time.Minute}
		sum, err := Summarize(ctx, f.st, &in, report, t0)
		if err != nil {
			t.Fatal(err)
		}
		if sum.WithinRatioDay != tc.want {
			t.Errorf("WithinRatioDay without samples at staleness %v = %v, want %v", tc.rep, sum.WithinRatioDay, tc.want)
		}
		if sum.WorstHour != tc.rep || sum.WorstDay != tc.rep {
			t.Errorf("worst without samples at staleness %v = %v and %v, want the current reading", tc.rep, sum.WorstHour, sum.WorstDay)
		}
	}
}

func TestSeriesStep(t *testing.T) {
	t.Parallel()
	since := t0
	tests := []struct {
		span, step, want time.Duration
	}{
		{time.Hour, time.Minute, time.Minute},
		{time.Hour, 0, 7200 * time.Millisecond},
		{24 * time.Hour, time.Minute, 172800 * time.Millisecond},
		{24 * time.Hour, 15 * time.Minute, 15 * time.Minute},
		{100 * time.Millisecond, 0, time.Millisecond},
		{time.Second + time.Nanosecond, 0, 2001 * time.Microsecond},
	}
	for _, tc := range tests {
		got := SeriesStep(since, since.Add(tc.span), tc.step)
		if got != tc.want {
			t.Errorf("SeriesStep(span %v, step %v) = %v, want %v", tc.span, tc.step, got, tc.want)
		}
		if steps := (tc.span + got - 1) / got; steps > MaxSeriesPoints {
			t.Errorf("SeriesStep(span %v, step %v) = %v gives %d steps, more than %d", tc.span, tc.step, got, steps, MaxSeriesPoints)
		}
	}
}
