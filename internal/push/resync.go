package push

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// ResyncEventType is the CloudEvents type of the event that informs a tool
// that its copy can no longer be brought up to date from the change log.
// Retention removed entries the tool had not received. The tool should reload its scope
// (search or get every article) and then follow the changes again.
const ResyncEventType = "khub.resync.required"

// ResyncData is the data of a resync-required event.
type ResyncData struct {
	IntegrationID string `json:"integration_id"`
	// AfterCursor is the last change the tool received; the entries after
	// it up to OldestCursor are gone.
	AfterCursor  int64  `json:"after_cursor"`
	OldestCursor int64  `json:"oldest_cursor"`
	Reason       string `json:"reason"`
}

// checkRetention reports whether entries between the cursor and the next
// change the page returned were pruned, and if so sends one resync event
// and moves the cursor to just before the oldest entry. It returns false
// when the dispatcher is stopping.
func (d *dispatcher) checkRetention(ctx context.Context, next int64) bool {
	if next <= d.cursor+1 {
		return true
	}
	oldest, err := d.m.st.OldestCursor(ctx)
	if err != nil || oldest <= d.cursor+1 {
		// Out-of-scope entries explain the gap; a read error is retried
		// with the next page.
		return true
	}
	reason := fmt.Sprintf("change-log entries %d to %d were removed by retention before delivery", d.cursor+1, oldest-1)
	if !d.sendResync(ctx, oldest, reason) {
		return false
	}
	d.batch.lastError = "resync required: " + reason
	d.batch.lastErrorAt = d.m.cfg.Now()
	d.advance(oldest - 1)
	d.flushSync(ctx)
	d.publishOps(ctx, "resync-required", reason)
	return true
}

// sendResync delivers the resync event, retrying like a change until it
// succeeds, fails for good or the retry period ends. It returns false when
// the dispatcher is stopping.
func (d *dispatcher) sendResync(ctx context.Context, oldest int64, reason string) bool {
	cfg := &d.m.cfg
	id := "resync_" + strconv.FormatInt(oldest, 10)
	body, err := buildResync(cfg.Source, id, cfg.Now(), ResyncData{
		IntegrationID: d.in.ID, AfterCursor: d.cursor, OldestCursor: oldest, Reason: reason,
	})
	if err != nil {
		d.log.Error("encode resync event failed", "error", err)
		return true
	}
	d.log.Warn("resync required: sending a resync event", "after_cursor", d.cursor, "oldest_cursor", oldest)
	var since time.Time
	for attempt := 1; ; attempt++ {
		res := d.send(ctx, id, ContentType, body)
		if res.interrupted {
			return false
		}
		rec := store.Attempt{
			IntegrationID: d.in.ID, EventID: id, Cursor: oldest - 1, Type: knowledge.ChangeType("resync"),
			Attempt: attempt, StatusCode: res.status, Error: res.errText, Latency: res.latency, StartedAt: res.started,
		}
		if since.IsZero() {
			since = res.started
		}
		switch {
		case res.errText == "":
			rec.Outcome = store.OutcomeDelivered
		case !res.retryable || cfg.Now().Sub(since) >= d.set.RetryFor:
			rec.Outcome = store.OutcomeFailed
		default:
			rec.Outcome = store.OutcomeRetrying
		}
		d.batch.attempts = append(d.batch.attempts, rec)
		d.batch.dirty = true
		if rec.Outcome != store.OutcomeRetrying {
			return true
		}
		delay := backoffDelay(attempt, d.set.InitialBackoff, d.set.MaxBackoff, cfg.Rand())
		if !d.waitUntil(ctx, cfg.Now().Add(max(delay, res.retryAfter))) {
			return false
		}
	}
}

// buildResync encodes a resync-required CloudEvent.
func buildResync(source, id string, at time.Time, data ResyncData) ([]byte, error) {
	return encodeEvent(newEnvelope(source, id, ResyncEventType, data.IntegrationID, at, data))
}
