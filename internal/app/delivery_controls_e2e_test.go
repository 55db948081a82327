package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/app"
	"github.com/khub-dev/khub/internal/push"
)

// fastRefresh makes dispatchers re-read their integration every 50ms, so
// that a resume or a rotated secret takes effect quickly.
func fastRefresh(cfg *app.Config) { cfg.Push.StateRefresh = 50 * time.Millisecond }

// slowRefresh makes dispatchers re-read their integration only every hour,
// so that an operator's change reaches them only when the hub tells them.
func slowRefresh(cfg *app.Config) { cfg.Push.StateRefresh = time.Hour }

// wantAPIError fails the test unless err is an API error with the status
// and field.
func wantAPIError(t *testing.T, what string, err error, status int, field string) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: err = %v, want a %d error", what, err, status)
	}
	if e.StatusCode != status || e.Field != field {
		t.Errorf("%s: %d field %q (%s), want %d field %q", what, e.StatusCode, e.Field, e.Message, status, field)
	}
	return e
}

// postRaw posts a raw JSON body and returns the status and error detail.
func postRaw(t *testing.T, c *client.Client, path, body string) (int, client.ErrorDetail) {
	t.Helper()
	resp := do(t, rawRequest(t, c, http.MethodPost, path, strings.NewReader(body)))
	var eb client.ErrorBody
	_ = json.Unmarshal(resp.body, &eb)
	return resp.StatusCode, eb.Error
}

func TestCreateWithDeliverySettingsRoundTrip(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	rv := newReceiver(t)
	in := createPush(t, c, rv, client.IntegrationRequest{Name: "board", Freshness: "1m", Scope: client.Scope{Classes: []string{"policy"}},
		Delivery: &client.DeliverySettings{InitialBackoff: "1s", RetryFor: "2h", Timeout: "3s", BatchSize: 5, Coalesce: true, RateLimit: 2.5, PauseAfter: 4, ProbeEvery: "30s"}})
	// max_backoff was left out: the hub's default (50ms in these tests)
	// is raised to initial_backoff, as the dispatcher applies it.
	want := client.DeliverySettings{InitialBackoff: "1s", MaxBackoff: "1s", RetryFor: "2h0m0s", Timeout: "3s", BatchSize: 5, Coalesce: true, RateLimit: 2.5, PauseAfter: 4, ProbeEvery: "30s"}
	if in.Delivery == nil || *in.Delivery != want {
		t.Errorf("created with delivery %+v, want %+v", in.Delivery, want)
	}
	if in.State != client.StateActive || in.StateReason != "" || in.PreviousSecretExpiresAt != nil {
		t.Errorf("new integration: state %q reason %q rotation %v, want active with no reason and no rotation", in.State, in.StateReason, in.PreviousSecretExpiresAt)
	}
	got, err := c.GetIntegration(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Delivery == nil || *got.Delivery != want || got.State != client.StateActive {
		t.Errorf("read back delivery %+v state %q, want %+v active", got.Delivery, got.State, want)
	}

	plain := createPush(t, c, rv, client.IntegrationRequest{Name: "plain", Freshness: "1m", Scope: client.Scope{Classes: []string{"safety"}}})
	defaults := client.DeliverySettings{InitialBackoff: "10ms", MaxBackoff: "50ms", RetryFor: "72h0m0s", Timeout: "2s", BatchSize: 1, PauseAfter: 10, ProbeEvery: "50ms"}
	if plain.Delivery == nil || *plain.Delivery != defaults {
		t.Errorf("integration without delivery settings shows %+v, want the hub's defaults %+v", plain.Delivery, defaults)
	}
	pull, err := c.CreateIntegration(ctx, client.IntegrationRequest{Name: "helpdesk", Freshness: "15m", Lookups: true, Scope: client.Scope{Classes: []string{"runbook"}}})
	if err != nil {
		t.Fatal(err)
	}
	if pull.Delivery != nil || pull.State != "" {
		t.Errorf("pull integration shows delivery %+v and state %q, want neither", pull.Delivery, pull.State)
	}

	all, err := c.ListIntegrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range all {
		if x.ID == in.ID && (x.Delivery == nil || *x.Delivery != want) {
			t.Errorf("list shows delivery %+v, want %+v", x.Delivery, want)
		}
	}

	// The settings are in force: five changes arrive in batches, so fewer
	// than five requests carry them.
	for i := range 5 {
		put(t, c, article(fmt.Sprintf("p%d", i), "policy", "Policy", "Text."))
	}
	rv.waitFor("five policies", func(evs []client.Event) bool { return len(evs) == 5 })
	rv.mu.Lock()
	requests := len(rv.ids)
	rv.mu.Unlock()
	if requests >= 5 {
		t.Errorf("five changes took %d requests with batch_size 5, want fewer", requests)
	}
}

func TestCreateRejectsBadDeliveryAndWebhooks(t *testing.T) {
	_, c := startHub(t, func(cfg *app.Config) { cfg.AllowPrivate = false })
	const pushBody = `{"name":"x","freshness":"1m","scope":{"classes":["safety"]},"webhook":{"url":"https://93.184.215.14/h"},"delivery":%s}`
	const autoPull = `{"name":"x","freshness":"15m","lookups":true,"scope":{"classes":["runbook"]}%s}`
	cases := []struct {
		name, body, field string
	}{
		{"tiny initial backoff", fmt.Sprintf(pushBody, `{"initial_backoff":"1ns"}`), "delivery.initial_backoff"},
		{"not a duration", fmt.Sprintf(pushBody, `{"timeout":"soon"}`), "delivery.timeout"},
		{"negative retry", fmt.Sprintf(pushBody, `{"retry_for":"-1h"}`), "delivery.retry_for"},
		{"max below initial", fmt.Sprintf(pushBody, `{"initial_backoff":"2s","max_backoff":"1s"}`), "delivery.max_backoff"},
		{"batch too large", fmt.Sprintf(pushBody, `{"batch_size":501}`), "delivery.batch_size"},
		{"batch not an integer", fmt.Sprintf(pushBody, `{"batch_size":1.5}`), "delivery.batch_size"},
		{"negative rate", fmt.Sprintf(pushBody, `{"rate_limit":-1}`), "delivery.rate_limit"},
		{"negative pause", fmt.Sprintf(pushBody, `{"pause_after":-2}`), "delivery.pause_after"},
		{"long probe", fmt.Sprintf(pushBody, `{"probe_every":"48h"}`), "delivery.probe_every"},
		{"delivery on auto pull", fmt.Sprintf(autoPull, `,"delivery":{"batch_size":2}`), "delivery"},
		{"delivery on explicit pull", `{"name":"x","freshness":"15m","pattern":"pull","scope":{"classes":["runbook"]},"delivery":{}}`, "delivery"},
		{"webhook on auto pull", fmt.Sprintf(autoPull, `,"webhook":{"url":"https://93.184.215.14/h"}`), "webhook"},
		{"metadata webhook on auto pull", fmt.Sprintf(autoPull, `,"webhook":{"url":"http://169.254.169.254/"}`), "webhook.url"},
		{"ftp webhook on auto pull", fmt.Sprintf(autoPull, `,"webhook":{"url":"ftp://files.example.com/x"}`), "webhook.url"},
		{"bad secret on auto pull", fmt.Sprintf(autoPull, `,"webhook":{"url":"https://93.184.215.14/h","secret":"hunter2"}`), "webhook.secret"},
		{"bell in name", `{"name":"help\u0007desk","freshness":"15m","lookups":true}`, "name"},
		{"NUL in name", `{"name":"help\u0000desk","freshness":"15m","lookups":true}`, "name"},
		{"NUL in scope metadata key", `{"name":"x","freshness":"15m","lookups":true,"scope":{"classes":["runbook"],"metadata":{"a\u0000b":"x"}}}`, "scope.metadata"},
		{"empty key in scope metadata", `{"name":"x","freshness":"15m","lookups":true,"scope":{"classes":["runbook"],"metadata":{"":"x"}}}`, "scope.metadata"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, detail := postRaw(t, c, "/v1/integrations", tc.body)
			if status != http.StatusBadRequest || detail.Field != tc.field {
				t.Errorf("status %d field %q (%s), want 400 field %q", status, detail.Field, detail.Message, tc.field)
			}
			if detail.Message == "" {
				t.Error("error message is empty")
			}
			if tc.field == "webhook" && (!strings.Contains(detail.Message, "auto chose pull") || !strings.Contains(detail.Message, "looks knowledge up")) {
				t.Errorf("message %q does not say that auto chose pull and why", detail.Message)
			}
			if tc.field == "delivery" && !strings.Contains(detail.Message, "pull") {
				t.Errorf("message %q does not say the pattern is pull", detail.Message)
			}
		})
	}
	all, err := c.ListIntegrations(context.Background())
	if err != nil || len(all) != 0 {
		t.Errorf("rejected creates left %d integrations behind (err %v)", len(all), err)
	}
}

func TestResumeAfterGoneDeliversTheWaitingChange(t *testing.T) {
	_, c := startHub(t, slowRefresh)
	ctx := context.Background()
	rv := newReceiver(t)
	rv.mu.Lock()
	rv.status = http.StatusGone
	rv.mu.Unlock()
	in := createPush(t, c, rv, client.IntegrationRequest{Name: "board", Freshness: "1m", Scope: client.Scope{Classes: []string{"policy"}}})

	put(t, c, article("p1", "policy", "Travel", "Book economy."))
	var disabled client.Integration
	eventually(t, "disabled after 410", func() bool {
		var err error
		disabled, err = c.GetIntegration(ctx, in.ID)
		return err == nil && disabled.State == client.StateDisabled
	})
	if !strings.Contains(disabled.StateReason, "410") || disabled.StateSince == nil {
		t.Errorf("disabled with reason %q since %v, want the 410 named and a time", disabled.StateReason, disabled.StateSince)
	}
	// A change that commits while disabled waits as well.
	put(t, c, article("p2", "policy", "Expenses", "Keep receipts."))
	time.Sleep(200 * time.Millisecond)
	if evs := rv.received(); len(evs) != 0 {
		t.Fatalf("a disabled integration delivered %d events", len(evs))
	}

	rv.mu.Lock()
	rv.status = 0
	rv.mu.Unlock()
	resumed, err := c.ResumeIntegration(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if resumed.State != client.StateActive || resumed.StateReason != "resumed by an operator" {
		t.Errorf("after resume: state %q reason %q, want active and resumed by an operator", resumed.State, resumed.StateReason)
	}
	evs := rv.waitFor("both waiting changes", func(evs []client.Event) bool { return len(evs) >= 2 })
	if evs[0].Subject != "p1" || evs[1].Subject != "p2" {
		t.Errorf("delivered %s then %s, want p1 then p2", evs[0].Subject, evs[1].Subject)
	}
	rv.mu.Lock()
	refusedThenDelivered := len(rv.ids[evs[0].ID])
	rv.mu.Unlock()
	if refusedThenDelivered < 2 {
		t.Errorf("webhook-id %s was sent %d times, want the refused attempt and the delivery under one id", evs[0].ID, refusedThenDelivered)
	}
	if f := rv.verificationFailures(); len(f) > 0 {
		t.Errorf("signature verification failed: %v", f)
	}

	pull, err := c.CreateIntegration(ctx, client.IntegrationRequest{Name: "helpdesk", Freshness: "15m", Lookups: true, Scope: client.Scope{Classes: []string{"runbook"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ResumeIntegration(ctx, pull.ID)
	if e := wantAPIError(t, "resume of a pull integration", err, http.StatusConflict, ""); e != nil && !strings.Contains(e.Message, "pull") {
		t.Errorf("message %q does not say the integration pulls", e.Message)
	}
	_, err = c.ResumeIntegration(ctx, "int_missing")
	wantAPIError(t, "resume of a missing integration", err, http.StatusNotFound, "")
}

// capture is a webhook endpoint on loopback that keeps every request's
// headers and body, so a test can verify them with several secrets.
type capture struct {
	mu       sync.Mutex
	requests []captured
}

type captured struct {
	header http.Header
	body   []byte
}

func newCapture(t *testing.T) (*capture, string) {
	t.Helper()
	cp := &capture{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		cp.mu.Lock()
		cp.requests = append(cp.requests, captured{r.Header.Clone(), body})
		cp.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return cp, "http://" + ln.Addr().String() + "/hook"
}

// waitBody returns the first request whose body contains text.
func (cp *capture) waitBody(t *testing.T, text string) captured {
	t.Helper()
	var found captured
	eventually(t, "a request carrying "+text, func() bool {
		cp.mu.Lock()
		defer cp.mu.Unlock()
		for _, r := range cp.requests {
			if strings.Contains(string(r.body), text) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

func verifier(t *testing.T, secret string) *standardwebhooks.Webhook {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return wh
}

func TestRotateSecretOverlap(t *testing.T) {
	// The rotation must reach the dispatcher without a state refresh.
	_, c := startHub(t, slowRefresh)
	ctx := context.Background()
	cp, url := newCapture(t)
	oldSecret := push.NewSecret()
	in, err := c.CreateIntegration(ctx, client.IntegrationRequest{Name: "board", Freshness: "1m", Scope: client.Scope{Classes: []string{"policy"}},
		Webhook: &client.Webhook{URL: url, Secret: oldSecret}})
	if err != nil {
		t.Fatal(err)
	}
	oldOnly := verifier(t, oldSecret)
	put(t, c, article("p1", "policy", "Travel", "before rotation"))
	if r := cp.waitBody(t, "before rotation"); oldOnly.Verify(r.body, r.header) != nil {
		t.Fatal("the request before the rotation does not verify with the secret given at creation")
	}

	const overlap = 2 * time.Second
	rotated, err := c.RotateSecret(ctx, in.ID, client.RotateSecretRequest{Overlap: overlap.String()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rotated.Secret, "whsec_") || rotated.Secret == oldSecret {
		t.Fatalf("rotation returned secret %q, want a new whsec_ secret", rotated.Secret)
	}
	if d := time.Until(rotated.PreviousSecretExpiresAt); d <= 0 || d > overlap {
		t.Errorf("overlap ends in %s, want within %s", d, overlap)
	}
	resp := do(t, rawRequest(t, c, http.MethodGet, "/v1/integrations/"+in.ID, nil))
	if strings.Contains(string(resp.body), rotated.Secret) || strings.Contains(string(resp.body), oldSecret) {
		t.Errorf("GET shows a secret: %s", resp.body)
	}
	var view client.Integration
	if err := json.Unmarshal(resp.body, &view); err != nil {
		t.Fatal(err)
	}
	if view.PreviousSecretExpiresAt == nil || !view.PreviousSecretExpiresAt.Equal(rotated.PreviousSecretExpiresAt) {
		t.Errorf("GET shows previous_secret_expires_at %v, want %v", view.PreviousSecretExpiresAt, rotated.PreviousSecretExpiresAt)
	}

	// The rotation reaches the dispatcher before its next request, so a
	// receiver can switch to the new secret at once. Until the overlap
	// ends, a receiver with either secret alone accepts every request.
	newOnly := verifier(t, rotated.Secret)
	put(t, c, article("p1", "policy", "Travel", "during overlap"))
	during := cp.waitBody(t, "during overlap")
	if err := newOnly.Verify(during.body, during.header); err != nil {
		t.Errorf("the first request after the rotation does not verify with the new secret: %v", err)
	}
	if err := oldOnly.Verify(during.body, during.header); err != nil {
		t.Errorf("during the overlap a receiver with only the old secret rejects the request: %v", err)
	}

	// After the overlap, only the new secret signs.
	time.Sleep(time.Until(rotated.PreviousSecretExpiresAt) + 200*time.Millisecond)
	put(t, c, article("p1", "policy", "Travel", "after overlap"))
	after := cp.waitBody(t, "after overlap")
	if err := newOnly.Verify(after.body, after.header); err != nil {
		t.Errorf("after the overlap the new secret does not verify: %v", err)
	}
	if oldOnly.Verify(after.body, after.header) == nil {
		t.Error("after the overlap the request still verifies with the old secret")
	}
	if got, err := c.GetIntegration(ctx, in.ID); err != nil || got.PreviousSecretExpiresAt != nil {
		t.Errorf("after the overlap GET shows previous_secret_expires_at %v (err %v), want none", got.PreviousSecretExpiresAt, err)
	}

	for _, tc := range []struct {
		req   client.RotateSecretRequest
		field string
	}{
		{client.RotateSecretRequest{Overlap: "721h"}, "overlap"},
		{client.RotateSecretRequest{Overlap: "-1h"}, "overlap"},
		{client.RotateSecretRequest{Overlap: "a day"}, "overlap"},
		{client.RotateSecretRequest{Secret: "hunter2"}, "secret"},
		{client.RotateSecretRequest{Secret: rotated.Secret}, "secret"},
	} {
		_, err := c.RotateSecret(ctx, in.ID, tc.req)
		wantAPIError(t, fmt.Sprintf("rotate with %+v", tc.req), err, http.StatusBadRequest, tc.field)
	}
	pull, err := c.CreateIntegration(ctx, client.IntegrationRequest{Name: "helpdesk", Freshness: "15m", Lookups: true, Scope: client.Scope{Classes: []string{"runbook"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.RotateSecret(ctx, pull.ID, client.RotateSecretRequest{})
	wantAPIError(t, "rotate a pull integration", err, http.StatusConflict, "")
}

func TestReplayByCursorRangeAndEventID(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	rv := newReceiver(t)
	in := createPush(t, c, rv, client.IntegrationRequest{Name: "board", Freshness: "1m", Scope: client.Scope{Classes: []string{"policy"}}})
	for _, id := range []string{"p1", "p2", "p3"} {
		put(t, c, article(id, "policy", "Policy "+id, "Text of "+id))
	}
	evs := rv.waitFor("three changes", func(evs []client.Event) bool { return len(evs) == 3 })
	cursor := map[string]int64{}
	for _, ev := range evs {
		var n int64
		fmt.Sscanf(ev.ID, "evt_%d", &n)
		cursor[ev.Subject] = n
	}
	eventually(t, "push cursor at the last change", func() bool {
		got, err := c.GetIntegration(ctx, in.ID)
		return err == nil && got.PushCursor >= cursor["p3"]
	})
	sent := func(id string) int {
		rv.mu.Lock()
		defer rv.mu.Unlock()
		return len(rv.ids[id])
	}
	id := func(article string) string { return fmt.Sprintf("evt_%d", cursor[article]) }

	started, err := c.Replay(ctx, in.ID, client.ReplayRequest{FromCursor: cursor["p1"], ToCursor: cursor["p2"]})
	if err != nil {
		t.Fatal(err)
	}
	if started.FromCursor != cursor["p1"] || started.ToCursor != cursor["p2"] {
		t.Errorf("replay started for %d to %d, want %d to %d", started.FromCursor, started.ToCursor, cursor["p1"], cursor["p2"])
	}
	eventually(t, "p1 and p2 sent again under their webhook-ids", func() bool { return sent(id("p1")) == 2 && sent(id("p2")) == 2 })

	started, err = c.Replay(ctx, in.ID, client.ReplayRequest{EventID: id("p3")})
	if err != nil {
		t.Fatal(err)
	}
	if started.FromCursor != cursor["p3"] || started.ToCursor != cursor["p3"] {
		t.Errorf("replay of %s started for %d to %d, want only %d", id("p3"), started.FromCursor, started.ToCursor, cursor["p3"])
	}
	eventually(t, "p3 sent again under its webhook-id", func() bool { return sent(id("p3")) == 2 })
	time.Sleep(100 * time.Millisecond)
	if sent(id("p1")) != 2 || sent(id("p2")) != 2 {
		t.Errorf("replay of one event also resent others: p1 %d times, p2 %d times", sent(id("p1")), sent(id("p2")))
	}
	for _, ev := range rv.received()[3:] {
		if cursor[ev.Subject] == 0 || ev.ID != id(ev.Subject) {
			t.Errorf("replayed event of %s has id %s, want the original %s", ev.Subject, ev.ID, id(ev.Subject))
		}
	}
	if f := rv.verificationFailures(); len(f) > 0 {
		t.Errorf("signature verification failed: %v", f)
	}
	eventually(t, "replayed attempts in the history", func() bool {
		ds, err := c.QueryDeliveries(ctx, in.ID, client.DeliveryQuery{ArticleID: "p3", Status: "delivered"})
		return err == nil && len(ds) == 2 && ds[0].EventID == ds[1].EventID
	})

	_, err = c.Replay(ctx, in.ID, client.ReplayRequest{FromCursor: cursor["p3"] + 100})
	if e := wantAPIError(t, "replay beyond the push cursor", err, http.StatusConflict, ""); e != nil && !strings.Contains(e.Message, "nothing to replay") {
		t.Errorf("message %q does not say there is nothing to replay", e.Message)
	}
	for _, tc := range []struct {
		body, field string
	}{
		{`{}`, "from_cursor"},
		{`{"from_cursor":-1}`, "from_cursor"},
		{`{"from_cursor":3,"to_cursor":2}`, "to_cursor"},
		{`{"since":"yesterday"}`, "since"},
		{`{"since":"2026-03-02T00:00:00Z","until":"2026-03-01T00:00:00Z"}`, "until"},
		{`{"event_id":"42"}`, "event_id"},
		{`{"event_id":"evt_1","from_cursor":1}`, "event_id"},
		{`{"from":1}`, "from"},
	} {
		status, detail := postRaw(t, c, "/v1/integrations/"+in.ID+"/replay", tc.body)
		if status != http.StatusBadRequest || detail.Field != tc.field {
			t.Errorf("replay %s: %d field %q (%s), want 400 field %q", tc.body, status, detail.Field, detail.Message, tc.field)
		}
	}
	if status, detail := postRaw(t, c, "/v1/integrations/"+in.ID+"/replay", `{}`); !strings.Contains(detail.Message, "event_id") || status != 400 {
		t.Errorf("replay without bounds: message %q does not name the bounds", detail.Message)
	}
	pull, err := c.CreateIntegration(ctx, client.IntegrationRequest{Name: "helpdesk", Freshness: "15m", Lookups: true, Scope: client.Scope{Classes: []string{"runbook"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Replay(ctx, pull.ID, client.ReplayRequest{FromCursor: 1})
	wantAPIError(t, "replay to a pull integration", err, http.StatusConflict, "")
}

func TestDeliveriesFilters(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	rv := newReceiver(t)
	rv.mu.Lock()
	rv.status = http.StatusInternalServerError
	rv.mu.Unlock()
	start := time.Now()
	in := createPush(t, c, rv, client.IntegrationRequest{Name: "board", Freshness: "1m", Scope: client.Scope{Classes: []string{"policy"}}})
	put(t, c, article("p1", "policy", "Travel", "Book economy."))
	eventually(t, "two failed attempts recorded", func() bool {
		ds, err := c.QueryDeliveries(ctx, in.ID, client.DeliveryQuery{Status: "retrying"})
		return err == nil && len(ds) >= 2
	})
	rv.mu.Lock()
	rv.status = 0
	rv.mu.Unlock()
	put(t, c, article("p2", "policy", "Expenses", "Keep receipts."))
	rv.waitFor("both changes", func(evs []client.Event) bool { return len(evs) == 2 })
	eventually(t, "both deliveries recorded", func() bool {
		ds, err := c.QueryDeliveries(ctx, in.ID, client.DeliveryQuery{Status: "delivered"})
		return err == nil && len(ds) == 2
	})

	query := func(q client.DeliveryQuery) []client.Delivery {
		t.Helper()
		ds, err := c.QueryDeliveries(ctx, in.ID, q)
		if err != nil {
			t.Fatalf("query %+v: %v", q, err)
		}
		return ds
	}
	for _, d := range query(client.DeliveryQuery{Status: "retrying"}) {
		if d.Outcome != "retrying" || d.ArticleID != "p1" || d.StatusCode != 500 {
			t.Errorf("status=retrying returned %+v", d)
		}
	}
	if ds := query(client.DeliveryQuery{ArticleID: "p2"}); len(ds) != 1 || ds[0].ArticleID != "p2" {
		t.Errorf("article=p2 returned %+v, want its one delivery", ds)
	}
	if ds := query(client.DeliveryQuery{Since: time.Now().Add(time.Hour)}); len(ds) != 0 {
		t.Errorf("since an hour from now returned %d attempts", len(ds))
	}
	if ds := query(client.DeliveryQuery{Until: start.Add(-time.Second)}); len(ds) != 0 {
		t.Errorf("until before the integration existed returned %d attempts", len(ds))
	}
	if ds := query(client.DeliveryQuery{Since: start.Add(-time.Second), Until: time.Now().Add(time.Second), Limit: 1}); len(ds) != 1 || ds[0].ArticleID != "p2" {
		t.Errorf("limit=1 returned %+v, want the newest attempt", ds)
	}

	for _, tc := range []struct{ query, field string }{
		{"status=lost", "status"},
		{"status=failed&status=delivered", "status"},
		{"article=not%20an%20id", "article"},
		{"since=yesterday", "since"},
		{"until=2026-13-01T00:00:00Z", "until"},
		{"since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", "until"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"outcome=failed", "outcome"},
	} {
		resp := do(t, rawRequest(t, c, http.MethodGet, "/v1/integrations/"+in.ID+"/deliveries?"+tc.query, nil))
		var eb client.ErrorBody
		_ = json.Unmarshal(resp.body, &eb)
		if resp.StatusCode != http.StatusBadRequest || eb.Error.Field != tc.field {
			t.Errorf("deliveries?%s: %d field %q (%s), want 400 field %q", tc.query, resp.StatusCode, eb.Error.Field, eb.Error.Message, tc.field)
		}
	}
}
