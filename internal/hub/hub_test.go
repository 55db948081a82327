package hub_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/khub-dev/khub/internal/changelog"
	"github.com/khub-dev/khub/internal/hub"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/sqlite"
)

// busyStore is a SQLite store in which the next conflicts writes fail with
// store.ErrConflict, as when other writers commit the article first.
type busyStore struct {
	*sqlite.Store
	conflicts atomic.Int64
}

func (s *busyStore) SaveArticle(ctx context.Context, a knowledge.Article, opts store.SaveOptions) (store.SaveResult, error) {
	if s.conflicts.Add(-1) >= 0 {
		return store.SaveResult{}, store.ErrConflict
	}
	return s.Store.SaveArticle(ctx, a, opts)
}

// TestArchiveRetriesConflicts checks that an unconditional archive retries
// writes that other writers made conflict, and that one it gives up on
// asks the caller to send it again.
func TestArchiveRetriesConflicts(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "khub.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	busy := &busyStore{Store: st}
	h := &hub.Hub{Store: busy, Wake: &changelog.Broadcaster{}}
	a := knowledge.Article{ID: "rb", Title: "Runbook", Body: "Steps.", Collection: "ops", Class: knowledge.ClassRunbook}
	if _, err := h.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}

	busy.conflicts.Store(5)
	res, err := h.ArchiveArticle(ctx, "rb", 0)
	if err != nil || res.Article.Status != knowledge.StatusArchived {
		t.Fatalf("archive after 5 conflicts: %v, status %q; want archived", err, res.Article.Status)
	}

	// A conditional archive does not retry: its version is gone.
	busy.conflicts.Store(1)
	if _, err := h.ArchiveArticle(ctx, "rb", res.Article.Version); !errors.Is(err, store.ErrConflict) {
		t.Errorf("conditional archive after a conflict: %v, want ErrConflict", err)
	}

	busy.conflicts.Store(1000)
	_, err = h.ArchiveArticle(ctx, "rb", 0)
	var ce *store.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, store.ErrConflict) || !strings.Contains(ce.Message, "send the request again") {
		t.Errorf("archive that always conflicts: %v, want a ConflictError that says to retry", err)
	}
}
