package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
)

// eventually polls cond every 20ms for up to 5s.
func eventually(t *testing.T, condition string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", condition)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// integrationsByName lists the hub's integrations by name.
func integrationsByName(t *testing.T, c *client.Client) map[string]client.Integration {
	t.Helper()
	all, err := c.ListIntegrations(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]client.Integration{}
	for _, in := range all {
		out[in.Name] = in
	}
	return out
}

func TestApplyTwiceChangesNothing(t *testing.T) {
	c := startPlanHub(t)
	rv := newHookReceiver(t)
	putVersions(t, c, 1, client.Article{ID: "travel", Title: "Travel", Collection: "handbook", Class: "policy"})
	file := writeFile(t, "integrations.yaml", `integrations:
  - name: policy-board
    freshness: 1m
    scope: {classes: [policy]}
    webhook: {url: `+rv.srv.URL+`/board}
    delivery: {batch_size: 10}
  - name: helpdesk
    freshness: 15m
    lookups: true
    requests_per_hour: 60
    scope: {classes: [runbook]}
  - name: crm
    freshness: 30m
    poll_interval: 10m
    scope: {classes: [policy, reference]}
    webhook: {url: `+rv.srv.URL+`/crm}
`)
	out, err := runCLI(t, c, "apply", "-f", file)
	if err != nil {
		t.Fatalf("first apply: %v\n%s", err, out)
	}
	for _, want := range []string{"created    policy-board", "created    helpdesk", "created    crm", "Applied " + file + ": 3 created."} {
		if !strings.Contains(out, want) {
			t.Errorf("first apply output does not contain %q:\n%s", want, out)
		}
	}
	// Push and hybrid print a secret; pull and hybrid print a token.
	if n := strings.Count(out, "webhook secret: whsec_"); n != 2 {
		t.Errorf("first apply printed %d webhook secrets, want 2:\n%s", n, out)
	}
	if n := strings.Count(out, "pull token:     khub_pull_"); n != 2 {
		t.Errorf("first apply printed %d pull tokens, want 2:\n%s", n, out)
	}
	first := integrationsByName(t, c)
	if len(first) != 3 || first["crm"].Pattern != "hybrid" || first["policy-board"].Delivery.BatchSize != 10 {
		t.Fatalf("after the first apply: %+v, want 3 integrations with crm hybrid and batches of 10", first)
	}

	out, err = runCLI(t, c, "apply", "-f", file)
	if err != nil {
		t.Fatalf("second apply: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Nothing to change: the 3 integrations of "+file+" match the hub.") {
		t.Errorf("second apply does not say that nothing changed:\n%s", out)
	}
	if strings.Count(out, "unchanged  ") != 3 || strings.Contains(out, "whsec_") || strings.Contains(out, "khub_pull_") {
		t.Errorf("second apply printed changes or credentials:\n%s", out)
	}
	second := integrationsByName(t, c)
	for name, in := range first {
		if second[name].ID != in.ID {
			t.Errorf("%s: id %s after the second apply, want %s", name, second[name].ID, in.ID)
		}
	}

	p, err := planJSON(t, c, file)
	if err != nil {
		t.Fatal(err)
	}
	if n := countAction(&p, client.PlanUnchanged); n != 3 {
		t.Errorf("plan after apply: %d unchanged of %d, want 3", n, len(p.Integrations))
	}

	// JSON output of an apply that changes nothing lists each integration.
	out, err = runCLI(t, c, "apply", "-f", file, "--output", "json")
	if err != nil || !strings.Contains(out, `"action": "unchanged"`) {
		t.Errorf("apply --output json: err %v, output:\n%s", err, out)
	}
}

func TestApplyUpdatesInPlace(t *testing.T) {
	c := startPlanHub(t)
	ctx := context.Background()
	oldHook, newHook := newHookReceiver(t), newHookReceiver(t)
	putVersions(t, c, 1,
		client.Article{ID: "travel", Title: "Travel", Collection: "handbook", Class: "policy"},
		client.Article{ID: "leave", Title: "Leave", Collection: "handbook", Class: "policy"},
		client.Article{ID: "failover", Title: "Failover", Collection: "ops", Class: "runbook"},
	)
	v1 := writeFile(t, "v1.yaml", `integrations:
  - name: policy-board
    freshness: 1m
    scope: {classes: [policy]}
    webhook: {url: `+oldHook.srv.URL+`}
  - name: wiki-sync
    freshness: 15m
    poll_interval: 5m
    scope: {classes: [runbook]}
`)
	out, err := runCLI(t, c, "apply", "-f", v1)
	if err != nil {
		t.Fatalf("apply v1: %v\n%s", err, out)
	}
	token := ""
	for _, line := range strings.Split(out, "\n") {
		if _, tok, ok := strings.Cut(line, "pull token:     "); ok {
			token = strings.Fields(tok)[0]
		}
	}
	if token == "" {
		t.Fatalf("apply v1 printed no pull token:\n%s", out)
	}

	// The board receives both policies, and the wiki reads the feed, so
	// both integrations have a cursor to keep.
	eventually(t, "the board receives both policies", func() bool { return oldHook.count() >= 2 })
	before := integrationsByName(t, c)
	eventually(t, "the push cursor passes both policies", func() bool {
		in, err := c.GetIntegration(ctx, before["policy-board"].ID)
		return err == nil && in.PushCursor >= 2
	})
	page, err := client.New(c.BaseURL(), token).Changes(ctx, 0, 10, 0)
	if err != nil || len(page.Changes) != 1 {
		t.Fatalf("wiki-sync reads the feed: %d changes, err %v; want the runbook", len(page.Changes), err)
	}
	before = integrationsByName(t, c)
	if before["wiki-sync"].PullCursor != page.Next {
		t.Fatalf("wiki-sync pull cursor = %d, want %d", before["wiki-sync"].PullCursor, page.Next)
	}

	v2 := writeFile(t, "v2.yaml", `integrations:
  - name: policy-board
    freshness: 30s
    scope: {classes: [policy]}
    webhook: {url: `+newHook.srv.URL+`}
    delivery: {batch_size: 5}
  - name: wiki-sync
    freshness: 30m
    poll_interval: 10m
    scope: {classes: [runbook]}
`)
	p, err := planJSON(t, c, v2)
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	for _, it := range p.Integrations {
		if it.Action != client.PlanUpdate {
			t.Errorf("plan of %s: %s, want update", it.Name, it.Action)
		}
		for _, ch := range it.Changes {
			fields = append(fields, it.Name+"."+ch.Field)
		}
	}
	want := "policy-board.freshness policy-board.webhook.url policy-board.delivery.batch_size wiki-sync.freshness wiki-sync.poll_interval"
	if got := strings.Join(fields, " "); got != want {
		t.Errorf("planned changes = %s, want %s", got, want)
	}

	out, err = runCLI(t, c, "apply", "-f", v2)
	if err != nil {
		t.Fatalf("apply v2: %v\n%s", err, out)
	}
	for _, want := range []string{
		"updated    policy-board (" + before["policy-board"].ID + "): freshness 1m0s → 30s, webhook.url " + oldHook.srv.URL + " → " + newHook.srv.URL + ", delivery.batch_size 1 → 5",
		"updated    wiki-sync (" + before["wiki-sync"].ID + "): freshness 15m0s → 30m0s, poll_interval 5m0s → 10m0s",
		"2 updated in place",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("apply v2 output does not contain %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "whsec_") || strings.Contains(out, "khub_pull_") {
		t.Errorf("an update printed credentials:\n%s", out)
	}

	after := integrationsByName(t, c)
	board, wiki := after["policy-board"], after["wiki-sync"]
	if board.ID != before["policy-board"].ID || wiki.ID != before["wiki-sync"].ID {
		t.Errorf("ids after the update = %s, %s; want %s, %s", board.ID, wiki.ID, before["policy-board"].ID, before["wiki-sync"].ID)
	}
	if board.PushCursor < before["policy-board"].PushCursor {
		t.Errorf("policy-board push cursor = %d after the update, want at least %d", board.PushCursor, before["policy-board"].PushCursor)
	}
	if wiki.PullCursor != before["wiki-sync"].PullCursor {
		t.Errorf("wiki-sync pull cursor = %d after the update, want %d", wiki.PullCursor, before["wiki-sync"].PullCursor)
	}
	if board.Freshness.Window != "30s" || board.Webhook == nil || board.Webhook.URL != newHook.srv.URL || board.Delivery.BatchSize != 5 {
		t.Errorf("policy-board after the update: window %s, webhook %+v, delivery %+v", board.Freshness.Window, board.Webhook, board.Delivery)
	}
	if wiki.PollInterval != "10m0s" || !strings.Contains(strings.Join(wiki.Reasons, " "), "Polling every 10m0s keeps the tool within its 30m0s window") {
		t.Errorf("wiki-sync after the update: poll %s, reasons %q", wiki.PollInterval, wiki.Reasons)
	}
	// The pull token still works.
	if _, err := client.New(c.BaseURL(), token).Changes(ctx, wiki.PullCursor, 10, 0); err != nil {
		t.Errorf("the pull token after the update: %v", err)
	}

	// The dispatcher picks up the new URL within its refresh interval.
	time.Sleep(300 * time.Millisecond)
	sent := oldHook.count()
	putVersions(t, c, 1, client.Article{ID: "expenses", Title: "Expenses", Collection: "handbook", Class: "policy"})
	eventually(t, "the new webhook receives the new policy", func() bool { return newHook.count() >= 1 })
	if oldHook.count() != sent {
		t.Errorf("the old webhook received %d more requests after the update, want none", oldHook.count()-sent)
	}

	out, err = runCLI(t, c, "apply", "-f", v2)
	if err != nil || !strings.Contains(out, "Nothing to change") {
		t.Errorf("apply v2 again: err %v, output:\n%s", err, out)
	}
}

func TestApplyReplaceNeedsFlag(t *testing.T) {
	c := startPlanHub(t)
	v1 := writeFile(t, "v1.yaml", "integrations:\n  - name: helpdesk\n    freshness: 15m\n    lookups: true\n    scope: {classes: [runbook]}\n")
	if out, err := runCLI(t, c, "apply", "-f", v1); err != nil {
		t.Fatalf("apply v1: %v\n%s", err, out)
	}
	old := integrationsByName(t, c)["helpdesk"]

	v2 := writeFile(t, "v2.yaml", "integrations:\n  - name: helpdesk\n    freshness: 15m\n    lookups: true\n    scope: {classes: [runbook, reference]}\n")
	out, err := runCLI(t, c, "apply", "-f", v2)
	if err == nil {
		t.Fatalf("apply of a new scope without --replace succeeded:\n%s", out)
	}
	for _, want := range []string{"nothing applied", v2 + ":5: helpdesk (" + old.ID + "): scope classes runbook → classes reference, runbook", "khub apply --replace"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if got := integrationsByName(t, c)["helpdesk"]; got.ID != old.ID || len(got.Scope.Classes) != 1 {
		t.Errorf("after a rejected apply: %+v, want the old integration unchanged", got)
	}

	out, err = runCLI(t, c, "apply", "-f", v2, "--replace")
	if err != nil {
		t.Fatalf("apply --replace: %v\n%s", err, out)
	}
	now := integrationsByName(t, c)["helpdesk"]
	if now.ID == old.ID || len(now.Scope.Classes) != 2 {
		t.Errorf("after apply --replace: %+v, want a new integration with two classes", now)
	}
	for _, want := range []string{
		"replacing  helpdesk (" + old.ID + "): scope classes runbook → classes reference, runbook cannot change in place, so it is deleted",
		"replaced   helpdesk: deleted " + old.ID + ", created " + now.ID,
		"pull token:     khub_pull_",
		"1 replaced",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("apply --replace output does not contain %q:\n%s", want, out)
		}
	}
	if _, err := c.GetIntegration(context.Background(), old.ID); !client.IsNotFound(err) {
		t.Errorf("the replaced integration: err = %v, want 404", err)
	}
}

func TestApplyRejectsInvalidFile(t *testing.T) {
	c := startPlanHub(t)
	file := writeFile(t, "bad.yaml", "integrations:\n  - name: good\n    freshness: 15m\n    lookups: true\n    scope: {classes: [runbook]}\n  - name: bad\n    freshness: 15x\n  - name: bell\n    tool: \"Bell\\a\"\n    freshness: 15m\n")
	out, err := runCLI(t, c, "apply", "-f", file)
	if err == nil || !strings.Contains(err.Error(), "nothing applied, because 2 entries are invalid") {
		t.Errorf("apply of an invalid file: err = %v, want nothing applied because of 2 entries\n%s", err, out)
	}
	if err != nil && !strings.Contains(err.Error(), file+":7: freshness \"15x\" is not a duration") {
		t.Errorf("apply of an invalid file: err = %v, want the line of freshness", err)
	}
	if err != nil && !strings.Contains(err.Error(), file+":9: tool \"Bell\\a\" contains a control character") {
		t.Errorf("apply of an invalid file: err = %v, want the line of tool", err)
	}
	if all := integrationsByName(t, c); len(all) != 0 {
		t.Errorf("apply of an invalid file created %d integrations, want none", len(all))
	}
}

// wantFieldError fails the test unless err is a 400 that names field and
// contains phrase.
func wantFieldError(t *testing.T, what string, err error, field, phrase string) {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Errorf("%s: error = %v, want a 400 on %s", what, err, field)
		return
	}
	if e.StatusCode != http.StatusBadRequest || e.Field != field || !strings.Contains(e.Message, phrase) {
		t.Errorf("%s: %d on %q: %s; want 400 on %q containing %q", what, e.StatusCode, e.Field, e.Message, field, phrase)
	}
}

func TestUpdateIntegrationRules(t *testing.T) {
	c := startPlanHub(t)
	ctx := context.Background()
	str := func(s string) *string { return &s }
	yes, no := true, false
	help, err := c.CreateIntegration(ctx, client.IntegrationRequest{Name: "helpdesk", Freshness: "15m", Lookups: true,
		Scope: client.Scope{Classes: []string{"runbook"}}})
	if err != nil {
		t.Fatal(err)
	}

	_, _, err = c.UpdateIntegration(ctx, help.ID, client.IntegrationUpdate{Pattern: str("push")})
	wantFieldError(t, "pattern push on a pull integration", err, "pattern", "cannot change in place")
	_, _, err = c.UpdateIntegration(ctx, help.ID, client.IntegrationUpdate{Pattern: str("auto"), Lookups: &no, Freshness: str("30s")})
	wantFieldError(t, "settings for which auto chooses push", err, "pattern", "auto would choose push")
	_, _, err = c.UpdateIntegration(ctx, help.ID, client.IntegrationUpdate{Webhook: &client.WebhookUpdate{URL: "http://127.0.0.1:9/h"}})
	wantFieldError(t, "webhook on a pull integration", err, "webhook.url", "uses pattern pull")
	_, _, err = c.UpdateIntegration(ctx, help.ID, client.IntegrationUpdate{Delivery: &client.DeliverySettings{BatchSize: 5}})
	wantFieldError(t, "delivery on a pull integration", err, "delivery", "uses pattern pull")
	_, _, err = c.UpdateIntegration(ctx, help.ID, client.IntegrationUpdate{Freshness: str("soon")})
	wantFieldError(t, "a window that is no duration", err, "freshness", `"soon" is not a duration`)

	for _, body := range []struct{ field, json string }{
		{"scope", `{"scope": {"classes": ["policy"]}}`},
		{"name", `{"name": "desk"}`},
	} {
		req, _ := http.NewRequest(http.MethodPatch, c.BaseURL()+"/v1/integrations/"+help.ID, strings.NewReader(body.json))
		req.Header.Set("Authorization", "Bearer "+c.Token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("PATCH with %s: status %d, want 400", body.field, resp.StatusCode)
		}
	}

	in, outcome, err := c.UpdateIntegration(ctx, help.ID, client.IntegrationUpdate{Freshness: str("20m")})
	if err != nil || outcome != client.OutcomeUpdated || in.Freshness.Window != "20m0s" || in.ID != help.ID {
		t.Errorf("window 20m: %s %s %s, err %v; want updated to 20m0s with the same id", in.ID, outcome, in.Freshness.Window, err)
	}
	_, outcome, err = c.UpdateIntegration(ctx, help.ID, client.IntegrationUpdate{Freshness: str("20m"), Pattern: str("auto")})
	if err != nil || outcome != client.OutcomeUnchanged {
		t.Errorf("the same window again: %s, err %v; want unchanged", outcome, err)
	}
	if _, _, err := c.UpdateIntegration(ctx, "int_0000000000000000", client.IntegrationUpdate{Freshness: str("1m")}); !client.IsNotFound(err) {
		t.Errorf("update of an unknown integration: err = %v, want 404", err)
	}

	// An explicit pull of policy slower than its window needs accept_risk,
	// in an update as at creation.
	archive, err := c.CreateIntegration(ctx, client.IntegrationRequest{Name: "archive", Pattern: "pull", Freshness: "1h", PollInterval: "15m",
		Scope: client.Scope{Classes: []string{"policy"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.UpdateIntegration(ctx, archive.ID, client.IntegrationUpdate{Freshness: str("5m")})
	wantFieldError(t, "a pull of policy with a window under the polling interval", err, "pattern", "accept_risk")
	in, outcome, err = c.UpdateIntegration(ctx, archive.ID, client.IntegrationUpdate{Freshness: str("5m"), AcceptRisk: &yes})
	if err != nil || outcome != client.OutcomeUpdated || !strings.Contains(strings.Join(in.Reasons, " "), "risk was accepted") {
		t.Errorf("with accept_risk: %s, reasons %q, err %v; want updated with the accepted risk in the reasons", outcome, in.Reasons, err)
	}
}
