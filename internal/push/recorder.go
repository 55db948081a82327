package push

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/khub-dev/khub/internal/store"
)

// maxGroupAttempts bounds the attempts that one group writes, so that an
// article save waits for at most one group of about that size, not for
// the records of every dispatcher at once.
const maxGroupAttempts = 256

// groupPause is the wait between groups while more records are queued.
const groupPause = time.Millisecond

// Bounds of the wait between writes while the store fails. The maximum
// stays well below flushTimeout, so that a dispatcher that stops while the
// store fails still gets its last write tried.
const (
	recordRetryMin = 50 * time.Millisecond
	recordRetryMax = 2 * time.Second
)

// recorder writes the delivery records of all dispatchers of a manager in
// shared transactions (group commit). Dispatchers hand their records over
// and go on sending. One goroutine takes what was handed over since its
// last write, in hand-over order and up to maxGroupAttempts attempts, and
// commits it with store.CommitDeliveries. Each hand-over
// keeps the contract of store.CommitDelivery: the cursor it carries is
// written in the same transaction as the attempts that justify it.
//
// Without it, every dispatcher wrote its own transaction, so 100
// dispatchers that reached FlushEvery on the same change queued 100 write
// transactions on SQLite's single writer, ahead of the next article save.
type recorder struct {
	st  store.Store
	log *slog.Logger

	mu      sync.Mutex
	queue   []*recordSlot // slots with records, in hand-over order
	running bool          // the writer goroutine runs
	closed  bool          // close was called; hand-overs write inline
	wake    chan struct{} // buffered; a send means the queue may have work
	stop    chan struct{}
	done    chan struct{}
}

// recordSlot is one dispatcher's place in the recorder. Records handed
// over while earlier ones wait are merged into them, so a slot holds at
// most one commit.
type recordSlot struct {
	pending store.DeliveryCommit
	ticket  *flushTicket // nil when nothing is pending
	// discarded is set once the dispatcher has given up on its records,
	// so a failed write does not put them back.
	discarded bool
}

// flushTicket reports the outcome of writing one hand-over.
type flushTicket struct {
	done chan struct{}
	err  error // set before done is closed
}

func newTicket() *flushTicket { return &flushTicket{done: make(chan struct{})} }

// wait blocks until the records are written or ctx ends, and returns the
// outcome.
func (t *flushTicket) wait(ctx context.Context) error {
	select {
	case <-t.done:
		return t.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finished reports whether the write of the hand-over has ended.
func (t *flushTicket) finished() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

func newRecorder(st store.Store, log *slog.Logger) *recorder {
	return &recorder{
		st:   st,
		log:  log,
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
}

// start runs the writer goroutine. Before start and after close, each
// hand-over is written at once in the caller's goroutine.
func (r *recorder) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running || r.closed {
		return
	}
	r.running = true
	go r.run()
}

// close writes what is queued, once, and stops the writer.
func (r *recorder) close() {
	r.mu.Lock()
	running := r.running && !r.closed
	r.closed = true
	r.mu.Unlock()
	if running {
		close(r.stop)
		<-r.done
	}
}

// submit hands a commit over to be written with the next group and
// returns its ticket. Records of the slot that wait for a write are
// merged with it.
func (r *recorder) submit(ctx context.Context, slot *recordSlot, c store.DeliveryCommit) *flushTicket {
	r.mu.Lock()
	if !r.running || r.closed {
		r.mu.Unlock()
		return r.writeInline(ctx, c)
	}
	if slot.ticket == nil {
		slot.pending = c
		slot.ticket = newTicket()
		r.queue = append(r.queue, slot)
	} else {
		mergeCommit(&slot.pending, &c)
	}
	t := slot.ticket
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return t
}

// discard drops the slot's records that wait for a write, because their
// dispatcher stops and gave up on them. Their changes are sent again by
// the next dispatcher of the integration.
func (r *recorder) discard(slot *recordSlot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	slot.discarded = true
	if slot.ticket == nil {
		return
	}
	r.queue = slices.DeleteFunc(r.queue, func(s *recordSlot) bool { return s == slot })
	slot.ticket.err = fmt.Errorf("delivery records of integration %q discarded", slot.pending.IntegrationID)
	close(slot.ticket.done)
	slot.pending, slot.ticket = store.DeliveryCommit{}, nil
}

// writeInline writes one commit in the caller's goroutine.
func (r *recorder) writeInline(ctx context.Context, c store.DeliveryCommit) *flushTicket {
	t := newTicket()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	t.err = r.st.CommitDelivery(ctx, c)
	close(t.done)
	return t
}

// run writes groups until close. After a failed write it waits, doubling
// the wait from recordRetryMin up to recordRetryMax.
func (r *recorder) run() {
	defer close(r.done)
	var failures int
	var lastError string
	var since time.Time
	for {
		select {
		case <-r.wake:
		case <-r.stop:
			r.writeLast()
			return
		}
		more, err := r.writeGroup()
		if err == nil {
			if failures > 0 {
				r.log.Info("recording webhook deliveries recovered", "failed_writes", failures,
					"outage", time.Since(since).Round(time.Millisecond))
			}
			failures, lastError = 0, ""
			if more {
				// Dispatchers that reach FlushEvery on the same change
				// hand over at once. A pause between their groups lets
				// deliveries and article saves run in between.
				timer := time.NewTimer(groupPause)
				select {
				case <-timer.C:
				case <-r.stop:
					timer.Stop()
					r.writeLast()
					return
				}
				select {
				case r.wake <- struct{}{}:
				default:
				}
			}
			continue
		}
		if failures == 0 {
			since = time.Now()
		}
		failures++
		delay := min(recordRetryMin<<min(failures-1, 16), recordRetryMax)
		if err.Error() != lastError {
			lastError = err.Error()
			r.log.Error("record webhook deliveries failed; will retry", "error", err, "retry_in", delay)
		}
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
			// The failed records are queued again, so the next pass
			// writes them even if nothing new arrives.
			select {
			case r.wake <- struct{}{}:
			default:
			}
		case <-r.stop:
			timer.Stop()
			r.writeLast()
			return
		}
	}
}

// writeLast writes what is queued as the recorder closes. Records that
// fail then are lost, and their changes are sent again after a restart.
func (r *recorder) writeLast() {
	for {
		more, err := r.writeGroup()
		if err != nil {
			r.log.Error("record webhook deliveries failed at shutdown; their changes will be sent again", "error", err)
			return
		}
		if !more {
			return
		}
	}
}

// writeGroup writes what is queued, up to maxGroupAttempts, in one
// transaction, and reports whether more is queued, or the error of the
// write. On error the records go back to their slots, ahead
// of any handed over since, unless their dispatcher discarded them.
func (r *recorder) writeGroup() (bool, error) {
	r.mu.Lock()
	slots := r.queue
	// Whole slots up to maxGroupAttempts attempts, and at least one.
	n, attempts := 0, 0
	for n < len(slots) && (n == 0 || attempts+len(slots[n].pending.Attempts) <= maxGroupAttempts) {
		attempts += len(slots[n].pending.Attempts)
		n++
	}
	slots, r.queue = slots[:n:n], slots[n:]
	more := len(r.queue) > 0
	commits := make([]store.DeliveryCommit, len(slots))
	tickets := make([]*flushTicket, len(slots))
	for i, s := range slots {
		commits[i], tickets[i] = s.pending, s.ticket
		s.pending, s.ticket = store.DeliveryCommit{}, nil
	}
	r.mu.Unlock()
	if len(commits) == 0 {
		return false, nil
	}

	// Sorted by integration, so that nodes sharing a PostgreSQL database
	// lock the integrations' rows in the same order. The sort is stable,
	// which keeps the commits of one integration in hand-over order.
	order := make([]int, len(commits))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(commits[a].IntegrationID, commits[b].IntegrationID)
	})
	sorted := make([]store.DeliveryCommit, len(commits))
	for i, j := range order {
		sorted[i] = commits[j]
	}

	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	notFound, err := r.st.CommitDeliveries(ctx, sorted)
	cancel()
	if err != nil {
		r.requeue(slots, commits)
		for _, t := range tickets {
			t.err = err
			close(t.done)
		}
		return false, err
	}
	for _, i := range notFound {
		j := order[i]
		tickets[j].err = fmt.Errorf("integration %q: %w", commits[j].IntegrationID, store.ErrNotFound)
		r.log.Warn("delivery records dropped: the integration no longer exists",
			"integration_id", commits[j].IntegrationID, "attempts", len(commits[j].Attempts))
	}
	for _, t := range tickets {
		close(t.done)
	}
	return more, nil
}

// requeue puts the records of a failed write back into their slots.
func (r *recorder) requeue(slots []*recordSlot, commits []store.DeliveryCommit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, s := range slots {
		if s.discarded {
			continue
		}
		if s.ticket != nil {
			// Newer records wait already: the failed ones go first.
			older := commits[i]
			mergeCommit(&older, &s.pending)
			s.pending = older
			continue
		}
		s.pending, s.ticket = commits[i], newTicket()
		r.queue = append(r.queue, s)
	}
}

// mergeCommit adds the newer commit c to dst, as if both were written one
// after the other: attempts in order, the higher cursor, and the newer
// retry state, error and success where the newer commit sets them.
func mergeCommit(dst, c *store.DeliveryCommit) {
	dst.Attempts = append(dst.Attempts, c.Attempts...)
	dst.PushCursor = max(dst.PushCursor, c.PushCursor)
	dst.Retry = c.Retry
	if !c.LastErrorAt.IsZero() {
		dst.LastError, dst.LastErrorAt = c.LastError, c.LastErrorAt
	}
	if !c.LastSuccessAt.IsZero() {
		dst.LastSuccessAt = c.LastSuccessAt
	}
}
