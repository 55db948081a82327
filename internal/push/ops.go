package push

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// Operations events are articles, so that an integration whose scope
// includes their collection receives them like any other change: an
// operations channel is a push integration scoped to OpsCollection.
const (
	// OpsCollection holds one article per integration that records its
	// last pause, resumption, disablement or exhausted retry.
	OpsCollection = knowledge.OpsCollection
	// OpsClass is the class of those articles, which hybrid integrations
	// push like the time-sensitive classes.
	OpsClass = knowledge.ClassOperations
)

// OpsArticleID returns the id of the operations article of an integration.
func OpsArticleID(integrationID string) string { return "ops-" + integrationID }

// transition records a new delivery state in the store, logs it and
// publishes it as an operations event. A store error is logged, and the
// dispatcher keeps the new state in memory.
func (d *dispatcher) transition(ctx context.Context, state knowledge.DeliveryState, reason string) {
	was := d.state()
	now := d.m.cfg.Now()
	d.in.State, d.in.StateReason, d.in.StateSince = state, reason, now
	if state == knowledge.StateActive {
		d.failedRun = 0
	}
	ctx = context.WithoutCancel(ctx)
	if err := d.m.st.SetDeliveryState(ctx, d.in.ID, state, reason, now); err != nil {
		d.log.Error("record delivery state failed", "state", state, "error", err)
	}
	d.wroteStateAt = time.Now()
	level := d.log.Warn
	if state == knowledge.StateActive {
		level = d.log.Info
	}
	level("webhook delivery state changed", "from", was, "to", state, "reason", reason)
	event := map[knowledge.DeliveryState]string{
		knowledge.StateActive:   "resumed",
		knowledge.StatePaused:   "paused",
		knowledge.StateDisabled: "disabled",
	}[state]
	d.publishOps(ctx, event, reason)
}

// publishOps writes the integration's operations article, which makes a
// change that operations channels receive. event is "paused", "resumed",
// "disabled" or "exhausted".
func (d *dispatcher) publishOps(ctx context.Context, event, detail string) {
	now := d.m.cfg.Now()
	a := knowledge.Article{
		ID:         OpsArticleID(d.in.ID),
		Title:      fmt.Sprintf("Webhook delivery to %s %s", d.in.Name, event),
		Body:       fmt.Sprintf("Integration %s (%s): delivery %s at %s.\n\n%s\n", d.in.Name, d.in.ID, event, now.UTC().Format("2006-01-02 15:04:05Z"), detail),
		Collection: OpsCollection,
		Class:      OpsClass,
		Tags:       []string{"khub-operations", event},
		Metadata: map[string]string{
			"integration_id": d.in.ID,
			"integration":    d.in.Name,
			"event":          event,
			"state":          string(d.state()),
		},
		Status: knowledge.StatusPublished,
	}
	a.Normalize()
	res, err := d.m.st.SaveArticle(context.WithoutCancel(ctx), a, store.SaveOptions{})
	if err != nil {
		d.log.Error("publish operations event failed", "event", event, "error", strings.TrimSpace(err.Error()))
		return
	}
	if res.Changed {
		d.m.wake.Notify(res.Change.Cursor)
	}
}
