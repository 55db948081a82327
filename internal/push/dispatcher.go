package push

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// flushTimeout bounds one write of delivery records, including the last
// write after a stop, which runs after the dispatcher's context is
// cancelled.
const flushTimeout = 10 * time.Second

// maxResponseRead is the part of a response body that is read, so that a
// small body leaves the connection reusable; the body is discarded.
const maxResponseRead = 64 << 10

// dispatcher delivers the changes of one integration, one at a time in
// log order. Only its own goroutine touches its fields.
//
// Delivery is at least once: attempts and the cursor are written in
// batches, so after a crash (not a Stop) up to FlushEvery delivered
// changes are sent again, with the same webhook-id.
type dispatcher struct {
	m      *Manager
	in     store.IntegrationState
	log    *slog.Logger
	secret []byte

	// cursor is the last change delivered, failed or skipped, written to
	// the store or not.
	cursor int64
	// resume is a retry persisted by an earlier run. It applies when its
	// change comes up again.
	resume store.RetryState
	// retry is the pending retry, written with every flush.
	retry  store.RetryState
	batch  pendingRecords
	streak failureStreak
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

func newDispatcher(m *Manager, in store.IntegrationState) *dispatcher {
	d := &dispatcher{
		m:      m,
		in:     in,
		log:    m.cfg.Logger.With("integration_id", in.ID),
		cursor: in.PushCursor,
	}
	if in.Retry.Cursor > in.PushCursor {
		d.resume = in.Retry
		d.retry = in.Retry
		// The error is logged again once after a restart, so lastText
		// stays empty.
		d.streak = failureStreak{since: in.LastErrorAt, failed: in.Retry.Attempt}
	}
	return d
}

func (d *dispatcher) run(ctx context.Context) {
	secret, err := ParseSecret(d.in.WebhookSecret)
	if err != nil {
		d.log.Error("push dispatcher not started: invalid webhook secret; delete the integration and create it again", "error", err)
		d.batch.lastError = "invalid webhook secret: " + err.Error()
		d.batch.lastErrorAt = d.m.cfg.Now()
		d.batch.dirty = true
		d.flush(ctx)
		return
	}
	d.secret = secret
	d.log.Info("push dispatcher started", "destination", redactURL(d.in.WebhookURL), "pattern", d.in.Pattern, "cursor", d.cursor)
	defer func() {
		d.flush(ctx)
		d.log.Info("push dispatcher stopped", "cursor", d.cursor)
	}()

	var readFailures int
	var lastReadError string
	for {
		// Take the wake-up channel before reading, so that a change that
		// commits after the read still ends the wait below.
		changed := d.m.wake.Changed()
		before := d.cursor
		page, err := d.m.st.ReadChanges(ctx, d.cursor, d.m.cfg.PageSize, d.in.Scope)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			readFailures++
			delay := backoffDelay(readFailures, d.m.cfg.InitialBackoff, d.m.cfg.MaxBackoff, d.m.cfg.Rand())
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

		for i := range page.Changes {
			c := &page.Changes[i]
			if !d.in.PushesChange(c) {
				d.advance(c.Cursor)
				continue
			}
			if !d.deliver(ctx, c) {
				return
			}
		}
		d.advance(page.ScannedTo)

		caughtUp := page.ScannedTo <= before ||
			(len(page.Changes) < d.m.cfg.PageSize && page.ScannedTo >= d.m.wake.Head())
		if !caughtUp {
			continue
		}
		d.flush(ctx)
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// deliver sends one change until it is delivered or fails for good, and
// reports false when the dispatcher stopped first. The body is built once,
// so every attempt sends the same bytes with the same webhook-id.
//
// NOTE: changes are sent one at a time in log order, so one slow change
// holds up the rest. Parallel delivery across articles is not built yet.
func (d *dispatcher) deliver(ctx context.Context, c *knowledge.Change) bool {
	cfg := &d.m.cfg
	eventID := EventID(c)
	attempt := 0
	var due time.Time
	if d.resume.Cursor == c.Cursor {
		attempt = d.resume.Attempt
		// A due time beyond MaxBackoff comes from another configuration or
		// a clock change, so the wait is capped.
		due = d.resume.DueAt
		if latest := cfg.Now().Add(cfg.MaxBackoff); due.After(latest) {
			due = latest
		}
	} else if d.resume.Cursor != 0 {
		// The change of the persisted retry is no longer pushed.
		d.retry = store.RetryState{}
	}
	d.resume = store.RetryState{}

	body, err := BuildEvent(cfg.Source, c)
	if err != nil {
		rec := d.newAttempt(c, eventID, attempt+1, attemptResult{started: cfg.Now(), errText: "encode event: " + err.Error()})
		d.finishFailed(rec, false)
		return true
	}

	for {
		if !due.IsZero() && !d.sleep(ctx, due.Sub(cfg.Now())) {
			return false
		}
		attempt++
		res := d.send(ctx, eventID, body)
		if res.interrupted {
			// Not recorded: the receiver may or may not have the event, so
			// it is sent again after a restart.
			return false
		}
		rec := d.newAttempt(c, eventID, attempt, res)
		if res.errText == "" {
			d.finishDelivered(c, rec)
			return true
		}
		exhausted := res.retryable && attempt >= cfg.MaxAttempts
		if !res.retryable || exhausted {
			d.finishFailed(rec, exhausted)
			return true
		}

		delay := backoffDelay(attempt, cfg.InitialBackoff, cfg.MaxBackoff, cfg.Rand())
		delay = min(max(delay, res.retryAfter), cfg.MaxBackoff)
		due = cfg.Now().Add(delay)
		d.recordRetrying(rec, due, delay)
		// Persist the retry before waiting, so a restart resumes it.
		d.flush(ctx)
	}
}

// send makes one signed POST of the event. The signature covers a fresh
// timestamp, so every attempt has its own webhook-timestamp.
func (d *dispatcher) send(ctx context.Context, eventID string, body []byte) attemptResult {
	cfg := &d.m.cfg
	res := attemptResult{started: cfg.Now()}
	attemptCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(attemptCtx, http.MethodPost, d.in.WebhookURL, bytes.NewReader(body))
	if err != nil {
		res.errText = "invalid webhook URL: " + transportErrorText(err, cfg.Timeout)
		return res
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", "khub/"+cfg.Version)
	req.Header.Set(HeaderID, eventID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(res.started.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(d.secret, eventID, res.started, body))

	begin := time.Now()
	resp, err := d.m.client.Do(req)
	if err != nil {
		res.latency = time.Since(begin)
		if ctx.Err() != nil {
			res.interrupted = true
			return res
		}
		res.errText = transportErrorText(err, cfg.Timeout)
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

func (d *dispatcher) finishDelivered(c *knowledge.Change, rec store.Attempt) {
	now := d.m.cfg.Now()
	rec.Outcome = store.OutcomeDelivered
	d.batch.attempts = append(d.batch.attempts, rec)
	d.batch.lastSuccessAt = now
	d.retry = store.RetryState{}
	d.advance(c.Cursor)
	d.m.cfg.Metrics.observeAttempt(d.in.ID, rec.Outcome, rec.Latency)
	d.m.cfg.Metrics.observeDelivered(d.in.ID, now.Sub(c.Time))

	if d.streak.failed > 0 {
		d.log.Info("webhook delivery recovered", "event_id", rec.EventID, "attempt", rec.Attempt, "status", rec.StatusCode,
			"failed_attempts", d.streak.failed, "outage", now.Sub(d.streak.since).Round(time.Millisecond))
		d.streak = failureStreak{}
	}
	d.countDelivery()
}

// finishFailed ends a change that failed for good and moves past it, so
// one bad change does not block the integration.
//
// NOTE: a failed change is only recorded; there is no dead-letter queue
// to replay it yet.
func (d *dispatcher) finishFailed(rec store.Attempt, exhausted bool) {
	rec.Outcome = store.OutcomeFailed
	d.batch.attempts = append(d.batch.attempts, rec)
	d.batch.lastError = rec.Error
	d.batch.lastErrorAt = rec.StartedAt
	d.retry = store.RetryState{}
	d.advance(rec.Cursor)
	d.m.cfg.Metrics.observeAttempt(d.in.ID, rec.Outcome, rec.Latency)

	// A run of changes that fail the same way logs once, but giving up
	// after MaxAttempts is always logged.
	if d.noteFailure(rec) || exhausted {
		d.log.Error("webhook delivery failed; moving on to the next change",
			"event_id", rec.EventID, "attempt", rec.Attempt, "status", rec.StatusCode, "error", rec.Error,
			"gave_up_after_max_attempts", exhausted)
	}
	d.countDelivery()
}

func (d *dispatcher) recordRetrying(rec store.Attempt, due time.Time, delay time.Duration) {
	rec.Outcome = store.OutcomeRetrying
	d.batch.attempts = append(d.batch.attempts, rec)
	d.batch.lastError = rec.Error
	d.batch.lastErrorAt = rec.StartedAt
	d.batch.dirty = true
	d.retry = store.RetryState{Cursor: rec.Cursor, Attempt: rec.Attempt, DueAt: due}
	d.m.cfg.Metrics.observeAttempt(d.in.ID, rec.Outcome, rec.Latency)

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
	if d.batch.deliveries >= d.m.cfg.FlushEvery {
		d.flush(context.Background())
	}
}

func (d *dispatcher) advance(cursor int64) {
	if cursor > d.cursor {
		d.cursor = cursor
		d.batch.cursor = cursor
		d.batch.dirty = true
	}
}

// flush writes the pending records and the current retry state in one
// transaction. It runs even when ctx is cancelled, bounded by
// flushTimeout. On failure the records stay pending for the next flush.
func (d *dispatcher) flush(ctx context.Context) {
	if !d.batch.dirty {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	err := d.m.st.CommitDelivery(ctx, store.DeliveryCommit{
		IntegrationID: d.in.ID,
		Attempts:      d.batch.attempts,
		PushCursor:    d.batch.cursor,
		Retry:         d.retry,
		LastError:     d.batch.lastError,
		LastErrorAt:   d.batch.lastErrorAt,
		LastSuccessAt: d.batch.lastSuccessAt,
	})
	if err != nil {
		d.log.Error("record webhook deliveries failed; will write them with the next batch",
			"error", err, "attempts", len(d.batch.attempts), "cursor", d.batch.cursor)
		return
	}
	d.batch = pendingRecords{}
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
