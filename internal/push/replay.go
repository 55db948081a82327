package push

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// replayAttempts is how many times a replayed change is tried before it is
// recorded as failed again. A replay is an operator's action, so it fails
// fast rather than retrying for days.
const replayAttempts = 5

// ReplayRange selects the changes to redeliver: cursors from FromCursor to
// ToCursor, both included, and, when Since or Until is set, only changes
// committed in [Since, Until).
type ReplayRange struct {
	FromCursor, ToCursor int64
	Since, Until         time.Time
}

// ReplayStarted describes a replay that runs in the background.
type ReplayStarted struct {
	FromCursor, ToCursor int64
}

// ErrNothingToReplay means the range holds no change that the integration
// has already been sent.
var ErrNothingToReplay = errors.New("nothing to replay")

// Replay redelivers a range of an integration's changes in the background,
// beside its dispatcher and with the same webhook-ids, so receivers that
// deduplicate drop what they already have. Only changes up to the push
// cursor are replayed: later ones are still on their way. Attempts appear
// in the delivery history as usual. A replay ends with the hub; it is not
// resumed after a restart.
func (m *Manager) Replay(ctx context.Context, integrationID string, r ReplayRange) (ReplayStarted, error) {
	in, err := m.st.GetIntegration(ctx, integrationID)
	if err != nil {
		return ReplayStarted{}, err
	}
	if !in.Pattern.Pushes() {
		return ReplayStarted{}, &knowledge.FieldError{Field: "integration", Message: fmt.Sprintf("%s is a %s integration, which has no webhook to replay to", in.Name, in.Pattern)}
	}
	from, to := max(r.FromCursor, 1), in.PushCursor
	if r.ToCursor > 0 {
		to = min(r.ToCursor, in.PushCursor)
	}
	if from > to {
		return ReplayStarted{}, fmt.Errorf("cursors %d to %d, with the push cursor at %d: %w", from, to, in.PushCursor, ErrNothingToReplay)
	}

	m.mu.Lock()
	if m.base == nil || m.stopped {
		m.mu.Unlock()
		return ReplayStarted{}, errors.New("push manager is not running")
	}
	base := m.base
	m.replays.Add(1)
	m.mu.Unlock()

	d := newDispatcher(m, in)
	d.replay = true
	d.cursor = from - 1
	d.resume, d.retry, d.failedRun = store.RetryState{}, store.RetryState{}, 0
	if !r.Since.IsZero() || !r.Until.IsZero() {
		d.include = func(c *knowledge.Change) bool {
			return (r.Since.IsZero() || !c.Time.Before(r.Since)) && (r.Until.IsZero() || c.Time.Before(r.Until))
		}
	}
	ctx, cancel := context.WithCancel(base)
	m.mu.Lock()
	m.replayCancels = append(m.replayCancels, cancel)
	m.mu.Unlock()
	go func() {
		defer m.replays.Done()
		defer cancel()
		d.log.Info("replay started", "from_cursor", from, "to_cursor", to)
		d.runReplay(ctx, to)
		d.log.Info("replay finished", "from_cursor", from, "to_cursor", to, "reached", d.cursor)
	}()
	return ReplayStarted{FromCursor: from, ToCursor: to}, nil
}

// runReplay delivers the range from d.cursor to to and writes the attempts.
func (d *dispatcher) runReplay(ctx context.Context, to int64) {
	d.runCtx = ctx
	defer d.flushFinal(ctx)
	for d.cursor < to {
		page, err := d.m.st.ReadChanges(ctx, d.cursor, d.m.cfg.PageSize, d.in.Scope)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("replay: read change log failed; replay stopped", "error", err, "cursor", d.cursor)
			}
			return
		}
		changes := page.Changes
		for i, c := range changes {
			if c.Cursor > to {
				changes = changes[:i]
				break
			}
		}
		if d.deliverPage(ctx, changes) != finished {
			return
		}
		if page.ScannedTo <= d.cursor {
			return
		}
		d.advance(min(page.ScannedTo, to))
	}
}
