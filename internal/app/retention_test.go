package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/app"
)

func TestRetentionPrunesAtStart(t *testing.T) {
	dir := t.TempDir()
	first, c := startHub(t, func(cfg *app.Config) { cfg.DataDir = dir })
	put(t, c, article("rb-1", "runbook", "Restart the queue", "Drain first."))
	last := put(t, c, article("rb-2", "runbook", "Rotate the keys", "Rotate."))
	if err := first.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	// The pruner runs once as the hub starts, so entries older than a
	// millisecond go at once, except the newest, which keeps the head.
	second, _ := startHub(t, func(cfg *app.Config) {
		cfg.DataDir = dir
		cfg.ChangeRetention = time.Millisecond
	})
	ctx := context.Background()
	var oldest, head int64
	eventually(t, "pruned change log", func() bool {
		var err error
		oldest, err = second.Store.OldestCursor(ctx)
		return err == nil && oldest > 1
	})
	head, err := second.Store.HeadCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if oldest != head {
		t.Errorf("oldest cursor %d, head %d: want only the newest entry kept", oldest, head)
	}
	if _, err := second.Store.GetArticle(ctx, last.ID); err != nil {
		t.Errorf("article after pruning: %v", err)
	}
}
