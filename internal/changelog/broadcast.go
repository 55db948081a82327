// Package changelog wakes readers of the change log when new entries
// commit: push dispatchers, long polls and streams wait here instead of
// polling the store on a timer.
package changelog

import (
	"context"
	"sync"
)

// Broadcaster tracks the newest committed cursor and wakes every waiter
// when it moves. The zero value is ready to use.
type Broadcaster struct {
	mu     sync.Mutex
	head   int64
	notify chan struct{} // closed and replaced on every advance
}

// Notify records that the change at cursor has committed. Cursors that do
// not advance the head are ignored.
func (b *Broadcaster) Notify(cursor int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if cursor <= b.head {
		return
	}
	b.head = cursor
	if b.notify != nil {
		close(b.notify)
		b.notify = nil
	}
}

// Head returns the newest cursor passed to Notify.
func (b *Broadcaster) Head() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.head
}

// Changed returns a channel that is closed at the next advance of the head.
// Take the channel before reading the store, so that a commit between the
// read and the wait still wakes the caller.
func (b *Broadcaster) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.notify == nil {
		b.notify = make(chan struct{})
	}
	return b.notify
}

// Wait blocks until the head is past cursor or ctx is done, and reports
// whether the head moved past cursor.
func (b *Broadcaster) Wait(ctx context.Context, cursor int64) bool {
	for {
		ch := b.Changed()
		if b.Head() > cursor {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}
