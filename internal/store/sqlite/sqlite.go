// Package sqlite is the embedded store.Store back-end: one SQLite database
// file in WAL mode, opened through the pure-Go driver modernc.org/sqlite.
//
// Writes go through a handle limited to one connection whose transactions
// start with BEGIN IMMEDIATE, so writers queue in database/sql instead of
// failing with SQLITE_BUSY, and the change log's cursors are allocated in
// commit order. Reads use a separate pool of query-only connections, which
// WAL lets run alongside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/sync/semaphore"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/khub-dev/khub/internal/store"
)

// Options tune a Store. The zero value is ready to use.
type Options struct {
	// ReadConns is the size of the read pool. 0 means runtime.NumCPU(),
	// with a minimum of 2.
	ReadConns int
	// BusyTimeout is how long a connection waits for a lock held by another
	// process before it fails with SQLITE_BUSY. 0 means 5 seconds.
	BusyTimeout time.Duration
	// NoTextIndex leaves out the in-memory text index, so that searches
	// rank with FTS5 alone: slower, and without the index's memory, which
	// is about the size of the articles' text (about 320 MiB of Go heap
	// for 100,000 articles of 2.5 KB, docs/benchmarks.md).
	NoTextIndex bool
	// BodyCacheBytes bounds the memory that keeps the bodies of the
	// articles that searches and lookups showed last, for their snippets.
	// 0 means DefaultBodyCacheBytes; a negative value turns the cache off,
	// so every snippet reads its body from the database.
	BodyCacheBytes int64
	// Logger receives the start and end of the text index's build; nil
	// discards them.
	Logger *slog.Logger
}

// Store is a store.Store on one SQLite database file.
type Store struct {
	writer *pool // one connection, BEGIN IMMEDIATE
	reader *pool // query-only connections
	text   *textIndex
	bodies *otter.Cache[int64, string] // by seq; nil when off
	head   atomic.Int64                // see KnownHead
	// readGate admits read transactions in the order they arrive, as many
	// at once as the read pool has connections. database/sql hands a freed
	// connection to a random waiter, so under load some reads waited many
	// times longer than others.
	readGate *semaphore.Weighted
	log      *slog.Logger
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the database file at path, switches it to WAL mode
// and applies pending schema migrations.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: the database path is empty")
	}
	// The driver cuts the connection string at the first '?', so a path
	// containing one would lose its tail.
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("sqlite: open %q: the path must not contain '?'", path)
	}
	if err := makePrivate(path); err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	readConns := opts.ReadConns
	if readConns <= 0 {
		readConns = max(runtime.NumCPU(), 2)
	}

	// In WAL mode, synchronous=NORMAL survives application crashes. A power
	// loss may roll back the last transactions but does not corrupt the
	// file, as the SQLite documentation of PRAGMA synchronous states.
	writer, err := sql.Open("sqlite", connString(path, busy, map[string]string{
		"_journal_mode": "WAL",
		"_synchronous":  "NORMAL",
		"_txlock":       "immediate",
	}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)

	// The writer connects first, so the file is in WAL mode and migrated
	// before any reader opens it.
	ctx := context.Background()
	if err := writer.PingContext(ctx); err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	if err := migrate(ctx, writer); err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: migrate %q: %w", path, err)
	}

	reader, err := sql.Open("sqlite", connString(path, busy, map[string]string{"_query_only": "1"}))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	reader.SetMaxOpenConns(readConns)
	reader.SetMaxIdleConns(readConns)
	if err := reader.PingContext(ctx); err != nil {
		reader.Close()
		writer.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	head, err := headCursor(ctx, writer)
	if err != nil {
		reader.Close()
		writer.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	s := &Store{writer: newPool(writer), reader: newPool(reader), bodies: newBodyCache(opts.BodyCacheBytes), log: opts.Logger}
	s.head.Store(head)
	s.readGate = semaphore.NewWeighted(int64(readConns))
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.NoTextIndex {
		s.log.Info("the text index is off; searches rank with FTS5")
	} else if err := s.openTextIndex(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	return s, nil
}

// makePrivate creates the database file with mode 0600 before SQLite opens
// it, because the file contains webhook secrets. SQLite creates the -wal
// and -shm files with the mode of the database file, as
// TestDatabaseFilesArePrivate checks. An existing database file and its
// -wal and -shm files lose any group and other permissions. An in-memory
// database or a "file:" URI is left to SQLite.
func makePrivate(path string) error {
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(p, perm&^0o077); err != nil {
				return fmt.Errorf("the file contains webhook secrets and has mode %v, and setting mode %v failed: %w: run chmod 600 on it as its owner", perm, perm&^0o077, err)
			}
		}
	}
	return nil
}

// connString returns the modernc.org/sqlite connection string for path with
// the busy timeout, foreign keys on and the given driver parameters.
func connString(path string, busy time.Duration, params map[string]string) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(busy.Milliseconds(), 10))
	q.Set("_foreign_keys", "1")
	for k, v := range params {
		q.Set(k, v)
	}
	return path + "?" + q.Encode()
}

// Close closes both connection pools.
func (s *Store) Close() error {
	s.closeTextIndex()
	if s.bodies != nil {
		s.bodies.StopAllGoroutines()
	}
	return errors.Join(s.reader.close(), s.writer.close())
}

// write runs fn in one write transaction. BEGIN IMMEDIATE takes the database
// write lock at once, so fn reads the state that it then changes.
func (s *Store) write(ctx context.Context, fn func(tx *txn) error) error {
	tx, err := s.writer.db.BeginTx(ctx, nil)
	if err != nil {
		return mapError(err)
	}
	t := &txn{Tx: tx, p: s.writer}
	if err := fn(t); err != nil {
		tx.Rollback()
		return err
	}
	if len(t.updates) == 0 || s.text == nil {
		if err := tx.Commit(); err != nil {
			return mapError(err)
		}
		s.advanceHead(t.head)
		return nil
	}
	// Committing under the text index's lock applies the updates in
	// commit order; see textIndex.
	s.text.mu.Lock()
	defer s.text.mu.Unlock()
	if err := tx.Commit(); err != nil {
		return mapError(err)
	}
	s.text.apply(t.updates)
	// The head moves after the index, so that a reader that sees the new
	// head also finds the change in the index.
	s.advanceHead(t.head)
	return nil
}

// advanceHead records that the change at cursor committed. Two writes may
// record theirs in either order, so the head only grows.
func (s *Store) advanceHead(cursor int64) {
	for {
		old := s.head.Load()
		if cursor <= old || s.head.CompareAndSwap(old, cursor) {
			return
		}
	}
}

// KnownHead returns the cursor of the newest change that this Store
// committed, or that the log held when it opened, without a query. It may
// trail HeadCursor for the moment between a commit and its return. It
// misses another process's writes to the file, as the text index does.
// The hub's lock on its data directory keeps other hubs out. The API reads it for the log position of search results,
// where a position that trails a commit is safe; see api.logPosition.
func (s *Store) KnownHead() int64 { return s.head.Load() }

// read runs fn in one read transaction, so every query in fn reads the same
// snapshot of the database.
func (s *Store) read(ctx context.Context, fn func(tx *txn) error) error {
	if err := s.readGate.Acquire(ctx, 1); err != nil {
		return err
	}
	defer s.readGate.Release(1)
	tx, err := s.reader.db.BeginTx(ctx, nil)
	if err != nil {
		return mapError(err)
	}
	defer tx.Rollback()
	return fn(&txn{Tx: tx, p: s.reader})
}

// mapError translates driver errors into the store's errors: no rows becomes
// store.ErrNotFound, a unique or primary-key violation store.ErrConflict and
// a foreign-key violation store.ErrNotFound, because it means the referenced
// row is missing. The driver error stays in the chain.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", store.ErrConflict, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: %w", store.ErrNotFound, err)
		}
	}
	return err
}

// timeLayout is fixed-width, so stored times sort as strings.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// formatTime returns t in UTC as TEXT, or NULL for the zero time.
func formatTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeLayout)
}

// parseTime reads a column written by formatTime.
func parseTime(s sql.NullString) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	t, err := time.Parse(timeLayout, s.String)
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: stored time %q is invalid: %w", s.String, err)
	}
	return t.UTC(), nil
}
