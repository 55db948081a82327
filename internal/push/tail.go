package push

import (
	"context"
	"sync"
	"time"

	"github.com/khub-dev/khub/internal/changelog"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// tailSize is the number of newest change-log entries kept in memory. At
// about 2 KiB an entry it costs a few MiB, and it covers every dispatcher
// that is within a few seconds of the head.
const tailSize = 4096

// tail keeps the newest entries of the change log in memory, so that when
// a commit wakes every caught-up dispatcher, the store is read once rather
// than once per integration. It contains every entry with a cursor in
// (start, end], in order. The log never commits a cursor below one already
// read, so the range has no holes. Dispatchers that are further behind
// read the store directly.
//
// It also keeps each entry's encoded event once a dispatcher has built it,
// so that the dispatchers of one commit encode it once, not once each.
//
// A reader at the end reads the store only when the broadcaster's head is
// past the end, or at most once per pollEvery otherwise. The poll finds
// entries that committed without a notification, such as a PostgreSQL
// entry that committed after a higher one, whose notification does not
// move the head. Without the bound, every idle dispatcher's periodic
// wake-up read the store.
type tail struct {
	st        store.Store
	wake      *changelog.Broadcaster
	pollEvery time.Duration
	source    string // CloudEvents source of the encoded events

	mu       sync.Mutex
	start    int64
	end      int64
	entries  []knowledge.Change
	events   [][]byte  // BuildEvent of entries[i], or nil until built
	filledAt time.Time // start of the last read of the store at the end
}

// read returns up to limit entries after the cursor that match scope, as
// store.ReadChanges does.
func (t *tail) read(ctx context.Context, after int64, limit int, scope knowledge.Scope) (store.ChangePage, error) {
	t.mu.Lock()
	if after < t.start || after > t.end {
		if t.end == 0 && t.start == 0 && len(t.entries) == 0 && after > 0 {
			// An empty tail starts at the first cursor a caught-up reader
			// requests.
			t.start, t.end = after, after
		} else {
			// Read without the lock, so that a reader far behind does not
			// hold up the caught-up ones.
			t.mu.Unlock()
			return t.st.ReadChanges(ctx, after, limit, scope)
		}
	}
	defer t.mu.Unlock()
	if after == t.end && (t.wake.Head() > t.end || time.Since(t.filledAt) >= t.pollEvery) {
		t.filledAt = time.Now()
		if err := t.fill(ctx); err != nil {
			return store.ChangePage{}, err
		}
	}
	page := store.ChangePage{ScannedTo: t.end}
	for i := t.index(after); i < len(t.entries); i++ {
		c := &t.entries[i]
		if !scope.Announces(c) {
			continue
		}
		page.Changes = append(page.Changes, *c)
		if len(page.Changes) == limit {
			page.ScannedTo = c.Cursor
			break
		}
	}
	return page, nil
}

// fill reads the entries after end from the store and appends them,
// dropping the oldest beyond tailSize.
func (t *tail) fill(ctx context.Context) error {
	page, err := t.st.ReadChanges(ctx, t.end, tailSize/4)
	if err != nil {
		return err
	}
	t.entries = append(t.entries, page.Changes...)
	t.events = append(t.events, make([][]byte, len(page.Changes))...)
	t.end = max(t.end, page.ScannedTo)
	if extra := len(t.entries) - tailSize; extra > 0 {
		t.start = t.entries[extra-1].Cursor
		t.entries = append(t.entries[:0:0], t.entries[extra:]...)
		t.events = append(t.events[:0:0], t.events[extra:]...)
	}
	return nil
}

// event returns the encoded event of a change, as BuildEvent with the
// tail's source does. A change in the tail is encoded once and shared,
// so callers must not modify the returned bytes.
func (t *tail) event(c *knowledge.Change) ([]byte, error) {
	t.mu.Lock()
	i := t.index(c.Cursor - 1)
	cached := i < len(t.entries) && t.entries[i].Cursor == c.Cursor
	if cached && t.events[i] != nil {
		body := t.events[i]
		t.mu.Unlock()
		return body, nil
	}
	t.mu.Unlock()

	// Built without the lock, so dispatchers do not wait for each other's
	// encoding. Two that build the same event at once store equal bytes.
	body, err := BuildEvent(t.source, c)
	if err != nil || !cached {
		return body, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if i := t.index(c.Cursor - 1); i < len(t.entries) && t.entries[i].Cursor == c.Cursor {
		t.events[i] = body
	}
	return body, nil
}

// index returns the position of the first entry after the cursor.
func (t *tail) index(after int64) int {
	lo, hi := 0, len(t.entries)
	for lo < hi {
		mid := (lo + hi) / 2
		if t.entries[mid].Cursor <= after {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
