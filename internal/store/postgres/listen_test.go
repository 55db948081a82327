package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/store"
)

// startListener runs ListenChanges on s until the test ends and returns the
// channel of cursors that fn receives.
func startListener(t *testing.T, s *Store) <-chan int64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cursors := make(chan int64, 100)
	done := make(chan error, 1)
	go func() { done <- s.ListenChanges(ctx, func(c int64) { cursors <- c }) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return cursors
}

// nextCursor returns the next cursor that the listener received, failing
// the test after 10s.
func nextCursor(t *testing.T, name string, cursors <-chan int64) int64 {
	t.Helper()
	select {
	case c := <-cursors:
		return c
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the listener received no cursor within 10s", name)
		return 0
	}
}

// TestListenChangesAcrossStores saves through one Store and listens through
// another on the same schema, as two hub processes do.
func TestListenChangesAcrossStores(t *testing.T) {
	url := testURL(t)
	schema := newSchema(t, url)
	ctx := context.Background()
	var stores [2]*Store
	for i := range stores {
		s, err := Open(ctx, url, Options{Schema: schema})
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	listener, writer := stores[0], stores[1]
	if listener.channel != writer.channel {
		t.Fatalf("stores on one schema use channels %q and %q, want the same", listener.channel, writer.channel)
	}

	first, err := writer.SaveArticle(ctx, newTestArticle("before"), store.SaveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cursors := startListener(t, listener)
	// The first call carries the head cursor, and so also shows that LISTEN
	// is in effect.
	if got := nextCursor(t, "head", cursors); got != first.Change.Cursor {
		t.Errorf("first cursor = %d, want the head cursor %d", got, first.Change.Cursor)
	}

	for _, id := range []string{"one", "two"} {
		res, err := writer.SaveArticle(ctx, newTestArticle(id), store.SaveOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := nextCursor(t, "save of "+id, cursors); got != res.Change.Cursor {
			t.Errorf("cursor after saving %q = %d, want %d", id, got, res.Change.Cursor)
		}
	}

	// Unchanged content commits no change, so it sends no notification.
	if _, err := writer.SaveArticle(ctx, newTestArticle("two"), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-cursors:
		t.Errorf("an unchanged save sent cursor %d, want nothing", c)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestListenChangesSchemasApart checks that a store does not receive the
// changes of another schema in the same database.
func TestListenChangesSchemasApart(t *testing.T) {
	listener := openTest(t, Options{})
	other := openTest(t, Options{})
	if listener.channel == other.channel {
		t.Fatalf("stores on two schemas share channel %q", listener.channel)
	}
	cursors := startListener(t, listener)
	nextCursor(t, "head", cursors)
	ctx := context.Background()
	if _, err := other.SaveArticle(ctx, newTestArticle("elsewhere"), store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := listener.SaveArticle(ctx, newTestArticle("here"), store.SaveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// PostgreSQL delivers notifications in commit order, so a stray one
	// from the other schema would arrive first.
	if got := nextCursor(t, "save", cursors); got != res.Change.Cursor {
		t.Errorf("cursor = %d, want %d of the listener's own schema", got, res.Change.Cursor)
	}
}

func TestListenChangesStopsWithContext(t *testing.T) {
	s := openTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- s.ListenChanges(ctx, func(int64) {
			select {
			case started <- struct{}{}:
			default:
			}
		})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("ListenChanges returned before listening: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("ListenChanges did not start listening within 10s")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("ListenChanges after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ListenChanges did not return within 10s of the cancel")
	}
}
