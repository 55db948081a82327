package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store/textindex"
)

// syncBuildLimit is the number of articles up to which Open builds the
// in-memory text index before it returns. A larger store opens at once
// and builds the index in the background. Until it is ready, searches
// rank with FTS5, which gives the same scores, only slower.
var syncBuildLimit int64 = 20000

// buildBatch is the number of articles that one read of the index build
// returns.
const buildBatch = 1000

// textIndex is the store's in-memory text index (package textindex) and
// what keeps it in step with the database.
//
// Every write that changes the search index records a textUpdate in its
// transaction. The write commits and applies its updates while holding
// mu, so updates are applied in commit order, and a search never reads
// an update that did not commit.
type textIndex struct {
	ix    *textindex.Index
	mu    sync.Mutex
	ready atomic.Bool
	// building is set while the index is being loaded: updates that commit
	// meanwhile wait in pending and are applied after the load. Each
	// update names the versions it removes and adds, and applying one
	// that the index already reflects changes nothing, so the load may
	// read batches in separate transactions.
	building bool
	pending  []textUpdate
	// cancel stops a build in the background and done is closed when it
	// has ended, built or not.
	cancel context.CancelFunc
	done   chan struct{}
	err    error // the error that ended the build, after done
	// background is set when Open returned before the build ended.
	background bool
}

// textUpdate is one change to the index: version prevSeq of an article,
// whose text prev holds, makes way for version seq, next. See
// textindex.Index.Update.
type textUpdate struct {
	prevSeq int64
	prev    *knowledge.Article
	seq     int64
	next    *knowledge.Article
}

// openTextIndex starts building the index of the store's current
// articles: at once when there are at most syncBuildLimit, otherwise in
// the background.
func (s *Store) openTextIndex(ctx context.Context) error {
	t := &textIndex{ix: textindex.New(), done: make(chan struct{})}
	t.building = true
	s.text = t
	count, err := s.CountArticles(ctx)
	if err != nil {
		return err
	}
	bctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	if count <= syncBuildLimit {
		s.buildTextIndex(bctx)
		return t.err
	}
	s.log.Info("building the text index in the background; searches use FTS5 until it is ready", "articles", count)
	t.background = true
	go s.buildTextIndex(bctx)
	return nil
}

// buildTextIndex loads every current, non-archived article version into
// the index, then applies the updates that committed meanwhile.
func (s *Store) buildTextIndex(ctx context.Context) {
	t := s.text
	defer close(t.done)
	start := time.Now()
	workers := max(runtime.GOMAXPROCS(0), 1)
	last := int64(-1)
	for {
		batch, err := s.readBuildBatch(ctx, last)
		if err != nil {
			t.mu.Lock()
			t.err = fmt.Errorf("sqlite: build the text index: %w", err)
			t.building, t.pending = false, nil
			t.mu.Unlock()
			if ctx.Err() == nil {
				s.log.Error("the text index build failed; searches use FTS5 until the next start", "err", err)
			}
			return
		}
		t.ix.Load(batch, workers)
		if len(batch) < buildBatch {
			break
		}
		last = batch[len(batch)-1].Seq
	}
	t.ix.Compact()

	t.mu.Lock()
	defer t.mu.Unlock()
	for _, u := range t.pending {
		t.ix.Update(u.prevSeq, u.prev, u.seq, u.next)
	}
	t.building, t.pending = false, nil
	t.ready.Store(true)

	level := slog.LevelDebug
	if t.background {
		level = slog.LevelInfo
	}
	s.log.Log(ctx, level, "text index ready", "articles", t.ix.Len(), "took", time.Since(start).Round(time.Millisecond))
}

// readBuildBatch reads up to buildBatch current, non-archived article
// versions with a seq above after, in seq order.
func (s *Store) readBuildBatch(ctx context.Context, after int64) ([]textindex.Doc, error) {
	var batch []textindex.Doc
	err := s.read(ctx, func(tx *txn) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+versionColumns+`, v.seq
			FROM articles a JOIN article_versions v ON v.seq = a.current_seq
			WHERE a.status <> 'archived' AND v.seq > ? ORDER BY v.seq LIMIT ?`, after, buildBatch)
		if err != nil {
			return mapError(err)
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			a, err := scanVersion(rows, &seq)
			if err != nil {
				return err
			}
			batch = append(batch, textindex.Doc{Seq: seq, Article: &a})
		}
		return mapError(rows.Err())
	})
	return batch, err
}

// apply applies the updates of a committed write. The caller holds t.mu.
func (t *textIndex) apply(updates []textUpdate) {
	if t.building {
		t.pending = append(t.pending, updates...)
		return
	}
	if !t.ready.Load() {
		// The build failed; searches use FTS5.
		return
	}
	for _, u := range updates {
		t.ix.Update(u.prevSeq, u.prev, u.seq, u.next)
	}
}

// MetadataPairs returns the metadata pairs, key and value, that current
// articles write and that equal key and value after
// knowledge.FoldMetadata, and false while the text index builds or when
// the store has none. Lookups compare attributes that way.
func (s *Store) MetadataPairs(key, value string) ([][2]string, bool) {
	ix := s.textIndexReady()
	if ix == nil {
		return nil, false
	}
	var out [][2]string
	for _, p := range ix.MetadataPairs(key, value) {
		out = append(out, [2]string{p.Key, p.Value})
	}
	return out, true
}

// textIndexReady returns the index when it is built and may serve
// searches, or nil.
func (s *Store) textIndexReady() *textindex.Index {
	if s.text == nil || !s.text.ready.Load() {
		return nil
	}
	return s.text.ix
}

// WaitTextIndex waits until the in-memory text index is built, for
// benchmarks and tools that must not measure FTS5 instead. It returns the
// error that ended the build, or nil when the store has no index because
// Options.NoTextIndex is set.
func (s *Store) WaitTextIndex(ctx context.Context) error {
	if s.text == nil {
		return nil
	}
	select {
	case <-s.text.done:
		return s.text.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closeTextIndex stops a build in the background and waits for it.
func (s *Store) closeTextIndex() {
	if s.text == nil || s.text.cancel == nil {
		return
	}
	s.text.cancel()
	<-s.text.done
}
