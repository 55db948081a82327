package push

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// flushTimeout bounds one write of delivery records, including the last
// write after a stop, which runs after the dispatcher's context is
// cancelled.
const flushTimeout = 10 * time.Second

// maxResponseRead is the number of response body bytes read and discarded,
// so that the connection stays reusable after a small body.
const maxResponseRead = 64 << 10

// dispatcher delivers the changes of one integration in log order, one
// request at a time, each request carrying one event or a batch. Only its
// own goroutine touches its fields.
//
// NOTE: an integration has one request in flight at a time, which keeps
// every article's versions in order. A tool that responds slowly is
// therefore limited to one request per response time. Batching, not
// parallel requests, lets such a tool catch up.
//
// Delivery is at least once: attempts and the cursor are written in
// batches through the manager's recorder while the dispatcher goes on
// sending. After a crash (not a Stop) up to about three batches of
// FlushEvery delivered changes, or three requests when a request carries
// more, are sent again, with the same webhook-ids.
type dispatcher struct {
	m   *Manager
	in  store.IntegrationState
	set knowledge.DeliverySettings
	log *slog.Logger
	// secrets sign every request: the current secret first, then the
	// previous one while its rotation overlap lasts.
	secrets [][]byte
	// previousUntil ends the previous secret's signing, checked at each
	// request so that it stops on time between refreshes.
	previousUntil time.Time
	limiter       *rate.Limiter

	// cursor is the last change delivered, failed or skipped, written to
	// the store or not.
	cursor int64
	// resume is a retry persisted by an earlier run. It applies when its
	// change comes up again.
	resume store.RetryState
	// retry is the pending retry, written with every flush.
	retry store.RetryState
	batch pendingRecords
	// slot holds the records handed to the recorder. inflight is the
	// ticket of the last hand-over and older the one before it, or nil.
	slot     *recordSlot
	inflight *flushTicket
	older    *flushTicket
	streak   failureStreak
	// failedRun counts retryable failed attempts in a row, across changes,
	// for the circuit breaker.
	failedRun   int
	refreshedAt time.Time
	// stale is set by Manager.Refresh when an operator on this node
	// changed the integration, and poke wakes the dispatcher for it, so
	// that the next request carries a rotated secret and a resume takes
	// effect at once, not after StateRefresh.
	stale atomic.Bool
	poke  chan struct{}
	// wroteStateAt is the time, by the monotonic clock, at which the
	// dispatcher was made or last wrote its integration's state. A
	// refresh uses only snapshots read after it, so it never undoes that
	// write or misses an integration that was just created.
	wroteStateAt time.Time
	// flushDue is the deadline for writing the pending records, or zero
	// when none are pending.
	flushDue time.Time
	// replay marks a dispatcher that redelivers a range beside the
	// integration's own. It records attempts only, gives up after
	// replayAttempts, and neither pauses nor disables the integration.
	replay bool
	// include, when set, limits delivery to the changes it accepts.
	include func(*knowledge.Change) bool
	// runCtx is the context of run or runReplay, which ends when the
	// dispatcher stops. It bounds the wait of flushes that advance starts.
	runCtx context.Context
}

// pendingRecords are delivery results not yet written to the store.
type pendingRecords struct {
	attempts      []store.Attempt
	cursor        int64 // new push cursor, or 0
	lastError     string
	lastErrorAt   time.Time
	lastSuccessAt time.Time
	deliveries    int // changes finished, delivered or failed, since the last flush
	dirty         bool
}

// failureStreak is a run of failed attempts, so that a repeated error is
// logged once and the recovery is logged with its length.
type failureStreak struct {
	since    time.Time
	failed   int
	lastText string // error text of the last logged failure
}

// attemptResult is the outcome of one HTTP attempt.
type attemptResult struct {
	started    time.Time
	latency    time.Duration
	status     int    // 0 when no response arrived
	errText    string // empty on a 2xx response
	retryable  bool
	retryAfter time.Duration // from Retry-After on 429 and 503, else 0
	// interrupted is set when the dispatcher stopped during the attempt,
	// so its outcome is unknown.
	interrupted bool
}

// outcome is the result of one request for its changes.
type outcome int

const (
	// finished: delivered or given up, and the cursor moved past them.
	finished outcome = iota
	// stopped: the dispatcher is stopping, so nothing more is sent.
	stopped
	// halted: the integration was disabled, so the changes wait for a resume.
	halted
)

func newDispatcher(m *Manager, in store.IntegrationState) *dispatcher {
	d := &dispatcher{
		m:      m,
		log:    m.cfg.Logger.With("integration_id", in.ID),
		cursor: in.PushCursor,
		slot:   &recordSlot{},
		poke:   make(chan struct{}, 1),
		runCtx: context.Background(),
		// The integration is in the store before its dispatcher is made.
		wroteStateAt: time.Now(),
	}
	d.apply(in)
	if in.Retry.Cursor > in.PushCursor {
		d.resume = in.Retry
		d.retry = in.Retry
		// The error is logged again once after a restart, so lastText
		// stays empty.
		d.streak = failureStreak{since: in.LastErrorAt, failed: in.Retry.Attempt}
		d.failedRun = in.Retry.Attempt
	}
	return d
}

// apply takes the integration's stored settings, secrets and state.
func (d *dispatcher) apply(in store.IntegrationState) {
	d.in = in
	d.set = d.m.settings(in.Delivery)
	d.refreshedAt = d.m.cfg.Now()
	d.limiter = nil
	if d.set.RateLimit > 0 {
		// A burst of one spaces requests evenly.
		d.limiter = rate.NewLimiter(rate.Limit(d.set.RateLimit), 1)
	}
	d.secrets = d.secrets[:0]
	if secret, err := ParseSecret(in.WebhookSecret); err == nil {
		d.secrets = append(d.secrets, secret)
	}
	d.previousUntil = time.Time{}
	if in.PreviousSecret != "" && d.m.cfg.Now().Before(in.PreviousSecretUntil) {
		if previous, err := ParseSecret(in.PreviousSecret); err == nil {
			d.secrets = append(d.secrets, previous)
			d.previousUntil = in.PreviousSecretUntil
		}
	}
}

// state returns the integration's delivery state, active when unset.
func (d *dispatcher) state() knowledge.DeliveryState {
	if d.in.State == "" {
		return knowledge.StateActive
	}
	return d.in.State
}

// refresh re-reads the integration when StateRefresh has passed since the
// last read, and reports false when the integration is gone. A store error
// keeps the current settings until the next refresh. The state comes from
// the manager's shared snapshot, read at most StateRefresh ago, so a
// change reaches the dispatcher within about twice StateRefresh.
func (d *dispatcher) refresh(ctx context.Context) bool {
	forced := d.stale.Swap(false)
	if !forced && d.m.cfg.Now().Sub(d.refreshedAt) < d.m.cfg.StateRefresh {
		return true
	}
	notBefore := time.Now().Add(-d.m.cfg.StateRefresh)
	if d.wroteStateAt.After(notBefore) {
		notBefore = d.wroteStateAt
	}
	if forced {
		// The shared snapshot may predate the operator's change.
		notBefore = time.Now()
	}
	in, found, err := d.m.states.lookup(ctx, d.m.st, d.in.ID, notBefore)
	if err == nil && !found {
		return false
	}
	if err != nil {
		d.refreshedAt = d.m.cfg.Now()
		return true
	}
	if d.state() != knowledge.StateActive && (in.State == "" || in.State == knowledge.StateActive) {
		d.log.Info("webhook delivery resumed by an operator", "was", d.state())
		d.failedRun = 0
	}
	// The cursor and retry state belong to this dispatcher. Only settings,
	// secrets and the state come from the store.
	in.PushCursor, in.Retry = d.in.PushCursor, d.in.Retry
	d.apply(in)
	return true
}

func (d *dispatcher) run(ctx context.Context) {
	d.runCtx = ctx
	if _, err := ParseSecret(d.in.WebhookSecret); err != nil {
		d.log.Error("push dispatcher not started: invalid webhook secret; delete the integration and create it again", "error", err)
		d.batch.lastError = "invalid webhook secret: " + err.Error()
		d.batch.lastErrorAt = d.m.cfg.Now()
		d.batch.dirty = true
		d.flushFinal(ctx)
		return
	}
	d.log.Info("push dispatcher started", "destination", redactURL(d.in.WebhookURL), "pattern", d.in.Pattern,
		"cursor", d.cursor, "state", d.state(), "batch_size", d.set.BatchSize)
	defer func() {
		d.flushFinal(ctx)
		d.log.Info("push dispatcher stopped", "cursor", d.cursor)
	}()

	var readFailures int
	var lastReadError string
	for {
		if d.state() == knowledge.StateDisabled {
			// Nothing is sent until an operator resumes the integration.
			d.flushSync(ctx)
			if !d.sleep(ctx, d.m.cfg.StateRefresh) || !d.refresh(ctx) {
				return
			}
			continue
		}
		if d.stale.Load() && !d.refresh(ctx) {
			return
		}
		// Take the wake-up channel before reading, so that a change that
		// commits after the read still ends the wait below.
		changed := d.m.wake.Changed()
		before := d.cursor
		page, err := d.m.tail.read(ctx, d.cursor, d.m.cfg.PageSize, d.in.Scope)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			readFailures++
			delay := backoffDelay(readFailures, d.set.InitialBackoff, d.set.MaxBackoff, d.m.cfg.Rand())
			if err.Error() != lastReadError {
				lastReadError = err.Error()
				d.log.Error("read change log failed; will retry", "error", err, "retry_in", delay)
			}
			if !d.sleep(ctx, delay) {
				return
			}
			continue
		}
		readFailures, lastReadError = 0, ""

		next := page.ScannedTo + 1
		if len(page.Changes) > 0 {
			next = page.Changes[0].Cursor
		}
		if !d.checkRetention(ctx, next) {
			return
		}
		if d.cursor > before {
			// The cursor moved past pruned entries, so read again from there.
			continue
		}

		switch d.deliverPage(ctx, page.Changes) {
		case stopped:
			return
		case halted:
			continue
		}
		d.advance(page.ScannedTo)

		caughtUp := page.ScannedTo <= before ||
			(len(page.Changes) < d.m.cfg.PageSize && page.ScannedTo >= d.m.wake.Head())
		if !caughtUp {
			continue
		}
		if !d.idle(ctx, changed) || !d.refresh(ctx) {
			return
		}
	}
}

// idle waits, caught up, for the next commit or the next state refresh,
// and writes pending records once they are FlushDelay old. Writing them at
// once would cost each dispatcher one write transaction per change when
// changes trickle in. It reports false when the dispatcher is stopping.
func (d *dispatcher) idle(ctx context.Context, changed <-chan struct{}) bool {
	cfg := &d.m.cfg
	if d.batch.dirty && d.flushDue.IsZero() {
		d.flushDue = cfg.Now().Add(cfg.FlushDelay)
	}
	refresh := time.NewTimer(cfg.StateRefresh)
	defer refresh.Stop()
	for {
		var flushC <-chan time.Time
		if d.batch.dirty {
			wait := d.flushDue.Sub(cfg.Now())
			if wait <= 0 {
				d.flush(ctx)
				continue
			}
			t := time.NewTimer(wait)
			defer t.Stop()
			flushC = t.C
		}
		select {
		case <-changed:
			return true
		case <-refresh.C:
			return true
		case <-d.poke:
			return true
		case <-flushC:
			d.flush(ctx)
		case <-ctx.Done():
			return false
		}
	}
}

// deliverPage sends the changes of one page that the integration pushes,
// in order, grouped into requests of up to BatchSize events. Changes it
// does not push, and with Coalesce older versions of an article that a
// newer one in the page supersedes, are passed over.
func (d *dispatcher) deliverPage(ctx context.Context, changes []knowledge.Change) outcome {
	reqs, trailing := d.groupPage(changes)
	bodies := d.encodeAhead(reqs)
	defer bodies.stop()
	for i := range reqs {
		r := &reqs[i]
		if r.before > 0 {
			d.advance(r.before)
		}
		out := d.deliver(ctx, r.changes, r.leaving, bodies.get(i))
		if out != finished {
			return out
		}
		// The cursor moves past the changes passed over inside the
		// request only once the request is delivered.
		if r.passed > 0 {
			d.advance(r.passed)
		}
	}
	if trailing > 0 {
		d.advance(trailing)
	}
	return finished
}

// pageRequest is one request of a page, with the last changes passed over
// before and inside it, or 0.
type pageRequest struct {
	before  int64
	changes []*knowledge.Change
	// leaving marks the changes that move their article out of the
	// integration's scope, which are sent as removals, or is nil for none.
	leaving []bool
	passed  int64
	batched bool // the body is a batch, and the webhook-id a BatchID
}

// groupPage splits the changes that the integration pushes into requests,
// and returns them with the last change passed over after the last one.
func (d *dispatcher) groupPage(changes []knowledge.Change) ([]pageRequest, int64) {
	var newest map[string]int64
	if d.set.Coalesce {
		newest = make(map[string]int64, len(changes))
		for i := range changes {
			if d.in.PushesChange(&changes[i]) {
				newest[changes[i].ArticleID] = changes[i].Cursor
			}
		}
	}
	batched := d.set.BatchSize > 1
	var reqs []pageRequest
	cur := pageRequest{batched: batched}
	for i := range changes {
		c := &changes[i]
		pushes := d.in.PushesChange(c) && (newest == nil || newest[c.ArticleID] == c.Cursor) &&
			(d.include == nil || d.include(c))
		if !pushes {
			if len(cur.changes) == 0 {
				cur.before = c.Cursor
			} else {
				cur.passed = c.Cursor
			}
			continue
		}
		if d.in.Scope.Leaves(c) {
			if cur.leaving == nil {
				cur.leaving = make([]bool, len(cur.changes))
			}
			cur.leaving = append(cur.leaving, true)
		} else if cur.leaving != nil {
			cur.leaving = append(cur.leaving, false)
		}
		cur.changes = append(cur.changes, c)
		if len(cur.changes) >= d.set.BatchSize {
			reqs = append(reqs, cur)
			cur = pageRequest{batched: batched}
		}
	}
	if len(cur.changes) > 0 {
		reqs = append(reqs, cur)
		return reqs, 0
	}
	return reqs, cur.before
}

// encodedBody is a request body, or the error that encoding it returned.
type encodedBody struct {
	body        []byte
	contentType string
	batched     bool
	err         error
}

// pageBodies returns the bodies of a page's requests in order. With more
// than one request, a goroutine encodes the next ones while the dispatcher
// sends, so that encoding a batch overlaps the receiver's handling of the
// previous one.
type pageBodies struct {
	d    *dispatcher
	reqs []pageRequest
	next chan encodedBody // nil when bodies are encoded on demand
	quit chan struct{}
}

func (d *dispatcher) encodeAhead(reqs []pageRequest) *pageBodies {
	b := &pageBodies{d: d, reqs: reqs}
	if len(reqs) < 2 {
		return b
	}
	b.next = make(chan encodedBody, 1)
	b.quit = make(chan struct{})
	go func() {
		for i := range reqs {
			body, contentType, err := d.encode(&reqs[i])
			select {
			case b.next <- encodedBody{body, contentType, reqs[i].batched, err}:
			case <-b.quit:
				return
			}
		}
	}()
	return b
}

// get returns the body of request i. Requests must be taken in order.
func (b *pageBodies) get(i int) encodedBody {
	if b.next == nil {
		body, contentType, err := b.d.encode(&b.reqs[i])
		return encodedBody{body, contentType, b.reqs[i].batched, err}
	}
	return <-b.next
}

// stop ends the encoding goroutine, if any, when the page ends early.
func (b *pageBodies) stop() {
	if b.quit != nil {
		close(b.quit)
	}
}

// deliver sends one request with the changes until it is delivered, fails
// for good or the dispatcher stops or is disabled. The body is built once,
// so every attempt sends the same bytes with the same webhook-id.
func (d *dispatcher) deliver(ctx context.Context, changes []*knowledge.Change, leaving []bool, enc encodedBody) outcome {
	cfg := &d.m.cfg
	first := changes[0]
	requestID := EventID(first)
	if enc.batched {
		requestID = BatchID(changes)
	}
	attempt := 0
	var due time.Time
	if d.resume.Cursor == first.Cursor {
		attempt = d.resume.Attempt
		// A due time beyond the maximum wait comes from other settings or
		// a clock change, so the wait is capped.
		due = d.resume.DueAt
		longest := d.set.MaxBackoff
		if d.state() == knowledge.StatePaused {
			longest = max(longest, d.set.ProbeEvery)
		}
		if latest := cfg.Now().Add(longest); due.After(latest) {
			due = latest
		}
		d.retry = d.resume
	} else if d.resume.Cursor != 0 {
		// The change of the persisted retry is no longer pushed.
		d.retry = store.RetryState{}
	}
	d.resume = store.RetryState{}

	body, contentType, err := enc.body, enc.contentType, enc.err
	if err != nil {
		res := attemptResult{started: cfg.Now(), errText: "encode event: " + err.Error()}
		d.finishFailed(d.newAttempts(changes, leaving, requestID, attempt+1, res), false)
		return finished
	}

	for {
		if !due.IsZero() && !d.waitUntil(ctx, due) {
			return stopped
		}
		if d.state() == knowledge.StateDisabled {
			return halted
		}
		if d.limiter != nil && d.limiter.Wait(ctx) != nil {
			return stopped
		}
		attempt++
		res := d.send(ctx, requestID, contentType, body)
		if res.interrupted {
			// Not recorded: the receiver may or may not have the events, so
			// they are sent again after a restart.
			return stopped
		}
		recs := d.newAttempts(changes, leaving, requestID, attempt, res)
		if res.errText == "" {
			d.finishDelivered(changes, recs)
			return finished
		}
		if d.replay && (res.status == http.StatusGone || !res.retryable || attempt >= replayAttempts) {
			d.finishFailed(recs, res.retryable)
			if res.status == http.StatusGone {
				return halted
			}
			return finished
		}
		if res.status == http.StatusGone {
			// 410 Gone marks the endpoint as removed for good, so stop
			// sending until an operator resumes, and keep the changes waiting.
			d.retry = store.RetryState{Cursor: first.Cursor, Attempt: attempt, DueAt: cfg.Now(), Since: d.retrySince(res)}
			d.recordRetrying(recs, d.retry.DueAt, 0)
			d.transition(ctx, knowledge.StateDisabled, "the webhook returned 410 Gone: resume the integration once the endpoint exists again")
			d.flushSync(ctx)
			return halted
		}
		if !res.retryable {
			d.finishFailed(recs, false)
			return finished
		}

		since := d.retrySince(res)
		exhausted := cfg.Now().Sub(since) >= d.set.RetryFor || (cfg.MaxAttempts > 0 && attempt >= cfg.MaxAttempts)
		if exhausted {
			d.finishFailed(recs, true)
			d.publishOps(ctx, "exhausted", fmt.Sprintf("gave up on %s after %d attempts over %s: %s",
				requestID, attempt, cfg.Now().Sub(since).Round(time.Second), res.errText))
			return finished
		}

		d.failedRun++
		if d.failedRun >= d.set.PauseAfter && d.state() == knowledge.StateActive {
			d.transition(ctx, knowledge.StatePaused, fmt.Sprintf("%d failed attempts in a row, the last: %s; probing every %s", d.failedRun, res.errText, d.set.ProbeEvery))
		}
		delay := backoffDelay(attempt, d.set.InitialBackoff, d.set.MaxBackoff, cfg.Rand())
		ceiling := d.set.MaxBackoff
		if d.state() == knowledge.StatePaused {
			delay = d.set.ProbeEvery
			ceiling = max(ceiling, d.set.ProbeEvery)
		}
		delay = min(max(delay, res.retryAfter), ceiling)
		due = cfg.Now().Add(delay)
		d.retry = store.RetryState{Cursor: first.Cursor, Attempt: attempt, DueAt: due, Since: since}
		d.recordRetrying(recs, due, delay)
		// Persist the retry before waiting, so a restart resumes it.
		d.flushSync(ctx)
	}
}

// retrySince returns the start time of the current change's failures,
// which is the persisted start of its retries or else this attempt.
func (d *dispatcher) retrySince(res attemptResult) time.Time {
	if !d.retry.Since.IsZero() {
		return d.retry.Since
	}
	return res.started
}

// waitUntil sleeps until due, re-reading the integration every
// StateRefresh so that an operator's resume cuts a pause short. It
// reports false when the dispatcher is stopping or the integration is
// gone.
func (d *dispatcher) waitUntil(ctx context.Context, due time.Time) bool {
	for {
		wait := due.Sub(d.m.cfg.Now())
		if wait <= 0 {
			return true
		}
		was := d.state()
		if !d.sleep(ctx, min(wait, d.m.cfg.StateRefresh)) {
			return false
		}
		if !d.refresh(ctx) {
			return false
		}
		if was != knowledge.StateActive && d.state() == knowledge.StateActive {
			return true
		}
	}
}

// encode builds the request body: one structured CloudEvent, or when
// batched a JSON array of them, with a removal event for each change that
// leaves the scope. It reads no field of d that a refresh changes, so it
// may run beside the dispatcher's goroutine.
func (d *dispatcher) encode(req *pageRequest) ([]byte, string, error) {
	event := func(i int) ([]byte, error) {
		if req.leaving != nil && req.leaving[i] {
			return BuildRemovedEvent(d.m.tail.source, req.changes[i])
		}
		return d.m.tail.event(req.changes[i])
	}
	if !req.batched {
		body, err := event(0)
		return body, ContentType, err
	}
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i := range req.changes {
		ev, err := event(i)
		if err != nil {
			return nil, "", err
		}
		if i == 0 {
			// Events of one integration have about the same size.
			buf.Grow(len(req.changes) * (len(ev) + 1))
		} else {
			buf.WriteByte(',')
		}
		buf.Write(ev)
	}
	buf.WriteByte(']')
	return buf.Bytes(), BatchContentType, nil
}

// send makes one signed POST of the body. The signature covers a fresh
// timestamp, so every attempt has its own webhook-timestamp.
func (d *dispatcher) send(ctx context.Context, requestID, contentType string, body []byte) attemptResult {
	cfg := &d.m.cfg
	leave, ok := d.m.gate.enter(ctx)
	if !ok {
		return attemptResult{started: cfg.Now(), interrupted: true}
	}
	defer leave()
	res := attemptResult{started: cfg.Now()}
	attemptCtx, cancel := context.WithTimeout(ctx, d.set.Timeout)
	defer cancel()
	// The place in the gate is given up once the request is written, so
	// waiting for the response holds no other dispatcher back.
	attemptCtx = httptrace.WithClientTrace(attemptCtx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { leave() },
	})

	req, err := http.NewRequestWithContext(attemptCtx, http.MethodPost, d.in.WebhookURL, bytes.NewReader(body))
	if err != nil {
		res.errText = "invalid webhook URL: " + transportErrorText(err, d.set.Timeout)
		return res
	}
	secrets := d.secrets
	if len(secrets) > 1 && !res.started.Before(d.previousUntil) {
		secrets = secrets[:1]
	}
	signatures := make([]string, len(secrets))
	for i, secret := range secrets {
		signatures[i] = Sign(secret, requestID, res.started, body)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "khub/"+cfg.Version)
	req.Header.Set(HeaderID, requestID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(res.started.Unix(), 10))
	// Standard Webhooks separates several signatures with spaces, and a
	// receiver accepts the request when any one verifies.
	req.Header.Set(HeaderSignature, strings.Join(signatures, " "))

	begin := time.Now()
	resp, err := d.m.client.Do(req)
	if err != nil {
		res.latency = time.Since(begin)
		if ctx.Err() != nil {
			res.interrupted = true
			return res
		}
		res.errText = transportErrorText(err, d.set.Timeout)
		res.retryable = true
		return res
	}
	// The body carries no meaning for khub, and an error reading it does
	// not change the outcome that the status code gives.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseRead))
	resp.Body.Close()
	res.latency = time.Since(begin)
	res.status = resp.StatusCode
	if res.status >= 200 && res.status < 300 {
		return res
	}

	res.errText = statusText(res.status)
	res.retryable = retryableStatus(res.status)
	if res.status == http.StatusTooManyRequests || res.status == http.StatusServiceUnavailable {
		if wait, ok := parseRetryAfter(resp.Header.Get("Retry-After"), cfg.Now()); ok {
			res.retryAfter = wait
		}
	}
	return res
}

// newAttempts returns one attempt record per change of a request. leaving
// marks the changes sent as removals, or is nil for none.
func (d *dispatcher) newAttempts(changes []*knowledge.Change, leaving []bool, requestID string, attempt int, res attemptResult) []store.Attempt {
	recs := make([]store.Attempt, len(changes))
	for i, c := range changes {
		recs[i] = d.newAttempt(c, requestID, attempt, res)
		if leaving != nil && leaving[i] {
			recs[i].Type = knowledge.ChangeRemoved
		}
	}
	return recs
}

func (d *dispatcher) newAttempt(c *knowledge.Change, eventID string, attempt int, res attemptResult) store.Attempt {
	return store.Attempt{
		IntegrationID: d.in.ID,
		EventID:       eventID,
		Cursor:        c.Cursor,
		ArticleID:     c.ArticleID,
		Version:       c.Version,
		Type:          c.Type,
		Attempt:       attempt,
		StatusCode:    res.status,
		Error:         res.errText,
		Latency:       res.latency,
		StartedAt:     res.started,
	}
}

func (d *dispatcher) finishDelivered(changes []*knowledge.Change, recs []store.Attempt) {
	now := d.m.cfg.Now()
	for i := range recs {
		recs[i].Outcome = store.OutcomeDelivered
		d.m.cfg.Metrics.observeAttempt(d.in.ID, recs[i].Outcome, recs[i].StatusCode, recs[i].Latency)
		d.m.cfg.Metrics.observeDelivered(d.in.ID, now.Sub(changes[i].Time))
		d.countDelivery()
	}
	d.batch.attempts = append(d.batch.attempts, recs...)
	d.batch.lastSuccessAt = now
	d.retry = store.RetryState{}
	d.advance(changes[len(changes)-1].Cursor)
	d.failedRun = 0

	last := recs[len(recs)-1]
	if d.streak.failed > 0 {
		d.log.Info("webhook delivery recovered", "event_id", last.EventID, "attempt", last.Attempt, "status", last.StatusCode,
			"failed_attempts", d.streak.failed, "outage", now.Sub(d.streak.since).Round(time.Millisecond))
		d.streak = failureStreak{}
	}
	if d.state() == knowledge.StatePaused && !d.replay {
		d.transition(context.Background(), knowledge.StateActive, "a probe to the webhook succeeded with status "+strconv.Itoa(last.StatusCode))
	}
}

// finishFailed ends changes that failed for good and moves past them, so
// one bad change does not block the integration. They stay in the
// delivery history with outcome failed, from where they can be replayed.
func (d *dispatcher) finishFailed(recs []store.Attempt, exhausted bool) {
	for i := range recs {
		recs[i].Outcome = store.OutcomeFailed
		d.m.cfg.Metrics.observeAttempt(d.in.ID, recs[i].Outcome, recs[i].StatusCode, recs[i].Latency)
		d.countDelivery()
	}
	rec := recs[len(recs)-1]
	d.batch.attempts = append(d.batch.attempts, recs...)
	d.batch.lastError = rec.Error
	d.batch.lastErrorAt = rec.StartedAt
	d.retry = store.RetryState{}
	d.advance(rec.Cursor)

	// A run of changes that fail the same way logs once, but giving up
	// after the retry period is always logged.
	if d.noteFailure(rec) || exhausted {
		d.log.Error("webhook delivery failed; moving on to the next change",
			"event_id", rec.EventID, "attempt", rec.Attempt, "status", rec.StatusCode, "error", rec.Error,
			"gave_up_after_retry_period", exhausted)
	}
}

func (d *dispatcher) recordRetrying(recs []store.Attempt, due time.Time, delay time.Duration) {
	for i := range recs {
		recs[i].Outcome = store.OutcomeRetrying
		d.m.cfg.Metrics.observeAttempt(d.in.ID, recs[i].Outcome, recs[i].StatusCode, recs[i].Latency)
	}
	rec := recs[len(recs)-1]
	d.batch.attempts = append(d.batch.attempts, recs...)
	d.batch.lastError = rec.Error
	d.batch.lastErrorAt = rec.StartedAt
	d.batch.dirty = true

	if d.noteFailure(rec) {
		d.log.Warn("webhook delivery failed; will retry",
			"event_id", rec.EventID, "attempt", rec.Attempt, "status", rec.StatusCode, "error", rec.Error,
			"retry_in", delay.Round(time.Millisecond))
	}
}

// noteFailure adds a failed attempt to the streak and reports whether its
// error text differs from the last one logged.
func (d *dispatcher) noteFailure(rec store.Attempt) bool {
	if d.streak.failed == 0 {
		d.streak.since = rec.StartedAt
	}
	d.streak.failed++
	if rec.Error == d.streak.lastText {
		return false
	}
	d.streak.lastText = rec.Error
	return true
}

func (d *dispatcher) countDelivery() {
	d.batch.dirty = true
	d.batch.deliveries++
}

// advance moves the cursor forward, and writes the records once FlushEvery
// changes have finished since the last write.
func (d *dispatcher) advance(cursor int64) {
	if cursor > d.cursor {
		d.cursor = cursor
		d.batch.cursor = cursor
		d.batch.dirty = true
	}
	if d.batch.deliveries >= d.m.cfg.FlushEvery {
		d.flush(d.runCtx)
	}
}

// flush hands the pending records and the current retry state to the
// recorder, which writes them in one transaction with its next group, and
// returns without waiting for the write. While the hand-over before the
// last one is still being written it waits for that first, until ctx
// ends, so that a dispatcher runs at most two hand-overs ahead of the
// store. Two rather than one let hand-overs that arrive during a write
// merge into the next, so a store that is slower than the receiver gets
// fewer, larger transactions.
func (d *dispatcher) flush(ctx context.Context) {
	if !d.batch.dirty {
		return
	}
	if d.older != nil && !d.older.finished() {
		// A failed write is retried by the recorder, and this batch merges
		// into it, so the outcome does not matter here.
		_ = d.older.wait(ctx)
	}
	ticket := d.m.rec.submit(ctx, d.slot, store.DeliveryCommit{
		AttemptsOnly:  d.replay,
		IntegrationID: d.in.ID,
		Attempts:      d.batch.attempts,
		PushCursor:    d.batch.cursor,
		Retry:         d.retry,
		LastError:     d.batch.lastError,
		LastErrorAt:   d.batch.lastErrorAt,
		LastSuccessAt: d.batch.lastSuccessAt,
	})
	if ticket != d.inflight {
		// Records merged into a hand-over that still waits share its
		// ticket.
		d.older, d.inflight = d.inflight, ticket
	}
	d.batch = pendingRecords{}
	d.flushDue = time.Time{}
}

// flushSync hands the pending records over and waits until everything
// handed over is written. It waits even when ctx is cancelled, bounded by
// flushTimeout. On failure the recorder keeps the records and retries.
func (d *dispatcher) flushSync(ctx context.Context) {
	if err := d.flushWait(ctx); err != nil {
		d.log.Error("record webhook deliveries failed; the recorder retries them", "error", err)
	}
}

func (d *dispatcher) flushWait(ctx context.Context) error {
	d.flush(ctx)
	if d.inflight == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	return d.inflight.wait(ctx)
}

// flushFinal writes the pending records as the dispatcher stops. Records
// that cannot be written are dropped, so their changes are sent again by
// the integration's next dispatcher, with the same webhook-ids.
func (d *dispatcher) flushFinal(ctx context.Context) {
	if err := d.flushWait(ctx); err != nil {
		d.m.rec.discard(d.slot)
		d.log.Error("record webhook deliveries failed; their changes will be sent again", "error", err, "cursor", d.cursor)
	}
}

// sleep waits for the duration and reports false if ctx ended first.
func (d *dispatcher) sleep(ctx context.Context, wait time.Duration) bool {
	if wait <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-d.poke:
		// Callers re-read the state and compute their wait again.
		return true
	case <-ctx.Done():
		return false
	}
}

// redactURL returns the scheme and host of a webhook URL for logs. The
// path and query string may carry a token, so they are left out.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host
}
