package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
)

// createPullIntegration creates an integration with pattern pull, which
// may include policies because the tool looks knowledge up, and returns
// it with a client that uses its token.
func createPullIntegration(t *testing.T, c *client.Client, name string, scope client.Scope) (client.Integration, *client.Client) {
	t.Helper()
	in, err := c.CreateIntegration(context.Background(), client.IntegrationRequest{Name: name, Freshness: "15m", Pattern: "pull", Lookups: true, AcceptRisk: true, Scope: scope})
	if err != nil {
		t.Fatalf("create pull integration %s: %v", name, err)
	}
	return in, client.New(c.BaseURL(), in.Token)
}

func getIntegration(t *testing.T, c *client.Client, id string) client.Integration {
	t.Helper()
	in, err := c.GetIntegration(context.Background(), id)
	if err != nil {
		t.Fatalf("get integration %s: %v", id, err)
	}
	return in
}

func appliedArticle(t *testing.T, c *client.Client, integrationID, articleID string) client.AppliedArticle {
	t.Helper()
	out, err := c.AppliedArticle(context.Background(), integrationID, articleID)
	if err != nil {
		t.Fatalf("applied %s for %s: %v", articleID, integrationID, err)
	}
	return out
}

func TestReceiptsRecordedAndReported(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	put(t, c, article("rb-db", "runbook", "Database failover", "Promote the replica."))
	put(t, c, article("rb-db", "runbook", "Database failover", "Promote the replica, then repoint."))
	put(t, c, article("rb-cache", "runbook", "Cache flush", "Flush the cache."))
	put(t, c, article("pol-pw", "policy", "Passwords", "Use 14 characters."))
	in, pc := createPullIntegration(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})

	if a := getIntegration(t, c, in.ID).Applied; a.Articles != 0 || a.Behind != 0 || a.LastReceiptAt != nil {
		t.Errorf("applied before any receipt = %+v, want zero", a)
	}

	before := time.Now()
	if err := pc.Receipt(ctx, "rb-db", 1); err != nil {
		t.Fatalf("receipt rb-db@1: %v", err)
	}
	if err := pc.Receipts(ctx, []client.Receipt{{ArticleID: "rb-cache", Version: 1}}); err != nil {
		t.Fatalf("receipts rb-cache@1: %v", err)
	}
	applied := getIntegration(t, c, in.ID).Applied
	if applied.Articles != 2 || applied.Behind != 1 || applied.BehindCapped {
		t.Errorf("applied = %+v, want 2 articles, 1 behind (rb-db is at version 2)", applied)
	}
	if applied.LastReceiptAt == nil || applied.LastReceiptAt.Before(before.Add(-time.Second)) {
		t.Errorf("last_receipt_at = %v, want a time after %v", applied.LastReceiptAt, before)
	}

	// The tool reads the feed, so khub delivered version 2, but the tool
	// applied only version 1.
	if _, err := pc.Changes(ctx, 0, 100, 0); err != nil {
		t.Fatal(err)
	}
	got := appliedArticle(t, c, in.ID, "rb-db")
	want := client.AppliedArticle{IntegrationID: in.ID, ArticleID: "rb-db", InScope: true, CurrentVersion: 2, DeliveredVersion: 2, AppliedVersion: 1, Behind: true}
	if got.AppliedAt == nil {
		t.Error("applied_at is missing")
	}
	got.AppliedAt = nil
	if got != want {
		t.Errorf("applied rb-db = %+v, want %+v", got, want)
	}

	if err := pc.Receipt(ctx, "rb-db", 2); err != nil {
		t.Fatalf("receipt rb-db@2: %v", err)
	}
	if got := appliedArticle(t, c, in.ID, "rb-db"); got.AppliedVersion != 2 || got.Behind {
		t.Errorf("after rb-db@2: applied %d, behind %v; want 2, false", got.AppliedVersion, got.Behind)
	}
	if a := getIntegration(t, c, in.ID).Applied; a.Behind != 0 {
		t.Errorf("behind = %d after every receipt is current, want 0", a.Behind)
	}
	if got := appliedArticle(t, c, in.ID, "pol-pw"); got.InScope || got.Behind || got.CurrentVersion != 1 || got.DeliveredVersion != 0 {
		t.Errorf("applied pol-pw = %+v, want out of scope, not behind, nothing delivered", got)
	}

	// A new version puts the tool behind again.
	put(t, c, article("rb-cache", "runbook", "Cache flush", "Flush the cache, then warm it."))
	if a := getIntegration(t, c, in.ID).Applied; a.Behind != 1 {
		t.Errorf("behind = %d after rb-cache@2, want 1", a.Behind)
	}
}

func TestReceiptsScopeAndValidation(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	put(t, c, article("rb-db", "runbook", "Database failover", "Promote the replica."))
	put(t, c, article("pol-pw", "policy", "Passwords", "Use 14 characters."))
	in, pc := createPullIntegration(t, c, "helpdesk", client.Scope{Classes: []string{"runbook"}})
	other, _ := createPullIntegration(t, c, "crm", client.Scope{})

	for _, tt := range []struct {
		name      string
		articleID string
		version   int64
	}{
		{"missing version", "rb-db", 2},
		{"outside the scope", "pol-pw", 1},
		{"missing article", "rb-none", 1},
	} {
		err := pc.Receipt(ctx, tt.articleID, tt.version)
		wantAPIError(t, tt.name, err, http.StatusNotFound, "article_id")
	}
	err := pc.Receipts(ctx, []client.Receipt{{ArticleID: "rb-db", Version: 1}, {ArticleID: "pol-pw", Version: 1}})
	e := wantAPIError(t, "a batch with one receipt outside the scope", err, http.StatusNotFound, "receipts[1].article_id")
	if !strings.Contains(e.Message, `article "pol-pw" version 1 not found in the scope of integration`) {
		t.Errorf("message = %q, want it to name the article, version and integration", e.Message)
	}
	if a := getIntegration(t, c, in.ID).Applied; a.Articles != 0 {
		t.Errorf("a rejected batch recorded %d receipts, want none", a.Articles)
	}

	tooMany := make([]client.Receipt, client.MaxReceipts+1)
	for i := range tooMany {
		tooMany[i] = client.Receipt{ArticleID: "rb-db", Version: 1}
	}
	wantAPIError(t, "too many receipts", pc.Receipts(ctx, tooMany), http.StatusBadRequest, "receipts")

	bad := []struct {
		name, body, field string
	}{
		{"both forms", `{"article_id":"rb-db","version":1,"receipts":[{"article_id":"rb-db","version":1}]}`, "receipts"},
		{"neither form", `{}`, "article_id"},
		{"empty list", `{"receipts":[]}`, "receipts"},
		{"version zero", `{"article_id":"rb-db"}`, "version"},
		{"bad id in list", `{"receipts":[{"article_id":"rb-db","version":1},{"article_id":"-x","version":1}]}`, "receipts[1].article_id"},
		{"negative version in list", `{"receipts":[{"article_id":"rb-db","version":-1}]}`, "receipts[0].version"},
		{"another integration", fmt.Sprintf(`{"integration_id":%q,"article_id":"rb-db","version":1}`, other.ID), "integration_id"},
	}
	for _, tt := range bad {
		resp := do(t, mustRequest(t, http.MethodPost, pc, "/v1/receipts", strings.NewReader(tt.body), "pull"))
		wantError(t, resp, http.StatusBadRequest, tt.field)
	}

	// The admin token sends receipts for a named integration, within that
	// integration's scope.
	status, detail := postRaw(t, c, "/v1/receipts", `{"article_id":"rb-db","version":1}`)
	if status != http.StatusBadRequest || detail.Field != "integration_id" {
		t.Errorf("admin receipt without integration_id = %d field %q, want 400 integration_id", status, detail.Field)
	}
	status, detail = postRaw(t, c, "/v1/receipts", `{"integration_id":"int_none","article_id":"rb-db","version":1}`)
	if status != http.StatusNotFound || detail.Field != "integration_id" {
		t.Errorf("admin receipt for an unknown integration = %d field %q, want 404 integration_id", status, detail.Field)
	}
	status, detail = postRaw(t, c, "/v1/receipts", fmt.Sprintf(`{"integration_id":%q,"article_id":"pol-pw","version":1}`, in.ID))
	if status != http.StatusNotFound || detail.Field != "article_id" {
		t.Errorf("admin receipt outside the integration's scope = %d field %q, want 404 article_id", status, detail.Field)
	}
	status, _ = postRaw(t, c, "/v1/receipts", fmt.Sprintf(`{"integration_id":%q,"article_id":"rb-db","version":1}`, in.ID))
	if status != http.StatusOK {
		t.Errorf("admin receipt = %d, want 200", status)
	}
	if a := getIntegration(t, c, in.ID).Applied; a.Articles != 1 {
		t.Errorf("articles = %d after the admin's receipt, want 1", a.Articles)
	}

	// Reading progress is for the admin only, and checks its query.
	if _, err := pc.AppliedArticle(ctx, in.ID, "rb-db"); err == nil {
		t.Error("a pull token read the applied progress, want 403")
	} else {
		wantAPIError(t, "applied with a pull token", err, http.StatusForbidden, "")
	}
	for _, tt := range []struct {
		name, query, field string
		status             int
	}{
		{"no article", "", "article", http.StatusBadRequest},
		{"unknown parameter", "?article=rb-db&x=1", "x", http.StatusBadRequest},
		{"invalid article id", "?article=-x", "article", http.StatusBadRequest},
		{"unknown article", "?article=rb-none", "article", http.StatusNotFound},
	} {
		resp := do(t, rawRequest(t, c, http.MethodGet, "/v1/integrations/"+in.ID+"/applied"+tt.query, nil))
		wantError(t, resp, tt.status, tt.field)
	}
	_, err = c.AppliedArticle(ctx, "int_none", "rb-db")
	wantAPIError(t, "applied of an unknown integration", err, http.StatusNotFound, "")
}

func TestReceiptsBesidePushDeliveries(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	rv := newReceiver(t)
	in := createPush(t, c, rv, client.IntegrationRequest{Name: "board", Freshness: "1m", Scope: client.Scope{Classes: []string{"safety"}}})
	put(t, c, article("s1", "safety", "Forklift lanes", "Keep lanes clear."))
	put(t, c, article("s1", "safety", "Forklift lanes", "Keep lanes clear and marked."))
	rv.waitFor("both versions", func(evs []client.Event) bool { return len(evs) == 2 })
	if f := rv.verificationFailures(); len(f) > 0 {
		t.Fatalf("webhook verification failed: %v", f)
	}

	// A push integration has no pull token, so the admin relays the
	// tool's receipt.
	status, detail := postRaw(t, c, "/v1/receipts", fmt.Sprintf(`{"integration_id":%q,"receipts":[{"article_id":"s1","version":1}]}`, in.ID))
	if status != http.StatusOK {
		t.Fatalf("admin receipt for a push integration = %d %+v, want 200", status, detail)
	}
	var got client.AppliedArticle
	eventually(t, "the delivery of version 2 to be recorded", func() bool {
		got = appliedArticle(t, c, in.ID, "s1")
		return got.DeliveredVersion == 2
	})
	if got.CurrentVersion != 2 || got.AppliedVersion != 1 || !got.Behind {
		t.Errorf("applied s1 = %+v, want current 2, delivered 2, applied 1, behind", got)
	}
	integration := getIntegration(t, c, in.ID)
	if integration.Applied.Articles != 1 || integration.Applied.Behind != 1 {
		t.Errorf("applied = %+v beside push cursor %d, want 1 article, 1 behind", integration.Applied, integration.PushCursor)
	}
	if integration.PushCursor < 2 {
		t.Errorf("push cursor = %d, want both changes delivered", integration.PushCursor)
	}
	_ = ctx
}
