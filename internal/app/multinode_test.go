package app_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/app"
	"github.com/khub-dev/khub/internal/testpg"
)

// sharedPostgres returns a mutator that puts a hub on a new PostgreSQL
// schema, shared by every hub started with the same mutator, or skips the
// test without a database (fails in CI).
func sharedPostgres(t testing.TB) func(*app.Config) {
	t.Helper()
	url := testpg.URL(t)
	schema := testpg.Schema(t, url, "khub_app_")
	return func(c *app.Config) {
		c.DatabaseURL = url
		c.DatabaseSchema = schema
		c.AdminToken = "shared-admin-token-0123456789"
		// Only a notification can wake the other node within the test.
		c.HeadPollInterval = time.Hour
	}
}

func TestLongPollWakesForOtherNode(t *testing.T) {
	shared := sharedPostgres(t)
	_, nodeA := startHub(t, shared)
	_, nodeB := startHub(t, shared)
	ctx := context.Background()

	type result struct {
		page client.ChangesPage
		err  error
	}
	done := make(chan result, 1)
	go func() {
		page, err := nodeA.Changes(ctx, 0, 10, 30*time.Second)
		done <- result{page, err}
	}()
	// Let the long poll start waiting before the write.
	time.Sleep(100 * time.Millisecond)
	put(t, nodeB, article("rb-1", "runbook", "Restart the queue", "Drain first."))

	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.page.Changes) != 1 || r.page.Changes[0].ArticleID != "rb-1" {
		t.Errorf("long poll on node A returned %+v, want the change written through node B", r.page.Changes)
	}
}

func TestDataDirLockedByOneProcess(t *testing.T) {
	first, _ := startHub(t)
	_, err := app.Open(app.Config{DataDir: first.Config().DataDir, Addr: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "in use by another khub process") {
		t.Fatalf("second Open on the same data directory: error %v, want it to say the directory is in use", err)
	}
}

func TestChangeFeedAfterRetentionSaysResync(t *testing.T) {
	a, c := startHub(t)
	ctx := context.Background()
	put(t, c, article("rb-1", "runbook", "Restart the queue", "Drain first."))
	put(t, c, article("rb-2", "runbook", "Rotate the keys", "Rotate."))
	if _, err := a.Store.PruneChanges(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	req := mustRequest(t, http.MethodGet, c, "/v1/changes?after=0", nil, "admin")
	resp := do(t, req)
	if resp.StatusCode != http.StatusGone || !strings.Contains(string(resp.body), "resync_required") {
		t.Errorf("feed behind retention = %d %s, want 410 resync_required", resp.StatusCode, resp.body)
	}
	oldest, err := a.Store.OldestCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	page, err := c.Changes(ctx, oldest-1, 10, 0)
	if err != nil || len(page.Changes) != 1 {
		t.Errorf("feed from the oldest kept entry = %+v, %v; want the one kept change", page.Changes, err)
	}
}
