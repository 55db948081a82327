package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SyncerOptions configure a Syncer. Zero fields take the defaults.
type SyncerOptions struct {
	// Logger receives stream drops, feed fallbacks, resyncs and failed
	// calls. A nil Logger discards them.
	Logger *slog.Logger
	// PageLimit is the number of changes per page of the change feed, 1
	// to 1000. The default is 1000, and a larger value is capped to it.
	PageLimit int
	// FeedWait is the long-poll wait of the change feed while the stream
	// is down. The default is DefaultFeedWait (30s). It must not exceed the hub's
	// maximum wait, 60s by default.
	FeedWait time.Duration
	// MinBackoff and MaxBackoff bound the wait before the stream is
	// reconnected or a failed call is tried again. Each wait is drawn
	// between half and all of a ceiling that starts at MinBackoff and
	// doubles with each failure in a row, up to MaxBackoff. The defaults
	// are 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// StreamIdleTimeout is how long the stream may stay silent before it
	// counts as dead. The default is DefaultStreamIdleTimeout (60s). Keep it
	// above the hub's heartbeat interval, 15s by default.
	StreamIdleTimeout time.Duration
	// ReportInterval is the shortest time between two reports of the
	// cursor to POST /v1/cursor. The default is 1s, and a negative value
	// turns reporting off.
	ReportInterval time.Duration
}

// SyncerStats count what a Syncer has done since it started.
type SyncerStats struct {
	// StreamConnects counts streams opened, and StreamDrops streams that
	// failed to open or ended, other than by the end of Run.
	StreamConnects, StreamDrops int64
	// FeedPages counts pages read from the change feed: the first load,
	// and the fallback while the stream is down.
	FeedPages int64
	// Resyncs counts reloads after retention removed changes the syncer
	// had not read.
	Resyncs int64
	// Fetches counts articles read with GET /v1/articles/{id}.
	Fetches int64
	// Reports counts cursor reports the hub accepted.
	Reports int64
}

// Syncer keeps a local copy of the articles in a token's scope: every
// current article that is not archived, by id. Create it with NewSyncer,
// start it with Run, and read it from any goroutine.
//
// It loads the copy from the change feed read from cursor 0, not from
// search. The feed lists every change in scope in order and ends at a
// cursor from which the stream goes on with no gap, while a listing gives
// no cursor to follow the log from. Then it follows GET /v1/stream.
// When the stream drops, it follows the change feed with long polls while
// it waits to reconnect, with a backoff that grows while reconnecting
// fails. Change events carry no article, so the syncer reads each changed
// article with GET /v1/articles/{id}, unless its copy is already as new.
//
// When the hub reports that retention removed changes after the syncer's
// cursor, the syncer reloads: it reads again every article it has, reads
// every article in scope that a search without a query lists and the
// copy lacks, and follows the log from the oldest kept entry. Such a
// listing pages by update time and id, so unlike a search with a query
// it has no depth limit.
//
// The syncer reports its cursor to POST /v1/cursor as it applies changes,
// and reads the feed and the stream with record=false, so the
// integration's freshness counts what the local copy contains, not what
// the hub sent. An
// article that leaves the scope by a change of class, collection, tags or
// metadata is dropped from the copy: the hub sends its change to the
// scope it left, and reading the article then gives 404.
type Syncer struct {
	client *Client
	opts   SyncerOptions
	log    *slog.Logger

	mu       sync.RWMutex
	articles map[string]Article
	cursor   int64
	// confirmed is the time at which the copy last contained every change
	// that the hub had committed. Staleness counts from created until then.
	confirmed time.Time
	created   time.Time
	stats     SyncerStats

	ready     chan struct{}
	readyOnce sync.Once
	running   atomic.Bool
	reportNow chan struct{}

	// removed maps an article id to the version at which it left the copy, so that
	// older changes of it are not read again while the syncer catches up.
	// Only Run's goroutine uses it, and it is cleared once the syncer is
	// current.
	removed map[string]int64
}

// NewSyncer returns a syncer that reads through c, whose token may be an
// integration's pull token or the admin token. With the admin token it
// copies every article and reports no cursor.
func NewSyncer(c *Client, opts SyncerOptions) *Syncer {
	if opts.PageLimit <= 0 || opts.PageLimit > 1000 {
		// The hub rejects larger pages, and the syncer would retry the
		// first read forever.
		opts.PageLimit = 1000
	}
	if opts.FeedWait <= 0 {
		opts.FeedWait = DefaultFeedWait
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(30*time.Second, opts.MinBackoff)
	}
	if opts.StreamIdleTimeout <= 0 {
		opts.StreamIdleTimeout = DefaultStreamIdleTimeout
	}
	if opts.ReportInterval == 0 {
		opts.ReportInterval = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The syncer's reads leave the pull cursor alone, so the hub's
	// freshness counts only what it reports as applied.
	own := *c
	own.reportsCursor = true
	return &Syncer{
		client:    &own,
		opts:      opts,
		log:       log,
		articles:  map[string]Article{},
		created:   time.Now(),
		ready:     make(chan struct{}),
		reportNow: make(chan struct{}, 1),
		removed:   map[string]int64{},
	}
}

// Get returns the local copy of an article, which is never archived. The
// copy's tags and metadata are the caller's to change.
func (s *Syncer) Get(id string) (Article, bool) {
	s.mu.RLock()
	a, ok := s.articles[id]
	s.mu.RUnlock()
	if ok {
		a.Tags = slices.Clone(a.Tags)
		a.Metadata = maps.Clone(a.Metadata)
	}
	return a, ok
}

// Articles returns the articles of the local copy, sorted by id, as one
// state of the copy. Like Get, it returns copies that the caller may
// change.
func (s *Syncer) Articles() []Article {
	s.mu.RLock()
	out := make([]Article, 0, len(s.articles))
	for _, a := range s.articles {
		out = append(out, a)
	}
	s.mu.RUnlock()
	for i := range out {
		out[i].Tags = slices.Clone(out[i].Tags)
		out[i].Metadata = maps.Clone(out[i].Metadata)
	}
	slices.SortFunc(out, func(a, b Article) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Len returns the number of articles in the local copy.
func (s *Syncer) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.articles)
}

// Cursor returns the change-log cursor through which the local copy is up
// to date.
func (s *Syncer) Cursor() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cursor
}

// Staleness returns the time since the syncer last confirmed that it held
// every change the hub had committed, or since NewSyncer before the first
// confirmation. It confirms at each heartbeat of the stream (every 15s on
// an idle hub with the default heartbeat) and after each change-feed page
// that reaches the newest change.
func (s *Syncer) Staleness() time.Duration {
	s.mu.RLock()
	since := s.confirmed
	if since.IsZero() {
		since = s.created
	}
	s.mu.RUnlock()
	return time.Since(since)
}

// Stats returns the syncer's counters.
func (s *Syncer) Stats() SyncerStats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stats
}

// Ready returns a channel that is closed once the first load of the local
// copy is complete.
func (s *Syncer) Ready() <-chan struct{} { return s.ready }

// Run loads the local copy and keeps it up to date until ctx ends. It
// returns ctx's error then, or an error that retrying cannot fix: the hub
// rejected the token (401 or 403). Every other failure is logged and
// retried with backoff. A syncer runs once.
func (s *Syncer) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("khub: Syncer.Run was called twice: a syncer runs once, so create another with NewSyncer")
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	if s.opts.ReportInterval > 0 {
		wg.Go(func() { s.reportLoop(ctx) })
	}

	b := backoff{min: s.opts.MinBackoff, max: s.opts.MaxBackoff}
	for {
		err := s.catchUp(ctx)
		if err == nil {
			break
		}
		if err := s.retryAfter(ctx, &b, "load the articles in scope", err); err != nil {
			return err
		}
	}
	s.readyOnce.Do(func() { close(s.ready) })
	b.reset()

	// The feed's backoff lasts across stream drops, so that while the hub
	// is down each fallback does not start again from MinBackoff.
	feed := backoff{min: s.opts.MinBackoff, max: s.opts.MaxBackoff}
	for {
		err := s.followStream(ctx, &b)
		if err := fatal(ctx, err); err != nil {
			return err
		}
		s.count(func(st *SyncerStats) { st.StreamDrops++ })
		wait := b.next()
		s.log.Warn("khub stream dropped, so the syncer follows the change feed until it reconnects",
			"error", err, "cursor", s.Cursor(), "reconnect_in", wait)
		if err := s.followFeed(ctx, time.Now().Add(wait), &feed); err != nil {
			return err
		}
	}
}

// catchUp reads the change feed without waiting until a page reaches the
// newest change.
func (s *Syncer) catchUp(ctx context.Context) error {
	for {
		more, err := s.readFeedPage(ctx, 0)
		if err != nil || !more {
			return err
		}
	}
}

// bounded returns ctx with the deadline of one call that does not wait:
// responseMargin from now.
func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, responseMargin)
}

// followFeed reads the change feed with long polls until the given time,
// when the stream is tried again. b spaces out failed reads.
func (s *Syncer) followFeed(ctx context.Context, until time.Time, b *backoff) error {
	for {
		remaining := time.Until(until)
		if remaining <= 0 {
			return nil
		}
		_, err := s.readFeedPage(ctx, min(s.opts.FeedWait, remaining))
		if err == nil {
			b.reset()
			continue
		}
		if err := fatal(ctx, err); err != nil {
			return err
		}
		wait := b.next()
		if left := max(time.Until(until), 0); wait >= left {
			// The stream is tried before the feed would be.
			s.log.Warn("reading the khub change feed failed; the stream is tried next", "error", err, "cursor", s.Cursor(), "reconnect_in", left)
			return sleep(ctx, left)
		}
		s.log.Warn("reading the khub change feed failed, will retry", "error", err, "cursor", s.Cursor(), "retry_in", wait)
		if err := sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// readFeedPage reads and applies one page of the change feed, waiting up
// to wait for a change. It reports whether more changes are ready to read.
func (s *Syncer) readFeedPage(ctx context.Context, wait time.Duration) (bool, error) {
	cursor := s.Cursor()
	page, err := s.client.Changes(ctx, cursor, s.opts.PageLimit, wait)
	switch {
	case isResyncRequired(err):
		callCtx, cancel := bounded(ctx)
		state, err := s.client.Cursor(callCtx)
		cancel()
		if err != nil {
			return false, err
		}
		return true, s.resync(ctx, state.Oldest)
	case isBeyondHead(err):
		return true, s.restart(ctx, err)
	case err != nil:
		return false, err
	}
	received := time.Now()
	s.count(func(st *SyncerStats) { st.FeedPages++ })
	for _, ch := range page.Changes {
		if err := s.apply(ctx, ch); err != nil {
			return false, err
		}
	}
	s.advance(page.Next)
	if len(page.Changes) == s.opts.PageLimit {
		return true, nil
	}
	// A page that is not full covered the log up to its newest entry when
	// the hub read it.
	s.confirm(received)
	return false, nil
}

// followStream applies the events of GET /v1/stream until the stream ends,
// and returns why it ended.
func (s *Syncer) followStream(ctx context.Context, b *backoff) error {
	for {
		r, err := s.client.openStream(ctx, s.Cursor(), s.opts.StreamIdleTimeout)
		if isBeyondHead(err) {
			if err := s.restart(ctx, err); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		s.count(func(st *SyncerStats) { st.StreamConnects++ })
		err = s.readStream(ctx, r, b)
		r.close()
		return err
	}
}

func (s *Syncer) readStream(ctx context.Context, r *streamReader, b *backoff) error {
	for {
		ev, err := r.next()
		if err != nil {
			return err
		}
		switch {
		case ev.heartbeat:
			// Events are applied as they are read, so at a heartbeat the
			// copy contains every change the stream had sent. Its id
			// covers the changes outside the scope too, so the cursor
			// moves past them and a reconnect after retention pruned them
			// needs no reload.
			if covered, err := strconv.ParseInt(ev.id, 10, 64); err == nil {
				s.advance(covered)
			}
			s.confirm(time.Now())
			b.reset()
		case ev.name == "change":
			ch, err := ev.change()
			if err != nil {
				return err
			}
			if err := s.apply(ctx, ch); err != nil {
				return err
			}
		case ev.name == "resync-required":
			rr, err := ev.resync()
			if err != nil {
				return err
			}
			// The stream continues from the oldest kept entry.
			if err := s.resync(ctx, rr.Oldest); err != nil {
				return err
			}
		}
	}
}

// apply brings the copy of a changed article up to date, unless it is as
// new already, and moves the cursor to the change.
func (s *Syncer) apply(ctx context.Context, ch Change) error {
	switch {
	case s.knownVersion(ch.ArticleID) >= ch.Version:
		// A reload already read this version or a newer one.
	case ch.Type == ChangeRemoved:
		// The article left the scope, so a fetch would give 404.
		s.remove(ch.ArticleID, ch.Version)
	default:
		if err := s.fetch(ctx, ch.ArticleID, ch.Version); err != nil {
			return err
		}
	}
	s.advance(ch.Cursor)
	return nil
}

// fetch reads the current version of an article into the copy, or removes
// it when it is archived or outside the scope (404). version is a version
// known to exist, recorded for a removed article whose version the 404
// hides.
func (s *Syncer) fetch(ctx context.Context, id string, version int64) error {
	callCtx, cancel := bounded(ctx)
	a, err := s.client.GetArticle(callCtx, id)
	cancel()
	s.count(func(st *SyncerStats) { st.Fetches++ })
	switch {
	case IsNotFound(err):
		s.remove(id, version)
	case err != nil:
		return fmt.Errorf("read article %q: %w", id, err)
	case a.Status == "archived":
		s.remove(id, a.Version)
	default:
		s.mu.Lock()
		s.articles[a.ID] = a
		s.mu.Unlock()
		delete(s.removed, a.ID)
	}
	return nil
}

func (s *Syncer) remove(id string, version int64) {
	s.mu.Lock()
	delete(s.articles, id)
	s.mu.Unlock()
	s.removed[id] = max(s.removed[id], version)
}

// knownVersion returns the version of the article in the copy, or the
// version at which it was removed, or 0.
func (s *Syncer) knownVersion(id string) int64 {
	s.mu.RLock()
	a, ok := s.articles[id]
	s.mu.RUnlock()
	if ok {
		return a.Version
	}
	return s.removed[id]
}

// searchPageLimit is the page size of the listing that a reload pages
// through.
const searchPageLimit = 100

// resync reloads the copy after retention removed changes that the syncer
// had not read, and moves the cursor to just before oldest, the oldest
// entry the log keeps. It reads every article in the copy again, and every
// article that a search with no query lists and the copy lacks or has
// at another version. Changes that commit during the reload are in the
// log after oldest, so following the log from there catches them.
func (s *Syncer) resync(ctx context.Context, oldest int64) error {
	s.count(func(st *SyncerStats) { st.Resyncs++ })
	s.log.Warn("the khub change log no longer contains every change after the syncer's cursor, so the syncer reloads the articles in scope",
		"cursor", s.Cursor(), "oldest", oldest)
	listed, err := s.listArticles(ctx)
	if err != nil {
		return err
	}
	s.mu.RLock()
	ids := slices.Collect(maps.Keys(s.articles))
	for _, h := range listed {
		if a, ok := s.articles[h.ID]; !ok || a.Version != h.Version {
			ids = append(ids, h.ID)
		}
	}
	s.mu.RUnlock()
	clear(s.removed)
	for _, id := range ids {
		if err := s.fetch(ctx, id, 0); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.cursor = max(oldest-1, 0)
	s.mu.Unlock()
	return nil
}

// listArticles pages through a search with no query, which lists the
// articles in scope that are not archived, most recently updated first.
func (s *Syncer) listArticles(ctx context.Context) ([]SearchHit, error) {
	var listed []SearchHit
	opts := SearchOptions{Limit: searchPageLimit}
	for {
		callCtx, cancel := bounded(ctx)
		res, err := s.client.Search(callCtx, "", opts)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("list articles to reload: %w", err)
		}
		listed = append(listed, res.Hits...)
		if res.Next == "" || len(res.Hits) == 0 {
			return listed, nil
		}
		opts.Cursor = res.Next
	}
}

// restart reloads from the start of the log when the hub rejects the
// cursor as beyond its newest change, as a hub restored from an older
// backup does.
func (s *Syncer) restart(ctx context.Context, cause error) error {
	s.log.Warn("the khub hub has no change at the syncer's cursor, so the syncer reloads from the start of its change log",
		"cursor", s.Cursor(), "error", cause)
	return s.resync(ctx, 1)
}

// advance moves the cursor forward and requests a report.
func (s *Syncer) advance(cursor int64) {
	s.mu.Lock()
	moved := cursor > s.cursor
	s.cursor = max(s.cursor, cursor)
	s.mu.Unlock()
	if moved {
		s.askReport()
	}
}

// confirm records that the copy held every committed change at time t.
func (s *Syncer) confirm(t time.Time) {
	s.mu.Lock()
	s.confirmed = t
	s.mu.Unlock()
	clear(s.removed)
	s.askReport()
}

func (s *Syncer) count(update func(*SyncerStats)) {
	s.mu.Lock()
	update(&s.stats)
	s.mu.Unlock()
}

func (s *Syncer) askReport() {
	select {
	case s.reportNow <- struct{}{}:
	default:
	}
}

// reportLoop reports the cursor to POST /v1/cursor when it differs from
// the last one reported, at most once every ReportInterval.
func (s *Syncer) reportLoop(ctx context.Context) {
	reported := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.reportNow:
		}
		cursor := s.Cursor()
		if cursor != reported {
			callCtx, cancel := bounded(ctx)
			_, err := s.client.ReportCursor(callCtx, cursor)
			cancel()
			var apiErr *Error
			switch {
			case err == nil:
				reported = cursor
				s.count(func(st *SyncerStats) { st.Reports++ })
			case ctx.Err() != nil:
				return
			case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusForbidden:
				s.log.Info("khub cursor reports are off: the admin token has no cursor to report", "error", err)
				return
			default:
				// The next change or heartbeat requests another report.
				s.log.Warn("reporting the cursor to khub failed, will retry", "cursor", cursor, "error", err)
			}
		}
		if err := sleep(ctx, s.opts.ReportInterval); err != nil {
			return
		}
	}
}

// retryAfter logs a failure and waits before the next try, or returns the
// error when retrying cannot help.
func (s *Syncer) retryAfter(ctx context.Context, b *backoff, what string, err error) error {
	if err := fatal(ctx, err); err != nil {
		return err
	}
	wait := b.next()
	s.log.Warn("khub syncer failed to "+what+", will retry", "error", err, "cursor", s.Cursor(), "retry_in", wait)
	return sleep(ctx, wait)
}

// fatal returns the error that ends Run: the context's, or a 401 or 403
// from the hub, which means that the token is wrong or its integration was
// deleted. It returns nil for errors worth retrying.
func fatal(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var e *Error
	if errors.As(err, &e) && (e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("khub syncer stopped: %w", err)
	}
	return nil
}

// isBeyondHead reports whether err is the 400 for a cursor beyond the
// hub's newest change.
func isBeyondHead(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusBadRequest && (e.Field == "after" || e.Field == "Last-Event-ID")
}

// backoff is an exponential backoff with jitter: each wait is drawn from
// the upper half of a ceiling that doubles per failure, so that syncers
// that lost the same hub do not all reconnect at once.
type backoff struct {
	min, max, ceiling time.Duration
}

func (b *backoff) next() time.Duration {
	if b.ceiling == 0 {
		b.ceiling = b.min
	} else {
		b.ceiling = min(2*b.ceiling, b.max)
	}
	return b.ceiling/2 + rand.N(b.ceiling/2+1)
}

func (b *backoff) reset() { b.ceiling = 0 }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
