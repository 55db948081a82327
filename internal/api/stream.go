package api

// The stream is framed by hand on net/http. Server-sent events are a few
// lines of text per event (WHATWG HTML, section 9.2), and the one
// maintained Go module for them that builds with Go 1.26,
// github.com/gin-contrib/sse v1.1, is an encoder for gin's renderer. It
// would add a dependency and nothing more: resumption, heartbeats, write
// deadlines and the cursor record are the hub's own work either way.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// DefaultStreamHeartbeat is the default time between heartbeats of an
// idle stream. It is well below the idle timeouts of common proxies
// (60s in nginx and most load balancers).
const DefaultStreamHeartbeat = 15 * time.Second

const (
	// streamBatch is the number of changes in scope a stream sends per
	// read while it catches up.
	streamBatch = 500
	// streamWriteTimeout bounds one write to a stream, so that a client
	// that stops reading cannot hold its stream open forever.
	streamWriteTimeout = 30 * time.Second
	// streamRecordEvery is how long the pull recorder gathers the cursors
	// of streams before it stores them, so that streams cost at most one
	// store write a second per integration.
	streamRecordEvery = time.Second
	// streamRecheck is how often the streams of an integration check that
	// it still exists, so that deleting it ends its idle streams within
	// about a minute. The check is one store read per integration, however
	// many streams it has.
	streamRecheck = time.Minute
	// tailSize is the number of newest change-log entries that streams
	// share in memory. An entry without its article's title and body takes
	// a few hundred bytes, so the tail takes an estimated 1 to 2 MiB.
	tailSize = 4096
)

// streamHeader starts the response on a connection taken over from
// net/http. Connection: close ends the body with the connection, so no
// chunked encoding is needed.
const streamHeader = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: text/event-stream; charset=utf-8\r\n" +
	"Cache-Control: no-store\r\n" +
	// Tells nginx and proxies that follow its convention not to buffer
	// the stream.
	"X-Accel-Buffering: no\r\n" +
	"Connection: close\r\n"

// streamSet tracks the open streams of a server. Streams never end by
// themselves, and most run on connections taken over from net/http, which
// http.Server.Shutdown does not wait for, so CloseStreams ends and awaits
// them.
type streamSet struct {
	// ctx bounds the store calls of streams and the waits of long polls,
	// and is cancelled by CloseStreams.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	running sync.WaitGroup

	open  prometheus.Gauge
	pulls *pullRecorder
	tail  *changeTail
}

// initStreams sets the stream defaults and registers the stream metrics.
func (s *Server) initStreams() {
	if s.cfg.StreamHeartbeat <= 0 {
		s.cfg.StreamHeartbeat = DefaultStreamHeartbeat
	}
	s.streams.ctx, s.streams.cancel = context.WithCancel(context.Background())
	s.streams.pulls = &pullRecorder{st: s.hub.Store, log: s.log, pending: map[string]int64{}, checked: map[string]time.Time{}, gone: map[string]bool{}}
	s.streams.tail = &changeTail{st: s.hub.Store, size: tailSize}
	s.streams.open = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "khub_streams_open",
		Help: "Server-sent event streams of GET /v1/stream that are open now.",
	})
	s.cfg.Registry.MustRegister(s.streams.open)
}

// CloseStreams ends every open stream of GET /v1/stream, makes new ones
// fail with 503, ends the long polls of GET /v1/changes with what they
// read so far, and returns once every stream has ended and its cursor
// is stored. Call it when the HTTP server shuts down and before the store
// closes: http.Server.RegisterOnShutdown ends the streams that keep
// Shutdown waiting, and a call after Shutdown awaits the rest. Calling it
// again only waits. Clients resume from the last event id once the hub is
// back.
func (s *Server) CloseStreams() {
	s.streams.mu.Lock()
	if !s.streams.closed {
		s.streams.closed = true
		s.streams.pulls.stop()
		s.streams.cancel()
	}
	s.streams.mu.Unlock()
	s.streams.running.Wait()
	s.streams.pulls.flush()
}

// begin counts a new stream, or reports false once CloseStreams was
// called.
func (ss *streamSet) begin() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return false
	}
	ss.running.Add(1)
	ss.open.Inc()
	return true
}

func (ss *streamSet) end() {
	ss.open.Dec()
	ss.running.Done()
}

// stream serves GET /v1/stream: every change in the caller's scope as
// server-sent events, from the cursor in Last-Event-ID or after onwards.
// Each event has the cursor as its id, type change and the change as its
// data, in the JSON of an entry of GET /v1/changes. A heartbeat, a
// comment line (": heartbeat") with an id and no data, follows each
// catch-up and comes every StreamHeartbeat while the stream is idle. Each
// one means that the stream has sent every change in scope up to the
// cursor in its id. That cursor covers changes outside the scope too, so
// a client that resumes from it skips them, and an EventSource takes it
// as its last event id without firing an event. A cursor behind the
// oldest kept entry gets a resync-required event, after which the stream
// goes on from the oldest kept entry and its heartbeats carry no id.
//
// The handler takes the connection over from net/http and returns, and
// one goroutine per stream serves it, so that an idle stream holds no
// net/http buffers or goroutines. Without a reader on the connection, a
// client that hangs up is noticed when a write to it fails, at the latest
// at the second heartbeat after it left.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	after, record, err := s.streamStart(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.Method == http.MethodHead {
		setStreamHeaders(w.Header())
		w.WriteHeader(http.StatusOK)
		return
	}
	if !s.streams.begin() {
		w.Header().Set("Retry-After", "5")
		s.writeError(w, r, &apiError{Status: http.StatusServiceUnavailable, Code: "shutting_down",
			Message: "the hub is shutting down: reconnect in a few seconds with the last event id as Last-Event-ID"})
		return
	}

	p := principalFrom(r.Context())
	st := &sseStream{s: s, scope: p.scope(), after: after, recorded: -1, noRecord: !record}
	if !p.admin {
		st.integrationID = p.integration.ID
	}
	rc := http.NewResponseController(w)
	conn, _, err := rc.Hijack()
	if err == nil {
		go func() {
			defer s.streams.end()
			defer conn.Close()
			st.out = connOutput{conn}
			header := append([]byte(streamHeader), "Date: "...)
			header = time.Now().UTC().AppendFormat(header, http.TimeFormat)
			header = append(header, "\r\n\r\n"...)
			if st.out.write(header) == nil {
				st.run(s.streams.ctx)
			}
		}()
		return
	}

	// A connection that cannot be taken over, such as one of HTTP/2,
	// keeps the stream in the handler.
	defer s.streams.end()
	// The server's ReadTimeout would end the wait for the client to hang
	// up, which cancels the request, and its WriteTimeout would cut the
	// stream off. Each write sets its own deadline instead.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	setStreamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	st.out = responseOutput{w, rc}
	st.run(r.Context())
}

func setStreamHeaders(h http.Header) {
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
}

// streamStart returns the cursor a stream starts after: Last-Event-ID when
// the client sends it, because a reconnecting EventSource repeats the URL
// of its first request, else the after parameter, else 0. A lastEventId
// query parameter replaces the header when it is missing, because
// EventSource polyfills append it to the URL when they cannot send
// headers. It also returns the record parameter (see recordParam).
func (s *Server) streamStart(r *http.Request) (int64, bool, error) {
	q := r.URL.Query()
	for _, key := range queryKeys(q) {
		values := q[key]
		if key != "after" && key != "record" && key != "lastEventId" {
			return 0, false, badRequest(key, "unknown query parameter %q: use after, record or lastEventId", key)
		}
		if len(values) > 1 {
			return 0, false, badRequest(key, "%s is given %d times: give it once", key, len(values))
		}
	}
	record, err := recordParam(q)
	if err != nil {
		return 0, false, err
	}

	field := "after"
	after, err := intParam(q, "after", 0, 0, 1<<62)
	if err != nil {
		return 0, false, err
	}
	// The header wins over the query parameter.
	ids, name := r.Header.Values("Last-Event-ID"), "Last-Event-ID"
	if len(ids) == 0 && q.Has("lastEventId") {
		ids, name = q["lastEventId"], "lastEventId"
	}
	if len(ids) > 0 {
		field = name
		v := strings.TrimSpace(ids[0])
		after, err = strconv.ParseInt(v, 10, 64)
		if len(ids) > 1 || err != nil || after < 0 {
			return 0, false, badRequest(field, "%s %q is invalid: send the id of the last event received, a cursor from 0 upwards, once", field, strings.Join(ids, ", "))
		}
	}

	// A cursor beyond the head would be saved as the caller's position and
	// make it skip every change up to that cursor once they commit.
	head, err := s.hub.Store.HeadCursor(r.Context())
	if err != nil {
		return 0, false, err
	}
	if after > head {
		return 0, false, badRequest(field, "%s %d is beyond the newest change, cursor %d: send the id of an event this hub sent, or after=0 to start from the beginning", field, after, head)
	}
	return after, record, nil
}

// streamOutput writes to a stream's client. Each write is sent at once,
// within streamWriteTimeout.
type streamOutput interface {
	write(b []byte) error
}

// connOutput writes to a connection taken over from net/http.
type connOutput struct{ conn net.Conn }

func (o connOutput) write(b []byte) error {
	if err := o.conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil {
		return err
	}
	_, err := o.conn.Write(b)
	return err
}

// responseOutput writes to a response that net/http still serves.
type responseOutput struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (o responseOutput) write(b []byte) error {
	if err := o.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil {
		return err
	}
	if _, err := o.w.Write(b); err != nil {
		return err
	}
	return o.rc.Flush()
}

// sseStream is one open stream. Only the goroutine that serves it uses its
// fields.
type sseStream struct {
	s     *Server
	out   streamOutput
	scope []knowledge.Scope
	// integrationID is the caller's integration, empty for the admin.
	integrationID string
	// noRecord leaves the pull cursor to POST /v1/cursor (record=false).
	// The stream still ends when its integration is deleted.
	noRecord bool
	// after is the highest cursor the stream has covered, sent or out of
	// scope.
	after int64
	// recorded is the cursor last handed to the pull recorder, -1 before
	// the first.
	recorded int64
	// resynced is set once the stream has sent a resync-required event.
	// Its heartbeats then carry no id, so that a client that reconnects
	// before any change arrives hears the event again.
	resynced bool
}

// appendHeartbeat appends a heartbeat that covers the log up to cursor
// covered.
func (st *sseStream) appendHeartbeat(buf []byte, covered int64) []byte {
	if st.resynced {
		return append(buf, ": heartbeat\n\n"...)
	}
	buf = append(buf, ": heartbeat\nid: "...)
	buf = strconv.AppendInt(buf, covered, 10)
	return append(buf, "\n\n"...)
}

// resyncRequired is the data of a resync-required event.
type resyncRequired struct {
	// OldestCursor is the cursor of the oldest entry that the change log
	// still keeps. The stream continues from it.
	OldestCursor int64  `json:"oldest_cursor"`
	After        int64  `json:"after"`
	Message      string `json:"message"`
}

// run sends changes until the client hangs up, ctx ends, the server shuts
// down, the integration is deleted or a write or store read fails. The
// loop takes the broadcaster's channel before each read, so that a commit
// during the read wakes the next wait. An idle stream reads nothing until
// a commit is announced, and a caught-up stream reads the tail that it
// shares with the others.
func (st *sseStream) run(ctx context.Context) {
	heartbeat := time.NewTimer(st.s.cfg.StreamHeartbeat)
	defer heartbeat.Stop()

	checkOldest := true
	heartbeatDue := true // the first heartbeat marks the end of the backlog
	var buf []byte
	for {
		changed := st.s.hub.Wake.Changed()
		head := st.s.hub.Wake.Head()
		if checkOldest {
			if err := st.checkRetention(ctx); err != nil {
				st.fail(ctx, "read the oldest cursor", err)
				return
			}
		}
		var sent int
		var scannedTo int64
		var err error
		buf, sent, scannedTo, err = st.s.streams.tail.read(ctx, st.after, head, streamBatch, st.scope, buf[:0])
		if err != nil {
			st.fail(ctx, "read the change log", err)
			return
		}
		full := sent == streamBatch
		if !full && (heartbeatDue || sent > 0) {
			buf = st.appendHeartbeat(buf, max(st.after, scannedTo))
			heartbeatDue = false
		}
		if len(buf) > 0 {
			if err := st.out.write(buf); err != nil {
				return
			}
			heartbeat.Reset(st.s.cfg.StreamHeartbeat)
		}
		if cap(buf) > 64<<10 {
			buf = nil // an idle stream keeps no large buffer
		}
		st.after = max(st.after, scannedTo)
		// A stream that catches up may fall behind retention on the way,
		// so it checks again before every further read.
		checkOldest = full
		if !st.record() {
			return
		}
		if full {
			continue
		}

		due, ok := st.wait(ctx, changed, heartbeat)
		if !ok {
			return
		}
		heartbeatDue = due
	}
}

// wait blocks until a commit is announced, writing heartbeats meanwhile
// without reading the change log. It reports whether a heartbeat is due
// after the next read, and false in ok when the stream must end.
func (st *sseStream) wait(ctx context.Context, changed <-chan struct{}, heartbeat *time.Timer) (heartbeatDue, ok bool) {
	pulls := st.s.streams.pulls
	for {
		var gone <-chan struct{}
		if st.integrationID != "" {
			// The channel is taken before the check, so that a deletion
			// found in between still wakes the wait.
			gone = pulls.wakeOnGone()
			if pulls.isGone(st.integrationID) {
				return false, false
			}
		}
		select {
		case <-gone:
		case <-changed:
			return false, true
		case <-heartbeat.C:
			select {
			case <-changed:
				// A commit is waiting, so the read comes first and the
				// heartbeat follows it.
				return true, true
			default:
			}
			if st.integrationID != "" && !pulls.exists(ctx, st.integrationID) {
				return false, false
			}
			if err := st.out.write(st.appendHeartbeat(nil, st.after)); err != nil {
				return false, false
			}
			heartbeat.Reset(st.s.cfg.StreamHeartbeat)
		case <-ctx.Done():
			return false, false
		case <-st.s.streams.ctx.Done():
			return false, false
		}
	}
}

// checkRetention sends resync-required and moves the stream to the oldest
// kept entry when retention has removed entries after the stream's cursor.
func (st *sseStream) checkRetention(ctx context.Context) error {
	oldest, err := st.s.hub.Store.OldestCursor(ctx)
	if err != nil {
		return err
	}
	if oldest <= st.after+1 {
		return nil
	}
	data, err := json.Marshal(resyncRequired{
		OldestCursor: oldest,
		After:        st.after,
		Message: fmt.Sprintf("change-log entries %d to %d were removed by retention: reload the articles in scope with search or get. The stream continues from cursor %d",
			st.after+1, oldest-1, oldest),
	})
	if err != nil {
		return err
	}
	// The event has no id, so that a client that reconnects before it has
	// reloaded receives it again.
	if err := st.out.write(fmt.Appendf(nil, "event: resync-required\ndata: %s\n\n", data)); err != nil {
		return err
	}
	st.after, st.resynced = oldest-1, true
	return nil
}

// record hands the stream's cursor to the pull recorder, which stores it
// as the integration's pull cursor, as GET /v1/changes does, unless the
// stream was opened with record=false. It reports
// false when the recorder found the integration deleted, which ends the
// stream.
func (st *sseStream) record() bool {
	if st.integrationID == "" {
		return true
	}
	if !st.noRecord && st.after != st.recorded {
		st.s.streams.pulls.record(st.integrationID, st.after)
		st.recorded = st.after
	}
	return !st.s.streams.pulls.isGone(st.integrationID)
}

// fail logs a store error that ends a stream. A client that reconnects
// with its last event id as Last-Event-ID loses no change.
func (st *sseStream) fail(ctx context.Context, what string, err error) {
	if ctx.Err() != nil {
		return
	}
	st.s.log.Error("stream failed to "+what+" and is ending", "integration_id", st.integrationID, "cursor", st.after, "error", err)
}

// appendEvent appends the change event of c to buf.
func appendEvent(buf []byte, c *knowledge.Change) ([]byte, error) {
	data, err := json.Marshal(client.Change{Cursor: c.Cursor, ArticleID: c.ArticleID, Version: c.Version, Type: string(visibleType(c)), Time: c.Time})
	if err != nil {
		return buf, err
	}
	buf = append(buf, "id: "...)
	buf = strconv.AppendInt(buf, c.Cursor, 10)
	buf = append(buf, "\nevent: change\ndata: "...)
	buf = append(buf, data...)
	return append(buf, "\n\n"...), nil
}

// tailEntry is one change-log entry of the tail: the fields of its article
// that scopes match on, and its event, encoded once for every stream.
type tailEntry struct {
	// change holds the cursor and the scope fields of the new version and
	// of the one before, which decide whether a stream announces it.
	change knowledge.Change
	event  []byte
}

// changeTail keeps the newest change-log entries in memory, so that a
// commit that wakes every caught-up stream costs one store read rather
// than one per stream. It holds every entry with a cursor in (start, end],
// in order. The log never commits a cursor at or below a ScannedTo already
// returned, so the range has no holes. Streams behind start read the
// store directly.
type changeTail struct {
	st store.Store
	// size is the number of entries kept, tailSize unless a test sets it.
	size int

	mu         sync.Mutex
	start, end int64
	entries    []tailEntry
	// filledFor is the head announced at the last fill, and more reports
	// that the fill stopped at its limit.
	filledFor int64
	more      bool
}

// read appends the events of up to limit changes after the cursor that
// match every scope to buf, and returns buf, the number of events and the
// cursor the read covered, as store.ReadChanges does. head is the newest
// cursor announced by the broadcaster before the read, which the tail
// reads up to first.
func (t *changeTail) read(ctx context.Context, after, head int64, limit int, scope []knowledge.Scope, buf []byte) ([]byte, int, int64, error) {
	t.mu.Lock()
	if after > t.end {
		// Caught-up readers are at the head, so the tail moves on to them
		// and leaves readers that are behind to the store.
		t.start, t.end, t.entries = after, after, t.entries[:0]
		t.filledFor, t.more = 0, false
	}
	if after < t.start {
		t.mu.Unlock()
		return readStore(ctx, t.st, after, limit, scope, buf)
	}
	defer t.mu.Unlock()

	// The first reader after an announcement fills the tail for every
	// reader. The others wait for the lock and then find the entries here. A fill
	// can end short of head, when it reached its limit or when the store
	// has not yet committed an entry below head, so a later reader fills
	// again only in the first case or once head has moved.
	if t.end < head && (head > t.filledFor || t.more) {
		if err := t.fill(ctx); err != nil {
			return buf, 0, after, err
		}
		t.filledFor = head
	}

	scanned, n := t.end, 0
	for i := t.index(after); i < len(t.entries); i++ {
		e := &t.entries[i]
		announced, left := knowledge.AnnouncedTo(scope, &e.change)
		if !announced {
			continue
		}
		if left {
			// The shared event has the change's own type.
			c := e.change
			c.Left = true
			var err error
			if buf, err = appendEvent(buf, &c); err != nil {
				return buf, 0, after, err
			}
		} else {
			buf = append(buf, e.event...)
		}
		n++
		if n == limit {
			scanned = e.change.Cursor
			break
		}
	}
	return buf, n, scanned, nil
}

// fill reads the entries after end from the store and appends them,
// dropping the oldest beyond size.
func (t *changeTail) fill(ctx context.Context) error {
	limit := max(t.size/4, 1)
	page, err := t.st.ReadChanges(ctx, t.end, limit)
	if err != nil {
		return err
	}
	t.more = len(page.Changes) == limit
	for i := range page.Changes {
		c := &page.Changes[i]
		event, err := appendEvent(nil, c)
		if err != nil {
			return err
		}
		a := &c.Article
		t.entries = append(t.entries, tailEntry{
			change: knowledge.Change{
				Cursor:    c.Cursor,
				ArticleID: c.ArticleID,
				Version:   c.Version,
				Type:      c.Type,
				Time:      c.Time,
				Article:   knowledge.Article{ID: a.ID, Collection: a.Collection, Class: a.Class, Tags: a.Tags, Metadata: a.Metadata, Status: a.Status},
				Previous:  c.Previous,
			},
			event: event,
		})
	}
	t.end = max(t.end, page.ScannedTo)
	if extra := len(t.entries) - t.size; extra > 0 {
		t.start = t.entries[extra-1].change.Cursor
		t.entries = append(t.entries[:0:0], t.entries[extra:]...)
	}
	return nil
}

// index returns the position of the first entry after the cursor.
func (t *changeTail) index(after int64) int {
	i, _ := slices.BinarySearchFunc(t.entries, after, func(e tailEntry, after int64) int {
		return cmp.Compare(e.change.Cursor, after+1)
	})
	return i
}

// readStore reads changes from the store for a stream that is behind the
// tail, and appends their events to buf.
func readStore(ctx context.Context, st store.Store, after int64, limit int, scope []knowledge.Scope, buf []byte) ([]byte, int, int64, error) {
	page, err := st.ReadChanges(ctx, after, limit, scope...)
	if err != nil {
		return buf, 0, after, err
	}
	for i := range page.Changes {
		if buf, err = appendEvent(buf, &page.Changes[i]); err != nil {
			return buf, 0, after, err
		}
	}
	return buf, len(page.Changes), max(page.ScannedTo, after), nil
}

// pullRecorder stores the cursors of streams as their integrations' pull
// cursors, and finds out which integrations were deleted. It keeps the
// highest cursor per integration and writes them streamRecordEvery after
// the first of them arrives, so a commit that wakes many streams of one
// integration costs one store write, and a busy stream at most one a
// second.
type pullRecorder struct {
	st  store.Store
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]int64
	timer   *time.Timer // armed while pending is not empty
	stopped bool
	// checked is when each integration was last looked up. gone holds the
	// integrations found deleted, and goneChanged is closed and replaced
	// when one is added, so that their streams end without waiting for a
	// heartbeat.
	checked     map[string]time.Time
	gone        map[string]bool
	goneChanged chan struct{}

	// flushing serializes writes, so that a flush at shutdown returns
	// only after a timed one in progress has finished.
	flushing sync.Mutex
}

func (p *pullRecorder) record(integrationID string, cursor int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.pending[integrationID]; ok && old >= cursor {
		return
	}
	p.pending[integrationID] = cursor
	if p.timer == nil && !p.stopped {
		p.timer = time.AfterFunc(streamRecordEvery, p.flush)
	}
}

// wakeOnGone returns a channel that is closed when an integration is next
// found deleted.
func (p *pullRecorder) wakeOnGone() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.goneChanged == nil {
		p.goneChanged = make(chan struct{})
	}
	return p.goneChanged
}

func (p *pullRecorder) isGone(integrationID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gone[integrationID]
}

// exists reports whether the integration still exists. It reads the store
// at most once every streamRecheck per integration, and reports true when
// the read fails, so that a store outage does not end every stream.
func (p *pullRecorder) exists(ctx context.Context, integrationID string) bool {
	p.mu.Lock()
	if p.gone[integrationID] {
		p.mu.Unlock()
		return false
	}
	if time.Since(p.checked[integrationID]) < streamRecheck {
		p.mu.Unlock()
		return true
	}
	p.checked[integrationID] = time.Now()
	p.mu.Unlock()
	_, err := p.st.GetIntegration(ctx, integrationID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		p.markGone(integrationID)
		return false
	case err != nil && ctx.Err() == nil:
		p.log.Warn("checking a stream's integration failed, so its streams continue", "integration_id", integrationID, "error", err)
	}
	return true
}

func (p *pullRecorder) markGone(integrationID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gone[integrationID] = true
	delete(p.pending, integrationID)
	if p.goneChanged != nil {
		close(p.goneChanged)
		p.goneChanged = nil
	}
}

// stop ends the timed writes. Pending records wait for flush.
func (p *pullRecorder) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
}

// flush writes every pending record.
func (p *pullRecorder) flush() {
	p.flushing.Lock()
	defer p.flushing.Unlock()
	p.mu.Lock()
	batch := p.pending
	p.pending = map[string]int64{}
	p.timer = nil
	p.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := time.Now().UTC()
	for id, cursor := range batch {
		err := p.st.RecordPull(ctx, id, cursor, now)
		switch {
		case errors.Is(err, store.ErrNotFound):
			p.markGone(id)
		case err != nil:
			// The cursor goes back into pending, so the next flush tries
			// it again unless a stream records a higher one first.
			p.log.Warn("recording a stream's cursor failed; will retry", "integration_id", id, "cursor", cursor, "error", err)
			p.record(id, cursor)
		}
	}
}

// cursorReport is the body of POST /v1/cursor.
type cursorReport struct {
	// Cursor is a pointer so that a missing field can be distinguished
	// from 0.
	Cursor *int64 `json:"cursor"`
}

// getCursor serves GET /v1/cursor: the caller's pull cursor and the bounds
// of the change log. The admin token has no cursor and gets 0.
func (s *Server) getCursor(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	var cursor int64
	if !p.admin {
		cursor = p.integration.PullCursor
	}
	s.writeCursorState(w, r, cursor)
}

// reportCursor serves POST /v1/cursor: an integration's tool reports that
// its local copy is up to date through a cursor, which becomes its pull
// cursor for freshness. The pull cursor never moves back.
func (s *Server) reportCursor(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	if p.admin {
		s.writeError(w, r, &apiError{Status: http.StatusForbidden, Code: "forbidden",
			Message: "the admin token has no cursor to report: send the integration's pull token"})
		return
	}

	var in cursorReport
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Cursor == nil {
		s.writeError(w, r, badRequest("cursor", "cursor is missing: send {\"cursor\": N} with the last change-log cursor the tool has applied"))
		return
	}
	cursor := *in.Cursor
	if cursor < 0 {
		s.writeError(w, r, badRequest("cursor", "cursor %d is negative: send a cursor from 0 upwards", cursor))
		return
	}

	// A cursor beyond the head would make freshness skip changes that
	// commit later, before the tool has seen them.
	head, err := s.hub.Store.HeadCursor(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if cursor > head {
		s.writeError(w, r, badRequest("cursor", "cursor %d is beyond the newest change, cursor %d: report only a cursor the hub has sent", cursor, head))
		return
	}

	if err := s.hub.Store.RecordPull(r.Context(), p.integration.ID, cursor, time.Now().UTC()); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeCursorState(w, r, max(cursor, p.integration.PullCursor))
}

func (s *Server) writeCursorState(w http.ResponseWriter, r *http.Request, cursor int64) {
	head, err := s.hub.Store.HeadCursor(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	oldest, err := s.hub.Store.OldestCursor(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Cursors move with every commit, so no copy may be reused.
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, client.CursorState{Cursor: cursor, Head: head, Oldest: oldest})
}
