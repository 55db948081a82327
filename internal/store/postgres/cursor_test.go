package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// newTestArticle returns a valid, normalized runbook.
func newTestArticle(id string) knowledge.Article {
	a := knowledge.Article{
		ID:         id,
		Title:      "Article " + id,
		Body:       "The body of article " + id + ".",
		Collection: "ops",
		Class:      knowledge.ClassRunbook,
	}
	a.Normalize()
	return a
}

// TestCursorOrderLateCommits runs writers whose commits are delayed at
// random after their cursor is allocated, and a reader that follows the
// change log from ScannedTo. Every committed cursor must reach the reader
// exactly once, in increasing order, with its own version.
func TestCursorOrderLateCommits(t *testing.T) {
	const (
		writers  = 8
		perWrite = 50
		articles = 5 // writers share articles, so versions interleave
	)
	s := openTest(t, Options{BeforeCommit: func() {
		// Hold one write in four open for up to 2ms with its cursor
		// allocated, the window in which a plain sequence lets a later
		// cursor commit first.
		if rand.IntN(4) == 0 {
			time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var (
		mu        sync.Mutex
		committed = map[int64]string{} // cursor to "id@version"
		wg        sync.WaitGroup
		errs      = make(chan error, writers)
	)
	// wake is signalled after each commit, so the reader waits instead of
	// spinning when it has caught up.
	wake := make(chan struct{}, 1)
	writersDone := make(chan struct{})
	for g := range writers {
		wg.Go(func() {
			for i := range perWrite {
				a := newTestArticle(fmt.Sprintf("shared%d", (g+i)%articles))
				a.Body = fmt.Sprintf("Written by writer %d, write %d.", g, i)
				res, err := s.SaveArticle(ctx, a, store.SaveOptions{})
				if err != nil {
					errs <- fmt.Errorf("writer %d write %d: %w", g, i, err)
					return
				}
				mu.Lock()
				committed[res.Change.Cursor] = fmt.Sprintf("%s@%d", res.Change.ArticleID, res.Change.Version)
				mu.Unlock()
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(writersDone)
	}()

	var (
		seen  []knowledge.Change
		after int64
		done  bool
	)
	for {
		page, err := s.ReadChanges(ctx, after, 16)
		if err != nil {
			t.Fatalf("ReadChanges(%d): %v", after, err)
		}
		if page.ScannedTo < after {
			t.Fatalf("ScannedTo moved back from %d to %d", after, page.ScannedTo)
		}
		seen = append(seen, page.Changes...)
		after = page.ScannedTo
		if len(page.Changes) > 0 {
			continue
		}
		if done {
			// The writers had finished before this read, so it saw them all.
			break
		}
		select {
		case <-wake:
		case <-writersDone:
			done = true
		case <-ctx.Done():
			t.Fatalf("reader timed out after %d entries", len(seen))
		}
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	if len(committed) != writers*perWrite {
		t.Errorf("writers got %d distinct cursors, want %d", len(committed), writers*perWrite)
	}
	if len(seen) != len(committed) {
		t.Errorf("reader saw %d entries, want %d", len(seen), len(committed))
	}
	delivered := map[int64]bool{}
	for i, c := range seen {
		if i > 0 && c.Cursor <= seen[i-1].Cursor {
			t.Errorf("entry %d: cursor %d after %d, want increasing", i, c.Cursor, seen[i-1].Cursor)
		}
		if delivered[c.Cursor] {
			t.Errorf("cursor %d arrived twice", c.Cursor)
		}
		delivered[c.Cursor] = true
		if got, want := fmt.Sprintf("%s@%d", c.Article.ID, c.Article.Version), committed[c.Cursor]; got != want {
			t.Errorf("cursor %d carries %s, want %s", c.Cursor, got, want)
		}
	}
	for cursor, key := range committed {
		if !delivered[cursor] {
			t.Errorf("committed cursor %d (%s) never reached the reader", cursor, key)
		}
	}
}

// TestCursorLockHoldsLaterWriter holds one write open after its cursor is
// allocated and checks that a second writer waits for the change-log lock
// instead of allocating and committing a higher cursor first.
func TestCursorLockHoldsLaterWriter(t *testing.T) {
	firstHeld := make(chan struct{})
	release := make(chan struct{})
	var first atomic.Bool
	s := openTest(t, Options{BeforeCommit: func() {
		if first.CompareAndSwap(false, true) {
			close(firstHeld)
			<-release
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Release the held write if the test fails before it does.
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	defer unblock()

	type result struct {
		res store.SaveResult
		err error
	}
	slow, fast := make(chan result, 1), make(chan result, 1)
	go func() {
		res, err := s.SaveArticle(ctx, newTestArticle("slow"), store.SaveOptions{})
		slow <- result{res, err}
	}()
	select {
	case <-firstHeld:
	case <-ctx.Done():
		t.Fatal("the first write never reached BeforeCommit")
	}
	go func() {
		res, err := s.SaveArticle(ctx, newTestArticle("fast"), store.SaveOptions{})
		fast <- result{res, err}
	}()

	// Poll until the second writer waits for the change-log lock.
	ticker := time.NewTicker(5 * time.Millisecond)
	defer ticker.Stop()
	for {
		var waiting bool
		err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted AND classid = $1::bigint::oid AND objid = 0 AND objsubid = 2)`,
			int64(uint32(s.changesOID))).Scan(&waiting)
		if err != nil {
			t.Fatalf("read pg_locks: %v", err)
		}
		if waiting {
			break
		}
		select {
		case r := <-fast:
			t.Fatalf("the second write finished (cursor %d, error %v) while the first was uncommitted", r.res.Change.Cursor, r.err)
		case <-ticker.C:
		case <-ctx.Done():
			t.Fatal("the second writer never waited for the change-log lock")
		}
	}
	if h, err := s.HeadCursor(ctx); err != nil || h != 0 {
		t.Errorf("HeadCursor while both writes are open = %d, %v; want 0", h, err)
	}

	unblock()
	a, b := <-slow, <-fast
	if a.err != nil || b.err != nil {
		t.Fatalf("writes failed: first %v, second %v", a.err, b.err)
	}
	if b.res.Change.Cursor <= a.res.Change.Cursor {
		t.Errorf("second cursor %d is not above the first, %d", b.res.Change.Cursor, a.res.Change.Cursor)
	}
	page, err := s.ReadChanges(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 2 || page.Changes[0].ArticleID != "slow" || page.Changes[1].ArticleID != "fast" {
		t.Errorf("change log = %d entries, want slow then fast", len(page.Changes))
	}
}
