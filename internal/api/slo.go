package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/freshness"
	"github.com/khub-dev/khub/internal/hub"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/slo"
	"github.com/khub-dev/khub/internal/store"
)

// defaultSeriesRange is the range of a staleness series without since.
const defaultSeriesRange = 24 * time.Hour

// stalenessParams are the query parameters of the staleness series.
var stalenessParams = []string{"since", "step"}

// staleness serves GET /v1/integrations/{id}/staleness: the recorded
// staleness samples from since (default 24 hours ago) to now, merged into
// steps of step and widened to at most slo.MaxSeriesPoints steps.
func (s *Server) staleness(w http.ResponseWriter, r *http.Request) {
	st, ok := s.loadIntegration(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	for _, key := range queryKeys(q) {
		values := q[key]
		if !slices.Contains(stalenessParams, key) {
			s.writeError(w, r, badRequest(key, "unknown query parameter %q: use %s", key, strings.Join(stalenessParams, " or ")))
			return
		}
		if len(values) > 1 {
			s.writeError(w, r, badRequest(key, "%s is given %d times: give it once", key, len(values)))
			return
		}
	}
	now := time.Now().UTC()
	since := now.Add(-defaultSeriesRange)
	if v := q.Get("since"); v != "" {
		t, err := hub.ParseTime("since", v)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !t.Before(now) {
			s.writeError(w, r, badRequest("since", "since %s is not in the past: give an earlier time, such as %s", v, now.Add(-time.Hour).Format(time.RFC3339)))
			return
		}
		since = t.UTC()
	}
	var step time.Duration
	if v := q.Get("step"); v != "" {
		d, err := knowledge.ParseDuration("step", v)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		step = d
	}
	step = slo.SeriesStep(since, now, step)

	// until is just past now, so that a sample taken at this instant is in.
	samples, err := s.hub.Store.StalenessSeries(r.Context(), st.ID, since, now.Add(time.Microsecond), step)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("read staleness series of integration %s: %w", st.ID, err))
		return
	}
	out := client.StalenessSeries{WindowSeconds: st.Freshness.Seconds(), Samples: make([]client.StalenessSample, len(samples))}
	for i, sm := range samples {
		out.Samples[i] = client.StalenessSample{At: sm.At, StalenessSeconds: sm.Staleness.Seconds(), WithinWindow: sm.WithinWindow}
	}
	writeJSON(w, http.StatusOK, out)
}

// sloView returns the "slo" field of an integration from its current
// freshness reading and its recorded samples.
func (s *Server) sloView(r *http.Request, st *store.IntegrationState, rep freshness.Report) (*client.SLO, error) {
	sum, err := slo.Summarize(r.Context(), s.hub.Store, st, rep, time.Now().UTC())
	if err != nil {
		return nil, fmt.Errorf("summarize freshness of integration %s: %w", st.ID, err)
	}
	return &client.SLO{
		StalenessSeconds:     sum.Staleness.Seconds(),
		WorstHourSeconds:     sum.WorstHour.Seconds(),
		WorstDaySeconds:      sum.WorstDay.Seconds(),
		WithinWindowRatioDay: sum.WithinRatioDay,
		Alerting:             sum.Alerting,
	}, nil
}
