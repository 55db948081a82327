package push

import (
	"context"
	"sync"

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
type tail struct {
	st      store.Store
	mu      sync.Mutex
	start   int64
	end     int64
	entries []knowledge.Change
}

// read returns up to limit entries after the cursor that match scope, as
// store.ReadChanges does.
func (t *tail) read(ctx context.Context, after int64, limit int, scope knowledge.Scope) (store.ChangePage, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if after < t.start || after > t.end {
		if t.end == 0 && t.start == 0 && len(t.entries) == 0 && after > 0 {
			// An empty tail starts at the first cursor a caught-up reader
			// requests.
			t.start, t.end = after, after
		} else {
			return t.st.ReadChanges(ctx, after, limit, scope)
		}
	}
	if after == t.end {
		if err := t.fill(ctx); err != nil {
			return store.ChangePage{}, err
		}
	}
	page := store.ChangePage{ScannedTo: t.end}
	for i := t.index(after); i < len(t.entries); i++ {
		c := &t.entries[i]
		if !scope.Matches(&c.Article) {
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
	t.end = max(t.end, page.ScannedTo)
	if extra := len(t.entries) - tailSize; extra > 0 {
		t.start = t.entries[extra-1].Cursor
		t.entries = append(t.entries[:0:0], t.entries[extra:]...)
	}
	return nil
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
