package push

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
)

func TestBuildEventReviewFields(t *testing.T) {
	updated := time.Date(2025, time.March, 4, 5, 6, 7, 123456000, time.FixedZone("CET", 3600))
	c := &knowledge.Change{
		Cursor: 7, ArticleID: "pol", Version: 2, Type: knowledge.ChangeUpdated, Time: updated,
		Article: knowledge.Article{ID: "pol", Title: "Badges", Body: "Wear one.", Collection: "handbook", Class: knowledge.ClassPolicy,
			Status: knowledge.StatusPublished, Version: 2, CreatedAt: updated, UpdatedAt: updated,
			ReviewEvery: 2160 * time.Hour, Owner: "security-team"},
	}
	first, err := BuildEvent("urn:khub", c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := BuildEvent("urn:khub", c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Errorf("BuildEvent gave different bytes for one change:\n%s\n%s", first, again)
	}

	var ev struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(first, &ev); err != nil {
		t.Fatal(err)
	}
	wantDue := updated.Add(2160 * time.Hour).UTC().Format(time.RFC3339Nano)
	if got := ev.Data["review_due"]; got != wantDue {
		t.Errorf("data.review_due = %v, want %s", got, wantDue)
	}
	if got := ev.Data["review_every"]; got != "2160h" {
		t.Errorf("data.review_every = %v, want 2160h", got)
	}
	if got := ev.Data["owner"]; got != "security-team" {
		t.Errorf("data.owner = %v, want security-team", got)
	}
	if _, ok := ev.Data["review_overdue"]; ok {
		t.Error("data carries review_overdue, which depends on when the event is read")
	}
}

func TestBuildEventWithoutReviewFields(t *testing.T) {
	c := &knowledge.Change{
		Cursor: 1, ArticleID: "rb", Version: 1, Type: knowledge.ChangeCreated, Time: time.Unix(0, 0),
		Article: knowledge.Article{ID: "rb", Title: "Runbook", Collection: "ops", Class: knowledge.ClassRunbook, Version: 1},
	}
	ev, err := BuildEvent("urn:khub", c)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"review_every", "review_due", "review_overdue", "owner"} {
		if strings.Contains(string(ev), `"`+key+`"`) {
			t.Errorf("event of an article without review fields contains %q: %s", key, ev)
		}
	}
}
