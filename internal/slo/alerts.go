package slo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/khub-dev/khub/internal/freshness"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// Alerts are operations articles, one per integration, so that every
// integration whose scope names collection khub-operations or class
// operations receives them as it receives the dispatchers' pause events.
// Each transition is a new version whose metadata "event" is EventRaised
// or EventCleared.
const (
	EventRaised  = "alert-raised"
	EventCleared = "alert-cleared"
	// AlertTag is a tag of every alert article.
	AlertTag = "alert"
)

// consecutiveSamples is how many samples in a row must be on the other
// side of the window before an alert is raised or cleared, so that one
// slow sample near the window does not make the alert flap.
const consecutiveSamples = 2

// AlertArticleID returns the id of the alert article of an integration.
func AlertArticleID(integrationID string) string { return "alert-" + integrationID }

// alertState counts an integration's recent samples on each side of its
// window.
type alertState struct {
	outside, inside int
	// raised is the alert state this node last read or wrote.
	raised bool
}

// evaluate counts a sample and, once consecutiveSamples agree, makes the
// alert article agree with them. It returns whether the alert is raised,
// by the article this node last read or wrote.
func (r *Recorder) evaluate(ctx context.Context, in *store.IntegrationState, rep freshness.Report) bool {
	st := r.alerts[in.ID]
	if st == nil {
		st = &alertState{}
		r.alerts[in.ID] = st
	}
	if rep.WithinWindow {
		st.inside, st.outside = st.inside+1, 0
	} else {
		st.outside, st.inside = st.outside+1, 0
	}
	if st.inside < consecutiveSamples && st.outside < consecutiveSamples {
		return st.raised
	}
	want := st.outside >= consecutiveSamples

	// The article is read on every settled sample rather than trusted
	// from memory, because another node may have raised or cleared the
	// alert since this node last looked.
	cur, exists, err := r.readAlert(ctx, in.ID)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("read freshness alert failed", "integration_id", in.ID, "error", err)
		}
		return st.raised
	}
	st.raised = exists && isRaised(&cur)
	if st.raised == want {
		return st.raised
	}

	event := EventCleared
	if want {
		event = EventRaised
	}
	a := alertArticle(in.ID, in.Name, rep, event, r.cfg.Now().UTC())
	if err := r.writeAlert(ctx, a, cur, exists); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Another node wrote a version between the read and the write;
			// the next sample reads it and decides again.
			r.log.Debug("freshness alert changed by another writer; will decide at the next sample", "integration_id", in.ID, "event", event)
		} else if ctx.Err() == nil {
			r.log.Error("write freshness alert failed; will retry at the next sample", "integration_id", in.ID, "event", event, "error", err)
		}
		return st.raised
	}
	st.raised = want
	if want {
		r.log.Warn("freshness alert raised", "integration_id", in.ID, "name", in.Name,
			"staleness", rep.Staleness.Round(time.Millisecond), "window", in.Freshness, "oldest_pending_cursor", rep.OldestPending)
	} else {
		r.log.Info("freshness alert cleared", "integration_id", in.ID, "name", in.Name,
			"staleness", rep.Staleness.Round(time.Millisecond), "window", in.Freshness)
	}
	return want
}

// clearDeleted clears the raised alert of a deleted integration.
func (r *Recorder) clearDeleted(ctx context.Context, integrationID string) {
	cur, exists, err := r.readAlert(ctx, integrationID)
	if err != nil {
		r.log.Error("read freshness alert of deleted integration failed", "integration_id", integrationID, "error", err)
		return
	}
	if !exists || !isRaised(&cur) {
		return
	}
	name := cur.Metadata["integration"]
	now := r.cfg.Now().UTC()
	a := alertArticle(integrationID, name, freshness.Report{WithinWindow: true}, EventCleared, now)
	a.Title = fmt.Sprintf("Freshness alert closed: %s was deleted", name)
	a.Body = fmt.Sprintf("Integration %s (%s) was deleted at about %s, so its freshness alert is closed.\n",
		name, integrationID, now.Format(time.RFC3339))
	if w := cur.Metadata["window_seconds"]; w != "" {
		a.Metadata["window_seconds"] = w
	}
	err = r.writeAlert(ctx, a, cur, true)
	switch {
	case errors.Is(err, store.ErrConflict):
		// Another node closed or changed the alert since the read.
		return
	case err != nil:
		r.log.Error("clear freshness alert of deleted integration failed", "integration_id", integrationID, "error", err)
		return
	}
	r.log.Info("freshness alert cleared", "integration_id", integrationID, "name", name, "reason", "integration deleted")
}

// readAlert returns the current version of an integration's alert article
// and whether it exists.
func (r *Recorder) readAlert(ctx context.Context, integrationID string) (knowledge.Article, bool, error) {
	cur, err := r.hub.Store.GetArticle(ctx, AlertArticleID(integrationID))
	if errors.Is(err, store.ErrNotFound) {
		return knowledge.Article{}, false, nil
	}
	return cur, err == nil, err
}

// writeAlert stores a new version of the alert article over cur, or the
// first version when it does not exist, and returns store.ErrConflict when
// another version was written since cur was read. hub.SaveArticle wakes
// the push dispatchers with the new change's cursor.
func (r *Recorder) writeAlert(ctx context.Context, a knowledge.Article, cur knowledge.Article, exists bool) error {
	opts := store.SaveOptions{CreateOnly: !exists}
	if exists {
		opts.IfVersion = cur.Version
	}
	_, err := r.hub.SaveArticle(ctx, a, opts)
	return err
}

// isRaised reports whether an alert article records a raised alert. An
// archived article records none, whatever its last event.
func isRaised(a *knowledge.Article) bool {
	return a.Status != knowledge.StatusArchived && a.Metadata["event"] == EventRaised
}

// alertArticle builds the version of an integration's alert article that
// records event at time at.
func alertArticle(integrationID, name string, rep freshness.Report, event string, at time.Time) knowledge.Article {
	staleness := rep.Staleness.Round(time.Millisecond)
	var title, body string
	if event == EventRaised {
		title = fmt.Sprintf("Freshness alert: %s is outside its window", name)
		body = fmt.Sprintf("Integration %s (%s) has been outside its freshness window of %s for %d samples in a row. "+
			"At %s its staleness was %s, counted from the change at cursor %d, the oldest one it has not received.\n\n"+
			"Check that the tool is reachable and reads its changes. For push and hybrid integrations, "+
			"GET /v1/integrations/%s/deliveries lists the recent webhook attempts.\n",
			name, integrationID, rep.Window, consecutiveSamples, at.Format(time.RFC3339), staleness, rep.OldestPending, integrationID)
	} else {
		title = fmt.Sprintf("Freshness alert cleared: %s is within its window", name)
		body = fmt.Sprintf("Integration %s (%s) is back within its freshness window of %s: at %s its staleness was %s.\n",
			name, integrationID, rep.Window, at.Format(time.RFC3339), staleness)
	}
	a := knowledge.Article{
		ID:         AlertArticleID(integrationID),
		Title:      title,
		Body:       body,
		Collection: knowledge.OpsCollection,
		Class:      knowledge.ClassOperations,
		Tags:       []string{knowledge.OpsCollection, AlertTag, event},
		Metadata: map[string]string{
			"integration_id":    integrationID,
			"integration":       name,
			"event":             event,
			"staleness_seconds": strconv.FormatFloat(rep.Staleness.Seconds(), 'f', 3, 64),
			"window_seconds":    strconv.FormatFloat(rep.Window.Seconds(), 'f', 3, 64),
		},
		Status: knowledge.StatusPublished,
	}
	return a
}
