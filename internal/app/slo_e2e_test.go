package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/app"
)

// fastSampling makes the freshness recorder sample every 20ms.
func fastSampling(cfg *app.Config) { cfg.SLO.Interval = 20 * time.Millisecond }

// logSink collects a hub's log output from concurrent goroutines.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitFor waits up to five seconds for the log to contain every key, and
// fails the test with the missing ones.
func (l *logSink) waitFor(t *testing.T, keys ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := l.String()
		var missing []string
		for _, key := range keys {
			if !strings.Contains(out, key) {
				missing = append(missing, key)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("logs lack %q", missing)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alertEvents returns the alert events about one integration among the
// events an alerts channel received, oldest first.
func alertEvents(evs []client.Event, integrationID string) []client.Event {
	var out []client.Event
	for _, ev := range evs {
		if ev.Subject == "alert-"+integrationID {
			out = append(out, ev)
		}
	}
	return out
}

func TestFreshnessAlertRaisedAndCleared(t *testing.T) {
	logs := &logSink{}
	_, c := startHub(t, fastSampling, func(cfg *app.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	ctx := context.Background()

	alerts := newReceiver(t)
	createPush(t, c, alerts, client.IntegrationRequest{Name: "alerts", Freshness: "1h",
		Scope: client.Scope{Collections: []string{"khub-operations"}}})
	tool := newReceiver(t)
	board := createPush(t, c, tool, client.IntegrationRequest{Name: "safety-board", Freshness: "300ms",
		Scope:    client.Scope{Classes: []string{"safety"}},
		Delivery: &client.DeliverySettings{ProbeEvery: "50ms"}})

	put(t, c, article("s1", "safety", "Forklift lanes", "Keep lanes clear."))
	tool.waitFor("first delivery", func(evs []client.Event) bool { return len(evs) == 1 })

	// The tool goes down past its 300ms window.
	tool.down()
	put(t, c, article("s2", "safety", "Ladder checks", "Inspect before use."))
	evs := alerts.waitFor("alert raised", func(evs []client.Event) bool {
		got := alertEvents(evs, board.ID)
		return len(got) > 0 && got[len(got)-1].Data.Metadata["event"] == "alert-raised"
	})
	raised := alertEvents(evs, board.ID)
	last := raised[len(raised)-1]
	if last.Data.Collection != "khub-operations" || last.Data.Class != "operations" {
		t.Errorf("alert event is in %s/%s, want khub-operations/operations", last.Data.Collection, last.Data.Class)
	}
	if !slices.Contains(last.Data.Tags, "alert") {
		t.Errorf("alert tags = %v, want alert among them", last.Data.Tags)
	}
	if got := last.Data.Metadata["integration"]; got != "safety-board" {
		t.Errorf("alert metadata integration = %q, want safety-board", got)
	}
	staleness, err := strconv.ParseFloat(last.Data.Metadata["staleness_seconds"], 64)
	if err != nil || staleness <= 0.3 {
		t.Errorf("alert metadata staleness_seconds = %q, want a number above the 0.3s window", last.Data.Metadata["staleness_seconds"])
	}

	in, err := c.GetIntegration(ctx, board.ID)
	if err != nil {
		t.Fatal(err)
	}
	if in.SLO == nil || !in.SLO.Alerting {
		t.Fatalf("slo while the tool is down = %+v, want alerting", in.SLO)
	}
	if in.SLO.WorstHourSeconds <= 0.3 || in.SLO.WorstDaySeconds < in.SLO.WorstHourSeconds {
		t.Errorf("slo worst hour %v and day %v, want above the 0.3s window and day >= hour", in.SLO.WorstHourSeconds, in.SLO.WorstDaySeconds)
	}
	// The recorder logs the alert after writing it, so the event may
	// reach the channel before the line reaches the log.
	logs.waitFor(t, "level=WARN", `msg="freshness alert raised"`, "integration_id="+board.ID, "name=safety-board", "staleness=")

	// The tool comes back, receives the change and the alert clears.
	tool.up()
	tool.waitFor("the change made while down", func(evs []client.Event) bool {
		return slices.ContainsFunc(evs, func(ev client.Event) bool { return ev.Subject == "s2" })
	})
	evs = alerts.waitFor("alert cleared", func(evs []client.Event) bool {
		got := alertEvents(evs, board.ID)
		return len(got) > len(raised) && got[len(got)-1].Data.Metadata["event"] == "alert-cleared"
	})
	cleared := alertEvents(evs, board.ID)
	if v, w := cleared[len(cleared)-1].Data.Version, last.Data.Version; v <= w {
		t.Errorf("cleared alert is version %d, want after the raised version %d", v, w)
	}

	in, err = c.GetIntegration(ctx, board.ID)
	if err != nil {
		t.Fatal(err)
	}
	if in.SLO.Alerting {
		t.Error("slo alerting = true after the alert cleared")
	}
	if in.SLO.WorstHourSeconds <= 0.3 {
		t.Errorf("slo worst hour after recovery = %v, want the outage's staleness above 0.3", in.SLO.WorstHourSeconds)
	}
	if r := in.SLO.WithinWindowRatioDay; r <= 0 || r >= 1 {
		t.Errorf("slo within_window_ratio_day after an outage = %v, want between 0 and 1", r)
	}
	if failures := alerts.verificationFailures(); len(failures) > 0 {
		t.Errorf("alerts channel failed to verify: %v", failures)
	}
}

func TestStalenessSeriesContract(t *testing.T) {
	_, c := startHub(t, fastSampling)
	ctx := context.Background()
	rv := newReceiver(t)
	in := createPush(t, c, rv, client.IntegrationRequest{Name: "board", Freshness: "1m", Scope: client.Scope{Classes: []string{"safety"}}})
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	put(t, c, article("s1", "safety", "Forklift lanes", "Keep lanes clear."))

	// The default range of 24 hours merges the first samples into one
	// step, so the wait requests the last two seconds in 1ms steps.
	eventually(t, "ten samples", func() bool {
		series, err := c.Staleness(ctx, in.ID, time.Now().Add(-2*time.Second), time.Millisecond)
		return err == nil && len(series.Samples) >= 10
	})

	// The JSON has exactly the documented fields.
	resp := do(t, rawRequest(t, c, http.MethodGet, "/v1/integrations/"+in.ID+"/staleness", nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET staleness = %d: %s", resp.StatusCode, resp.body)
	}
	var raw struct {
		WindowSeconds json.RawMessage              `json:"window_seconds"`
		Samples       []map[string]json.RawMessage `json:"samples"`
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(resp.body, &top); err != nil {
		t.Fatal(err)
	}
	if keys := slices.Sorted(maps.Keys(top)); !slices.Equal(keys, []string{"samples", "window_seconds"}) {
		t.Errorf("response keys = %v, want samples and window_seconds", keys)
	}
	if err := json.Unmarshal(resp.body, &raw); err != nil {
		t.Fatal(err)
	}
	if string(raw.WindowSeconds) != "60" {
		t.Errorf("window_seconds = %s, want 60", raw.WindowSeconds)
	}
	for _, s := range raw.Samples {
		if keys := slices.Sorted(maps.Keys(s)); !slices.Equal(keys, []string{"at", "staleness_seconds", "within_window"}) {
			t.Fatalf("sample keys = %v, want at, staleness_seconds and within_window", keys)
		}
	}

	series, err := c.Staleness(ctx, in.ID, time.Now().Add(-2*time.Second), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range series.Samples {
		if i > 0 && !s.At.After(series.Samples[i-1].At) {
			t.Errorf("sample %d at %v is not after sample %d at %v", i, s.At, i-1, series.Samples[i-1].At)
		}
		if !s.WithinWindow || s.StalenessSeconds >= 60 {
			t.Errorf("sample %d = %+v, want within the 1m window", i, s)
		}
	}

	// A week at 1ms steps is widened to at most 500 points.
	week, err := c.Staleness(ctx, in.ID, time.Now().Add(-7*24*time.Hour), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(week.Samples); n == 0 || n > 500 {
		t.Errorf("a week at 1ms steps gave %d samples, want 1 to 500", n)
	}
	for i := 1; i < len(week.Samples); i++ {
		if gap := week.Samples[i].At.Sub(week.Samples[i-1].At); gap < 7*24*time.Hour/500 {
			t.Errorf("samples %d and %d are %v apart, less than a 500th of a week", i-1, i, gap)
		}
	}

	// Bad parameters are 400s that name the parameter.
	path := "/v1/integrations/" + in.ID + "/staleness?"
	future := url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))
	for _, tc := range []struct{ query, field string }{
		{"since=yesterday", "since"},
		{"since=" + future, "since"},
		{"step=soon", "step"},
		{"step=0s", "step"},
		{"step=-1m", "step"},
		{"step=1m&step=2m", "step"},
		{"until=2026-01-01T00:00:00Z", "until"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			wantError(t, do(t, rawRequest(t, c, http.MethodGet, path+tc.query, nil)), http.StatusBadRequest, tc.field)
		})
	}

	if _, err := c.Staleness(ctx, "int_missing", time.Time{}, 0); !client.IsNotFound(err) {
		t.Errorf("unknown integration: err = %v, want 404", err)
	}
	_, err = pc.Staleness(ctx, in.ID, time.Time{}, 0)
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden {
		t.Errorf("pull token: err = %v, want 403", err)
	}
}

// promSample is one line of the Prometheus text format.
type promSample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads the hub's /metrics with the admin token and parses every
// sample line.
func scrape(t *testing.T, c *client.Client) []promSample {
	t.Helper()
	resp := do(t, rawRequest(t, c, http.MethodGet, "/metrics", nil))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", resp.StatusCode, resp.body)
	}
	var out []promSample
	for line := range strings.Lines(string(resp.body)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parsePromLine(line)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out = append(out, s)
	}
	return out
}

// parsePromLine parses `name{k="v",...} value` of the Prometheus text
// format, with the label value escapes \\, \" and \n.
func parsePromLine(line string) (promSample, error) {
	s := promSample{labels: map[string]string{}}
	end := strings.IndexAny(line, "{ ")
	if end < 0 {
		return s, fmt.Errorf("no value")
	}
	s.name, line = line[:end], line[end:]
	if strings.HasPrefix(line, "{") {
		line = line[1:]
		for !strings.HasPrefix(line, "}") {
			eq := strings.Index(line, `="`)
			if eq < 0 {
				return s, fmt.Errorf("label without value")
			}
			key := line[:eq]
			line = line[eq+2:]
			var val strings.Builder
			for {
				if line == "" {
					return s, fmt.Errorf("unterminated label value")
				}
				ch := line[0]
				line = line[1:]
				if ch == '"' {
					break
				}
				if ch == '\\' && line != "" {
					switch line[0] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(line[0])
					}
					line = line[1:]
					continue
				}
				val.WriteByte(ch)
			}
			s.labels[key] = val.String()
			line = strings.TrimPrefix(line, ",")
		}
		line = line[1:]
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return s, fmt.Errorf("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, err
	}
	s.value = v
	return s, nil
}

// find returns the samples of a metric whose labels include want.
func find(samples []promSample, name string, want map[string]string) []promSample {
	var out []promSample
	for _, s := range samples {
		if s.name != name {
			continue
		}
		match := true
		for k, v := range want {
			if s.labels[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, s)
		}
	}
	return out
}

func TestMetricsAfterTraffic(t *testing.T) {
	_, c := startHub(t, fastSampling)
	ctx := context.Background()
	rv := newReceiver(t)
	rv.mu.Lock()
	rv.status = http.StatusInternalServerError
	rv.mu.Unlock()
	in := createPush(t, c, rv, client.IntegrationRequest{Name: "board", Freshness: "1m", Scope: client.Scope{Classes: []string{"safety"}}})
	pc := createPull(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})

	// The first attempts fail with 500, then the receiver accepts.
	put(t, c, article("s1", "safety", "Forklift lanes", "Keep lanes clear."))
	eventually(t, "a retrying attempt", func() bool {
		ds, err := c.QueryDeliveries(ctx, in.ID, client.DeliveryQuery{Status: "retrying"})
		return err == nil && len(ds) > 0
	})
	rv.mu.Lock()
	rv.status = 0
	rv.mu.Unlock()
	put(t, c, article("s2", "safety", "Ladder checks", "Inspect before use."))
	rv.waitFor("both changes", func(evs []client.Event) bool { return len(evs) >= 2 })

	put(t, c, article("rb-db", "runbook", "Database failover", "Promote the replica."))
	if _, err := c.Search(ctx, "failover", client.SearchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Search(ctx, "replica", client.SearchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Changes(ctx, 0, 10, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.GetArticle(ctx, "rb-db"); err != nil {
		t.Fatal(err)
	}

	var samples []promSample
	eventually(t, "staleness gauges of both integrations", func() bool {
		samples = scrape(t, c)
		return len(find(samples, "khub_integration_staleness_seconds", nil)) >= 2 &&
			len(find(samples, "khub_push_queue_depth", map[string]string{"integration_id": in.ID})) == 1
	})

	id := map[string]string{"integration_id": in.ID}
	checks := []struct {
		name   string
		labels map[string]string
	}{
		{"khub_push_deliveries_total", map[string]string{"integration_id": in.ID, "outcome": "delivered", "status_class": "2xx"}},
		{"khub_push_deliveries_total", map[string]string{"integration_id": in.ID, "outcome": "retrying", "status_class": "5xx"}},
		{"khub_push_attempt_duration_seconds_count", id},
		{"khub_push_delivery_latency_seconds_count", id},
		{"khub_integration_staleness_seconds", id},
		{"khub_integration_freshness_window_seconds", id},
		{"khub_integration_alerting", id},
		{"khub_integration_info", map[string]string{"integration_id": in.ID, "name": "board", "pattern": "push"}},
		{"khub_push_queue_depth", id},
		{"khub_http_request_duration_seconds_count", map[string]string{"route": "GET /v1/search", "code": "200"}},
		{"khub_http_request_duration_seconds_count", map[string]string{"route": "GET /v1/changes", "code": "200"}},
		{"khub_http_request_duration_seconds_count", map[string]string{"route": "GET /v1/articles/{id}", "code": "200"}},
		{"khub_search_duration_seconds_count", map[string]string{"outcome": "ok"}},
	}
	for _, tc := range checks {
		got := find(samples, tc.name, tc.labels)
		if len(got) == 0 {
			t.Errorf("no series %s%v", tc.name, tc.labels)
			continue
		}
		if strings.HasSuffix(tc.name, "_total") || strings.HasSuffix(tc.name, "_count") {
			if got[0].value < 1 {
				t.Errorf("%s%v = %v, want at least 1", tc.name, tc.labels, got[0].value)
			}
		}
	}
	if got := find(samples, "khub_search_duration_seconds_count", map[string]string{"outcome": "ok"}); len(got) == 1 && got[0].value != 2 {
		t.Errorf("khub_search_duration_seconds_count{outcome=ok} = %v, want 2", got[0].value)
	}
	if got := find(samples, "khub_integration_freshness_window_seconds", id); len(got) == 1 && got[0].value != 60 {
		t.Errorf("khub_integration_freshness_window_seconds = %v, want 60", got[0].value)
	}
	if got := find(samples, "khub_push_queue_depth", id); len(got) == 1 && got[0].value < 0 {
		t.Errorf("khub_push_queue_depth = %v, want 0 or more", got[0].value)
	}

	// Routes are labelled by pattern, never by raw path.
	for _, s := range find(samples, "khub_http_request_duration_seconds_count", nil) {
		route := s.labels["route"]
		if route != "unmatched" && !strings.Contains(route, " /") {
			t.Errorf("route label %q is not a method and pattern", route)
		}
		if strings.Contains(route, "rb-db") || strings.Contains(route, in.ID) {
			t.Errorf("route label %q contains a raw path", route)
		}
	}
}

func TestTwoNodesWriteOneAlert(t *testing.T) {
	shared := sharedPostgres(t)
	appA, nodeA := startHub(t, shared, fastSampling)
	_, nodeB := startHub(t, shared, fastSampling)
	ctx := context.Background()

	put(t, nodeA, article("rb", "runbook", "Restart the queue", "Drain first."))
	poller, err := nodeA.CreateIntegration(ctx, client.IntegrationRequest{Name: "poller", Freshness: "300ms", PollInterval: "100ms",
		Scope: client.Scope{Classes: []string{"runbook"}}})
	if err != nil {
		t.Fatal(err)
	}
	if poller.Pattern != "pull" || poller.Lookups {
		t.Fatalf("pattern %s lookups %v, want pull without lookups", poller.Pattern, poller.Lookups)
	}

	// The poller never reads the feed, so it falls behind and stays there
	// while both nodes sample it.
	eventually(t, "alert raised", func() bool {
		a, err := nodeB.GetArticle(ctx, "alert-"+poller.ID)
		return err == nil && a.Metadata["event"] == "alert-raised"
	})
	time.Sleep(300 * time.Millisecond)
	a, err := nodeA.GetArticle(ctx, "alert-"+poller.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != 1 {
		t.Errorf("alert article has version %d after two nodes sampled an outage, want 1", a.Version)
	}
	for name, c := range map[string]*client.Client{"A": nodeA, "B": nodeB} {
		in, err := c.GetIntegration(ctx, poller.ID)
		if err != nil {
			t.Fatal(err)
		}
		if in.SLO == nil || !in.SLO.Alerting {
			t.Errorf("node %s: slo = %+v, want alerting", name, in.SLO)
		}
	}

	// Both nodes keyed their samples by 20ms bucket, so the stored samples
	// sit on bucket boundaries, one per bucket.
	raw, err := appA.Store.StalenessSeries(ctx, poller.ID, time.Now().Add(-2*time.Second), time.Now(), time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 {
		t.Fatal("no samples recorded")
	}
	for i, s := range raw {
		if s.At.UnixNano()%int64(20*time.Millisecond) != 0 {
			t.Errorf("sample %d at %v is not on a 20ms bucket boundary", i, s.At)
		}
	}
	series, err := nodeB.Staleness(ctx, poller.ID, time.Now().Add(-2*time.Second), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(series.Samples) == 0 {
		t.Fatal("no samples in the series of node B")
	}
	for i, s := range series.Samples {
		if i > 0 && !s.At.After(series.Samples[i-1].At) {
			t.Errorf("sample %d at %v repeats or precedes sample %d at %v", i, s.At, i-1, series.Samples[i-1].At)
		}
	}
}
