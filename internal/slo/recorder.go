// Package slo keeps khub's freshness service-level objectives: a recorder
// samples every integration's staleness at a fixed interval, stores the
// samples, raises and clears freshness alerts as operations articles, and
// keeps the staleness gauges of /metrics current.
//
// On several nodes sharing one PostgreSQL store every node runs a recorder.
// Samples are keyed by integration and time bucket (the sample time
// truncated to the interval), and a second sample of a bucket merges into
// the first keeping the worst, so the nodes store one series per
// integration. The alert article is the shared alert state: a node writes a
// transition only over the version it read, so at most one node writes
// each transition.
package slo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/khub-dev/khub/internal/freshness"
	"github.com/khub-dev/khub/internal/hub"
	"github.com/khub-dev/khub/internal/store"
)

// Defaults of Config.
const (
	DefaultInterval = 15 * time.Second
	// DefaultRetention keeps a week of samples and the day before it, so
	// a chart of the last seven days is always complete.
	DefaultRetention = 8 * 24 * time.Hour
)

// Config tunes a Recorder. Zero values take the defaults.
type Config struct {
	// Interval is the time between two samples of every integration;
	// default 15s. Alerts need two samples in a row, so an alert is raised
	// between one and two intervals after staleness crosses the window.
	Interval time.Duration
	// Retention is how long samples are kept; default 192h (8 days).
	Retention time.Duration
	// Metrics receives the staleness gauges; nil records none.
	Metrics *Metrics
	Logger  *slog.Logger
	// Now returns the sample time; nil means time.Now. Staleness itself is
	// measured with the hub's clock.
	Now func() time.Time
}

// Recorder samples staleness, stores it and raises alerts. Create it with
// New and run it with Run.
type Recorder struct {
	hub *hub.Hub
	cfg Config
	log *slog.Logger
	// alerts and the fields below are used only by the goroutine in Run.
	alerts    map[string]*alertState
	lastPrune time.Time
}

// New returns a recorder over the hub with defaults filled in.
func New(h *hub.Hub, cfg Config) *Recorder {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Recorder{hub: h, cfg: cfg, log: log, alerts: map[string]*alertState{}}
}

// Interval returns the time between two samples.
func (r *Recorder) Interval() time.Duration { return r.cfg.Interval }

// Run samples at once and then every interval until ctx ends. A round that
// fails is logged and the next one runs on schedule.
func (r *Recorder) Run(ctx context.Context) {
	r.log.Info("freshness recorder started", "interval", r.cfg.Interval, "retention", r.cfg.Retention)
	ticker := time.NewTicker(r.cfg.Interval)
	defer ticker.Stop()
	for {
		if err := r.sample(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("freshness sampling failed; will retry", "error", err, "retry_in", r.cfg.Interval)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// sample measures every integration once, stores the samples, updates the
// gauges and alerts, and prunes old samples when a prune is due.
func (r *Recorder) sample(ctx context.Context) error {
	all, err := r.hub.Store.ListIntegrations(ctx)
	if err != nil {
		return err
	}
	head, err := r.hub.Store.HeadCursor(ctx)
	if err != nil {
		return err
	}
	at := r.cfg.Now().UTC().Truncate(r.cfg.Interval)
	samples := make([]store.StalenessSample, 0, len(all))
	reports := make([]freshness.Report, len(all))
	for i := range all {
		rep, err := r.hub.Freshness(ctx, &all[i])
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.log.Error("measure freshness failed", "integration_id", all[i].ID, "error", err)
			continue
		}
		reports[i] = rep
		samples = append(samples, store.StalenessSample{IntegrationID: all[i].ID, At: at, Staleness: rep.Staleness, WithinWindow: rep.WithinWindow})
	}
	// Alerts and gauges go on without stored samples, because they matter
	// most when the store struggles.
	recordErr := r.hub.Store.RecordStaleness(ctx, samples)
	if recordErr != nil {
		recordErr = fmt.Errorf("record %d staleness samples: %w", len(samples), recordErr)
	}

	measured := make(map[string]bool, len(samples))
	for _, s := range samples {
		measured[s.IntegrationID] = true
	}
	present := make(map[string]bool, len(all))
	for i := range all {
		present[all[i].ID] = true
		if !measured[all[i].ID] {
			continue
		}
		r.cfg.Metrics.observe(&all[i], reports[i], head)
		raised := r.evaluate(ctx, &all[i], reports[i])
		r.cfg.Metrics.setAlerting(all[i].ID, raised)
	}
	r.forgetDeleted(ctx, present)
	return errors.Join(recordErr, r.prune(ctx))
}

// forgetDeleted drops the state and gauges of integrations deleted since
// the last round, and clears their raised alerts, so that an alerts channel
// does not keep a deleted integration's alert open.
func (r *Recorder) forgetDeleted(ctx context.Context, present map[string]bool) {
	for id := range r.alerts {
		if present[id] {
			continue
		}
		delete(r.alerts, id)
		r.cfg.Metrics.forget(id)
		r.clearDeleted(ctx, id)
	}
}

// prune deletes samples older than the retention every tenth of the
// retention, at most hourly and at least once per interval.
func (r *Recorder) prune(ctx context.Context) error {
	now := r.cfg.Now()
	every := min(max(r.cfg.Retention/10, r.cfg.Interval), time.Hour)
	if now.Sub(r.lastPrune) < every {
		return nil
	}
	before := now.Add(-r.cfg.Retention)
	n, err := r.hub.Store.PruneStaleness(ctx, before)
	if err != nil {
		return fmt.Errorf("prune staleness samples: %w", err)
	}
	r.lastPrune = now
	if n > 0 {
		r.log.Debug("pruned staleness samples", "samples", n, "before", before.UTC().Format(time.RFC3339))
	}
	return nil
}
