package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// saveOverdue stores a policy written 72 hours ago that requires a review
// every 48 hours, so its review fell due 24 hours ago. The hub's own
// SaveArticle takes the commit time, which the API does not.
func saveOverdue(t *testing.T, h interface {
	SaveArticle(context.Context, knowledge.Article, store.SaveOptions) (store.SaveResult, error)
}, id string) knowledge.Article {
	t.Helper()
	in := knowledge.Article{ID: id, Title: "Visitor badges", Body: "Every visitor wears a badge.", Collection: "handbook",
		Class: knowledge.ClassPolicy, ReviewEvery: 48 * time.Hour, Owner: "security-team"}
	res, err := h.SaveArticle(context.Background(), in, store.SaveOptions{Now: time.Now().Add(-72 * time.Hour)})
	if err != nil {
		t.Fatalf("save %s: %v", id, err)
	}
	return res.Article
}

func TestReviewOverdueInArticleSearchAndEvent(t *testing.T) {
	a, c := startHub(t)
	ctx := context.Background()
	old := saveOverdue(t, a.Hub, "pol-badges")
	fresh := article("pol-keys", "policy", "Key cabinet", "Every visitor signs for a key.")
	fresh.ReviewEvery, fresh.Owner = "2160h", "facilities@example.com"
	written := put(t, c, fresh)

	// The write returns the review state of the version it stored.
	if written.ReviewEvery != "2160h" || written.Owner != "facilities@example.com" {
		t.Errorf("PUT returned review_every %q and owner %q, want 2160h and facilities@example.com", written.ReviewEvery, written.Owner)
	}
	if want := written.UpdatedAt.Add(2160 * time.Hour); !written.ReviewDue.Equal(want) {
		t.Errorf("PUT returned review_due %v, want updated_at plus 2160h, %v", written.ReviewDue, want)
	}
	if written.ReviewOverdue {
		t.Error("a version written now is overdue, want not")
	}

	got, err := c.GetArticle(ctx, "pol-badges")
	if err != nil {
		t.Fatal(err)
	}
	if !got.ReviewOverdue {
		t.Error("GET of an article due 24h ago: review_overdue false, want true")
	}
	if want := old.UpdatedAt.Add(48 * time.Hour); !got.ReviewDue.Equal(want) {
		t.Errorf("GET review_due = %v, want %v", got.ReviewDue, want)
	}
	if got.ReviewEvery != "48h" || got.Owner != "security-team" {
		t.Errorf("GET review_every %q and owner %q, want 48h and security-team", got.ReviewEvery, got.Owner)
	}

	// Stored versions show the fields that were written, but no review
	// state: a later version would be a review.
	versions := do(t, rawRequest(t, c, http.MethodGet, "/v1/articles/pol-badges/versions/1", nil))
	if versions.StatusCode != http.StatusOK || strings.Contains(string(versions.body), "review_due") || !strings.Contains(string(versions.body), `"review_every":"48h"`) {
		t.Errorf("GET of version 1 = %d %s, want review_every without review_due", versions.StatusCode, versions.body)
	}

	_, pc := createPullIntegration(t, c, "front-desk", client.Scope{Classes: []string{"policy"}})
	res, err := pc.Search(ctx, "visitor", client.SearchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hits := map[string]client.SearchHit{}
	for _, h := range res.Hits {
		hits[h.ID] = h
	}
	if h := hits["pol-badges"]; !h.ReviewOverdue || h.Owner != "security-team" {
		t.Errorf("search hit pol-badges: overdue %v, owner %q; want true, security-team", h.ReviewOverdue, h.Owner)
	}
	if h := hits["pol-keys"]; h.ReviewOverdue || h.Owner != "facilities@example.com" {
		t.Errorf("search hit pol-keys: overdue %v, owner %q; want false, facilities@example.com", h.ReviewOverdue, h.Owner)
	}

	found, err := pc.Lookup(ctx, client.LookupRequest{Text: "visitor badge"})
	if err != nil {
		t.Fatal(err)
	}
	lookupHits := map[string]client.LookupHit{}
	for _, h := range found.Hits {
		lookupHits[h.ID] = h
	}
	if h, ok := lookupHits["pol-badges"]; !ok || !h.ReviewOverdue || h.Owner != "security-team" {
		t.Errorf("lookup hit pol-badges (found %v): overdue %v, owner %q; want true, security-team", ok, h.ReviewOverdue, h.Owner)
	}

	// A new push integration first receives what exists, so the overdue
	// version arrives now with its due time in the past.
	rv := newReceiver(t)
	createPush(t, c, rv, client.IntegrationRequest{Name: "board", Freshness: "1m", Scope: client.Scope{Classes: []string{"policy"}}})
	evs := rv.waitFor("both policies", func(evs []client.Event) bool { return len(evs) >= 2 })
	if f := rv.verificationFailures(); len(f) > 0 {
		t.Fatalf("webhook verification failed: %v", f)
	}
	for _, ev := range evs {
		if ev.Subject != "pol-badges" {
			continue
		}
		if !ev.Data.ReviewDue.Equal(old.UpdatedAt.Add(48 * time.Hour)) {
			t.Errorf("event review_due = %v, want %v", ev.Data.ReviewDue, old.UpdatedAt.Add(48*time.Hour))
		}
		if !ev.Data.ReviewDue.Before(time.Now()) {
			t.Errorf("event review_due %v is not in the past, so a receiver would not see the review as overdue", ev.Data.ReviewDue)
		}
		if ev.Data.ReviewEvery != "48h" || ev.Data.Owner != "security-team" {
			t.Errorf("event review_every %q and owner %q, want 48h and security-team", ev.Data.ReviewEvery, ev.Data.Owner)
		}
		rv.mu.Lock()
		body := rv.bodies[ev.ID]
		rv.mu.Unlock()
		if strings.Contains(string(body), "review_overdue") {
			t.Errorf("event body %s carries review_overdue, which would differ between retries", body)
		}
		return
	}
	t.Errorf("no event for pol-badges among %d events", len(evs))
}

func TestReviewFieldsRejected(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	tests := []struct {
		name        string
		reviewEvery string
		owner       string
		wantField   string
		wantMessage string
	}{
		{name: "days", reviewEvery: "90d", wantField: "review_every", wantMessage: `"90d" is not a duration`},
		{name: "too short", reviewEvery: "1h", wantField: "review_every", wantMessage: "the minimum is 24h"},
		{name: "too long", reviewEvery: "50000h", wantField: "review_every", wantMessage: "the maximum is 43800h"},
		{name: "owner too long", owner: strings.Repeat("x", 201), wantField: "owner", wantMessage: "201 characters long"},
		{name: "owner with a line break", owner: "sre\nops", wantField: "owner", wantMessage: "control character U+000A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := article("rb-x", "runbook", "X", "Body.")
			in.ReviewEvery, in.Owner = tt.reviewEvery, tt.owner
			_, _, err := c.PutArticle(ctx, in)
			e := wantAPIError(t, tt.name, err, http.StatusBadRequest, tt.wantField)
			if !strings.Contains(e.Message, tt.wantMessage) {
				t.Errorf("message = %q, want it to contain %q", e.Message, tt.wantMessage)
			}
		})
	}
}
