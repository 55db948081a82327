package push

import (
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/khub-dev/khub/internal/changelog"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// outboxWorkers is the number of sending goroutines of the outbox
// baseline. It is more than the two cores need to stay busy, so that
// waiting on a slow receiver does not idle the machine.
const outboxWorkers = 16

// outboxClaim is how long a claimed row is hidden from other workers. A
// worker that dies leaves its row to be claimed again after it.
const outboxClaim = 30 * time.Second

// outboxForwarder is the queue-table baseline of the push benchmarks, as a
// team would build it. It keeps one database row per event and destination.
// Worker goroutines each claim one row at a time, SKIP LOCKED style, and
// send it as one HTTP request.
//
// The queue is its own SQLite file in WAL mode, with one writer connection
// as khub's store has. SQLite has no SELECT ... FOR UPDATE SKIP LOCKED, so a
// claim is an UPDATE that sets a claim deadline on the oldest row whose
// deadline has passed. Rows that other workers hold are skipped that way.
//
// Workers send rows in parallel, so a receiver may get an article's
// versions out of order. The benchmark tally counts such arrivals.
type outboxForwarder struct {
	db     *sql.DB
	st     store.Store
	wake   *changelog.Broadcaster
	source string
	dests  []naiveDest
	client *http.Client
	// retryWait is the time a failed row stays hidden before another
	// attempt. Zero deletes a row after its first attempt.
	retryWait time.Duration
	// queued signals workers that rows were added.
	queued chan struct{}
}

// startOutbox runs the outbox baseline until the benchmark ends.
func startOutbox(tb testing.TB, st store.Store, wake *changelog.Broadcaster, dests []naiveDest, timeout, retryWait time.Duration) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "outbox.db")
	db, err := sql.Open("sqlite", path+"?_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate&_busy_timeout=5000")
	if err != nil {
		tb.Fatalf("open outbox: %v", err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE outbox (
		id            INTEGER PRIMARY KEY,
		dest          INTEGER NOT NULL,
		event_id      TEXT NOT NULL,
		body          BLOB NOT NULL,
		claimed_until INTEGER NOT NULL DEFAULT 0)`); err != nil {
		tb.Fatalf("create outbox: %v", err)
	}

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	transport.MaxIdleConnsPerHost = outboxWorkers
	f := &outboxForwarder{
		db:        db,
		st:        st,
		wake:      wake,
		source:    testConfig().Source,
		dests:     dests,
		client:    &http.Client{Transport: transport, Timeout: timeout},
		retryWait: retryWait,
		queued:    make(chan struct{}, 1),
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { f.enqueue(ctx) })
	for range outboxWorkers {
		wg.Go(func() { f.work(ctx) })
	}
	tb.Cleanup(func() {
		cancel()
		wg.Wait()
		transport.CloseIdleConnections()
		db.Close()
	})
}

// enqueue follows the change log from its start and inserts one row per
// change and destination, one transaction per page of changes.
func (f *outboxForwarder) enqueue(ctx context.Context) {
	var cursor int64
	for ctx.Err() == nil {
		changed := f.wake.Changed()
		page, err := f.st.ReadChanges(ctx, cursor, DefaultPageSize)
		if err != nil {
			sleepCtx(ctx, 10*time.Millisecond)
			continue
		}
		if len(page.Changes) > 0 {
			if err := f.insert(ctx, page.Changes); err != nil {
				sleepCtx(ctx, 10*time.Millisecond)
				continue
			}
			select {
			case f.queued <- struct{}{}:
			default:
			}
		}
		cursor = max(cursor, page.ScannedTo)
		if len(page.Changes) == 0 {
			select {
			case <-changed:
			case <-ctx.Done():
			}
		}
	}
}

func (f *outboxForwarder) insert(ctx context.Context, changes []knowledge.Change) error {
	tx, err := f.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO outbox (dest, event_id, body) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for i := range changes {
		body, err := BuildEvent(f.source, &changes[i])
		if err != nil {
			return err
		}
		id := EventID(&changes[i])
		for d := range f.dests {
			if _, err := stmt.ExecContext(ctx, d, id, body); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// work claims and sends rows until ctx ends, and waits for new rows or
// polls every few milliseconds when none is due.
func (f *outboxForwarder) work(ctx context.Context) {
	for ctx.Err() == nil {
		var (
			id      int64
			dest    int
			eventID string
			body    []byte
		)
		now := time.Now()
		err := f.db.QueryRowContext(ctx, `UPDATE outbox SET claimed_until = ?
			WHERE id = (SELECT id FROM outbox WHERE claimed_until < ? ORDER BY id LIMIT 1)
			RETURNING id, dest, event_id, body`,
			now.Add(outboxClaim).UnixNano(), now.UnixNano()).Scan(&id, &dest, &eventID, &body)
		// sql.ErrNoRows means no row is due, and another error a busy
		// queue: both wait for new rows or the next poll.
		if err != nil {
			select {
			case <-f.queued:
			case <-time.After(5 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		if postSigned(ctx, f.client, f.dests[dest], eventID, body) || f.retryWait == 0 {
			_, _ = f.db.ExecContext(ctx, `DELETE FROM outbox WHERE id = ?`, id)
			continue
		}
		_, _ = f.db.ExecContext(ctx, `UPDATE outbox SET claimed_until = ? WHERE id = ?`,
			time.Now().Add(f.retryWait).UnixNano(), id)
	}
}
