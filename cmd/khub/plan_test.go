package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/app"
	"github.com/khub-dev/khub/internal/push"
)

// startPlanHub runs a hub on loopback that may push to loopback receivers
// and whose dispatchers re-read their integration every 50ms, so that an
// update reaches them quickly.
func startPlanHub(t *testing.T) *client.Client {
	t.Helper()
	a, err := app.Open(app.Config{
		DataDir:      t.TempDir(),
		Addr:         "127.0.0.1:0",
		AllowPrivate: true,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Push:         push.Config{StateRefresh: 50 * time.Millisecond, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	return client.New(a.URL(), a.AdminToken())
}

// hookReceiver is a loopback webhook endpoint that responds with 204 and records
// the webhook-id of each request.
type hookReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	ids []string
}

func newHookReceiver(t *testing.T) *hookReceiver {
	rv := &hookReceiver{}
	rv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		rv.mu.Lock()
		rv.ids = append(rv.ids, r.Header.Get("webhook-id"))
		rv.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rv.srv.Close)
	return rv
}

func (rv *hookReceiver) count() int {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return len(rv.ids)
}

// writeFile writes text to a file in a temporary folder and returns its
// path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// putVersions writes n versions of each article, n-1 of them updates.
func putVersions(t *testing.T, c *client.Client, n int, articles ...client.Article) {
	t.Helper()
	for _, a := range articles {
		for v := 1; v <= n; v++ {
			a.Body = strings.Repeat("Version. ", v)
			if _, _, err := c.PutArticle(context.Background(), a); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// planJSON runs khub plan --output json and decodes the plan. The command
// fails when an entry is invalid, so its error is returned beside the plan.
func planJSON(t *testing.T, c *client.Client, path string) (client.Plan, error) {
	t.Helper()
	out, err := runCLI(t, c, "plan", "-f", path, "--output", "json")
	var p client.Plan
	if jerr := json.Unmarshal([]byte(out), &p); jerr != nil {
		t.Fatalf("plan --output json printed no plan (%v, command error %v):\n%s", jerr, err, out)
	}
	return p, err
}

func itemNamed(t *testing.T, p *client.Plan, name string) client.PlanItem {
	t.Helper()
	for _, it := range p.Integrations {
		if it.Name == name {
			return it
		}
	}
	t.Fatalf("the plan has no integration %q", name)
	return client.PlanItem{}
}

func TestPlanMeasuresChangeRates(t *testing.T) {
	c := startPlanHub(t)
	rv := newHookReceiver(t)
	// 3 policies with 2 versions each and 2 runbooks with 2 versions each:
	// 6 policy changes and 4 runbook changes, all within the last hour, so
	// the rates are measured over the minimum span of one hour.
	putVersions(t, c, 2,
		client.Article{ID: "travel", Title: "Travel", Collection: "handbook", Class: "policy"},
		client.Article{ID: "leave", Title: "Leave", Collection: "handbook", Class: "policy"},
		client.Article{ID: "expenses", Title: "Expenses", Collection: "handbook", Class: "policy"},
		client.Article{ID: "failover", Title: "Failover", Collection: "ops", Class: "runbook"},
		client.Article{ID: "restart", Title: "Restart", Collection: "ops", Class: "runbook"},
	)
	file := writeFile(t, "integrations.yaml", `integrations:
  - name: policy-board
    tool: Signage
    freshness: 1m
    scope: {classes: [policy]}
    webhook: {url: `+rv.srv.URL+`/policy}
  - name: helpdesk
    tool: Zendesk
    freshness: 15m
    lookups: true
    requests_per_hour: 120
    scope: {classes: [runbook]}
  - name: wiki-sync
    freshness: 1h
    poll_interval: 5m
    scope: {collections: [ops], classes: [runbook]}
  - name: crm
    freshness: 30m
    poll_interval: 10m
    scope: {classes: [policy, runbook]}
    webhook: {url: `+rv.srv.URL+`/crm}
  - name: no-window
    scope: {classes: [runbook]}
  - name: archive
    pattern: pull
    freshness: 12h
    poll_interval: 24h
    accept_risk: true
    scope: {classes: [policy]}
`)
	p, err := planJSON(t, c, file)
	if err == nil || !strings.Contains(err.Error(), "1 entry is invalid") {
		t.Errorf("plan with a missing window: error = %v, want 1 entry reported invalid", err)
	}
	if p.MeasuredHours != 1 {
		t.Errorf("measured over %v hours, want the minimum of 1", p.MeasuredHours)
	}

	board := itemNamed(t, &p, "policy-board")
	if board.Action != client.PlanCreate || board.Pattern != "push" {
		t.Errorf("policy-board: %s %s, want create push", board.Action, board.Pattern)
	}
	if board.Load.PushesPerHour != 6 || board.Load.ChangesPerHour != 6 || board.Load.InitialPushes != 6 {
		t.Errorf("policy-board load = %+v, want 6 pushes/h of 6 changes/h and 6 initial pushes", board.Load)
	}
	if board.Load.PullsPerHour == nil || *board.Load.PullsPerHour != 0 {
		t.Errorf("policy-board pulls = %v, want 0", board.Load.PullsPerHour)
	}

	help := itemNamed(t, &p, "helpdesk")
	if help.Pattern != "pull" || help.Load.PushesPerHour != 0 || help.Load.ChangesPerHour != 4 {
		t.Errorf("helpdesk: %s with load %+v, want pull, 0 pushes/h of 4 changes/h", help.Pattern, help.Load)
	}
	if help.Load.PullsPerHour == nil || *help.Load.PullsPerHour != 120 {
		t.Errorf("helpdesk pulls = %v, want the declared 120", help.Load.PullsPerHour)
	}

	wiki := itemNamed(t, &p, "wiki-sync")
	if wiki.Load.PullsPerHour == nil || *wiki.Load.PullsPerHour != 12 {
		t.Errorf("wiki-sync pulls = %v, want 3600/300s = 12", wiki.Load.PullsPerHour)
	}

	// Hybrid pushes the policies and pulls the runbooks.
	crm := itemNamed(t, &p, "crm")
	if crm.Pattern != "hybrid" || crm.Load.PushesPerHour != 6 || crm.Load.ChangesPerHour != 10 {
		t.Errorf("crm: %s with load %+v, want hybrid, 6 pushes/h of 10 changes/h", crm.Pattern, crm.Load)
	}
	if crm.Load.PullsPerHour == nil || *crm.Load.PullsPerHour != 6 {
		t.Errorf("crm pulls = %v, want 3600/600s = 6", crm.Load.PullsPerHour)
	}

	missing := itemNamed(t, &p, "no-window")
	if missing.Action != client.PlanInvalid || missing.Error == nil || missing.Error.Field != "freshness" {
		t.Errorf("no-window: %s, error %+v; want invalid on freshness", missing.Action, missing.Error)
	}

	archive := itemNamed(t, &p, "archive")
	if len(archive.Warnings) != 1 || !strings.Contains(archive.Warnings[0], "Time-sensitive classes would be pulled") {
		t.Errorf("archive warnings = %q, want the pulled time-sensitive warning", archive.Warnings)
	}
	if p.PushesPerHour != 12 {
		t.Errorf("total pushes/h = %v, want 12", p.PushesPerHour)
	}
	if len(p.Warnings) != 0 {
		t.Errorf("plan warnings = %q, want none: not everything is push", p.Warnings)
	}

	// The table names the file line of the entry without a window.
	out, _ := runCLI(t, c, "plan", "-f", file)
	for _, want := range []string{
		"NAME", "policy-board  Signage", "no-window",
		file + ":22: freshness is required",
		"6 pushes/h of 6 changes/h in scope; no pull requests; first sends the 6 changes already in scope",
		"120 pull requests/h (declared)",
		"12 pull requests/h (polling every 5m)",
		"Summary: 5 to create, 1 invalid.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan table does not contain %q:\n%s", want, out)
		}
	}
	if all, err := c.ListIntegrations(context.Background()); err != nil || len(all) != 0 {
		t.Errorf("plan created %d integrations (err %v), want none", len(all), err)
	}
}

func TestPlanWarnsEverythingIsPush(t *testing.T) {
	c := startPlanHub(t)
	rv := newHookReceiver(t)
	putVersions(t, c, 3, client.Article{ID: "lanes", Title: "Forklift lanes", Collection: "floor", Class: "safety"})
	file := writeFile(t, "push.yaml", `integrations:
  - name: board-a
    freshness: 1m
    scope: {classes: [safety]}
    webhook: {url: `+rv.srv.URL+`/a}
  - name: board-b
    freshness: 30s
    scope: {collections: [floor]}
    webhook: {url: `+rv.srv.URL+`/b}
`)
	p, err := planJSON(t, c, file)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "Everything is push") || !strings.Contains(p.Warnings[0], "add 6 pushes per hour") {
		t.Errorf("plan warnings = %q, want the fan-out warning with 6 pushes per hour", p.Warnings)
	}
}

func TestPlanFileErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name string
		text string
		want []string
	}{
		{"unknown key", "integrations:\n  - name: a\n    freshness: 1m\n    lookup: true\n",
			[]string{`f.yaml:4: integration 1 ("a") has the unknown key "lookup": use name, tool`}},
		{"unknown nested key", "integrations:\n  - name: a\n    freshness: 1m\n    delivery:\n      batchsize: 5\n",
			[]string{`f.yaml:5: integration 1 ("a") delivery has the unknown key "batchsize"`}},
		{"secret in the file", "integrations:\n  - name: a\n    webhook:\n      url: https://x.example/h\n      secret: whsec_x\n",
			[]string{`f.yaml:5:`, `unknown key "secret" (khub generates webhook secrets`}},
		{"key given twice", "integrations:\n  - name: a\n    freshness: 1m\n    freshness: 2m\n",
			[]string{`f.yaml:4: integration 1 ("a") gives the key "freshness" twice, first on line 3`}},
		{"not a boolean", "integrations:\n  - name: a\n    lookups: yes\n",
			[]string{`f.yaml:3: integration 1 ("a"): lookups must be true or false, not the value "yes"`}},
		{"not a number", "integrations:\n  - name: a\n    requests_per_hour: lots\n",
			[]string{`f.yaml:3:`, `requests_per_hour must be a number`}},
		{"classes not a list", "integrations:\n  - name: a\n    scope:\n      classes: policy\n",
			[]string{`f.yaml:4:`, `scope.classes must be a list`}},
		{"two errors", "integrations:\n  - name: a\n    lookup: true\n  - name: b\n    polling: 5m\n",
			[]string{`f.yaml:3:`, `"lookup"`, `f.yaml:5:`, `integration 2 ("b")`, `"polling"`}},
		{"unknown top-level key", "integration:\n  - name: a\n",
			[]string{`f.yaml:1: the file has the unknown key "integration": use integrations`}},
		{"a bare list", "- name: a\n",
			[]string{`f.yaml:1: the file must be a mapping with the key integrations, not a list`}},
		{"no entries", "integrations: []\n", []string{`f.yaml:1: integrations is empty`}},
		{"empty file", "", []string{`f.yaml is empty`}},
		{"two documents", "integrations:\n  - name: a\n---\nintegrations: []\n", []string{`f.yaml:3: a second YAML document starts here`}},
		{"broken YAML", "integrations:\n  - name: [a\n", []string{`f.yaml:1: did not find expected`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePlanFile("f.yaml", []byte(tc.text))
			if err == nil {
				t.Fatal("parse succeeded, want an error")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestPlanFileReadsEveryKey(t *testing.T) {
	f, err := parsePlanFile("f.yaml", []byte(`integrations:
  - name: crm
    tool: Salesforce
    pattern: hybrid
    freshness: 30m
    poll_interval: 10m
    lookups: false
    accept_risk: true
    requests_per_hour: 12.5
    scope:
      collections: [sales]
      classes: [policy, reference]
      tags: [emea]
      metadata: {audience: sales}
    webhook: {url: "https://crm.example.com/khub"}
    delivery:
      initial_backoff: 1s
      max_backoff: 10m
      retry_for: 24h
      timeout: 5s
      batch_size: 20
      coalesce: true
      rate_limit: 2.5
      pause_after: 4
      probe_every: 30s
`))
	if err != nil {
		t.Fatal(err)
	}
	e := f.entries[0]
	want := client.PlanEntry{
		IntegrationRequest: client.IntegrationRequest{
			Name: "crm", Pattern: "hybrid", Freshness: "30m", PollInterval: "10m", AcceptRisk: true,
			Scope: client.Scope{Collections: []string{"sales"}, Classes: []string{"policy", "reference"}, Tags: []string{"emea"},
				Metadata: map[string]string{"audience": "sales"}},
			Webhook: &client.Webhook{URL: "https://crm.example.com/khub"},
			Delivery: &client.DeliverySettings{InitialBackoff: "1s", MaxBackoff: "10m", RetryFor: "24h", Timeout: "5s",
				BatchSize: 20, Coalesce: true, RateLimit: 2.5, PauseAfter: 4, ProbeEvery: "30s"},
		},
		Tool: "Salesforce", RequestsPerHour: 12.5,
	}
	got, _ := json.Marshal(e)
	wantJSON, _ := json.Marshal(want)
	if string(got) != string(wantJSON) {
		t.Errorf("entry =\n%s\nwant\n%s", got, wantJSON)
	}
	if l := f.line(0, "delivery.batch_size"); l != 21 {
		t.Errorf("line of delivery.batch_size = %d, want 21", l)
	}
	if l := f.line(0, "scope.metadata.audience"); l != 14 {
		t.Errorf("line of scope.metadata.audience = %d, want 14", l)
	}
	if l := f.line(0, "webhook.secret"); l != 15 {
		t.Errorf("line of webhook.secret falls back to %d, want webhook on 15", l)
	}
}

func TestExampleIntegrationsFileParses(t *testing.T) {
	f, err := readPlanFile(filepath.Join("..", "..", "examples", "integrations.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range f.entries {
		names = append(names, e.Name)
		if e.Freshness == "" {
			t.Errorf("example %q has no freshness window", e.Name)
		}
	}
	if got, want := strings.Join(names, ","), "helpdesk,safety-board,crm,compliance-archive"; got != want {
		t.Errorf("example integrations = %s, want %s", got, want)
	}
}
