package storetest

import (
	"context"
	"testing"

	"github.com/khub-dev/khub/internal/store"
)

func runRetention(t *testing.T, open opener) {
	subtest(t, "PruneBeforeTime", open, testPruneBeforeTime)
	subtest(t, "PruneKeepsNewest", open, testPruneKeepsNewest)
	subtest(t, "EmptyLog", open, testRetentionEmptyLog)
}

func testPruneBeforeTime(t *testing.T, s store.Store) {
	ctx := context.Background()
	var cursors []int64
	for i, id := range []string{"a", "b", "c", "d"} {
		cursors = append(cursors, saveAt(t, s, newArticle(id), i*10).Change.Cursor)
	}
	deleted, err := s.PruneChanges(ctx, at(15))
	if err != nil {
		t.Fatal(err)
	}
	if deleted != 2 {
		t.Errorf("PruneChanges deleted %d entries, want 2 committed before minute 15", deleted)
	}
	oldest, err := s.OldestCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if oldest != cursors[2] {
		t.Errorf("OldestCursor = %d, want %d", oldest, cursors[2])
	}
	changes, _ := readAll(t, s, 0, 10)
	if len(changes) != 2 || changes[0].Cursor != cursors[2] {
		t.Errorf("log after pruning has cursors %v, want %v", changeKeys(changes), cursors[2:])
	}
	// Versions stay readable after their log entries are gone.
	if _, err := s.GetArticle(ctx, "a"); err != nil {
		t.Errorf("GetArticle after pruning: %v", err)
	}
	next := saveAt(t, s, newArticle("e"), 50).Change.Cursor
	if next <= cursors[3] {
		t.Errorf("cursor after pruning = %d, want above %d: cursors are never reused", next, cursors[3])
	}
}

func testPruneKeepsNewest(t *testing.T, s store.Store) {
	ctx := context.Background()
	saveAt(t, s, newArticle("a"), 0)
	last := saveAt(t, s, newArticle("b"), 1).Change.Cursor
	if _, err := s.PruneChanges(ctx, at(60)); err != nil {
		t.Fatal(err)
	}
	if h := head(t, s); h != last {
		t.Errorf("HeadCursor after pruning everything = %d, want %d kept", h, last)
	}
	oldest, err := s.OldestCursor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if oldest != last {
		t.Errorf("OldestCursor = %d, want the newest entry %d", oldest, last)
	}
}

func testRetentionEmptyLog(t *testing.T, s store.Store) {
	ctx := context.Background()
	deleted, err := s.PruneChanges(ctx, at(0))
	if err != nil || deleted != 0 {
		t.Errorf("PruneChanges on an empty log = %d, %v; want 0, nil", deleted, err)
	}
	if oldest, err := s.OldestCursor(ctx); err != nil || oldest != 0 {
		t.Errorf("OldestCursor on an empty log = %d, %v; want 0, nil", oldest, err)
	}
}
