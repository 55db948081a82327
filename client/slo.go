package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// SLO is an integration's freshness objective: its current staleness, the
// worst staleness the hub's recorder sampled over the last hour and day,
// and whether a freshness alert is raised.
type SLO struct {
	// StalenessSeconds is the current staleness, as in Freshness.
	StalenessSeconds float64 `json:"staleness_seconds"`
	// WorstHourSeconds and WorstDaySeconds are the largest staleness of the
	// last hour and the last 24 hours, the current reading included.
	WorstHourSeconds float64 `json:"worst_hour_seconds"`
	WorstDaySeconds  float64 `json:"worst_day_seconds"`
	// WithinWindowRatioDay is the share of the last 24 hours' samples
	// within the window, from 0 to 1. Before the first sample it is 1 or 0
	// as the current reading is within the window or not.
	WithinWindowRatioDay float64 `json:"within_window_ratio_day"`
	// Alerting is true from the moment the hub raises a freshness alert for
	// the integration until it clears it.
	Alerting bool `json:"alerting"`
}

// StalenessSeries is the response of GET /v1/integrations/{id}/staleness.
type StalenessSeries struct {
	// WindowSeconds is the integration's freshness window.
	WindowSeconds float64 `json:"window_seconds"`
	// Samples are oldest first, at most 500. Each covers one step from its
	// at, with the worst staleness sampled in the step, and is within the
	// window only when every sample in the step was. Steps without
	// samples are left out.
	Samples []StalenessSample `json:"samples"`
}

// StalenessSample is one point of a StalenessSeries.
type StalenessSample struct {
	At               time.Time `json:"at"`
	StalenessSeconds float64   `json:"staleness_seconds"`
	WithinWindow     bool      `json:"within_window"`
}

// Staleness returns the recorded staleness of an integration from since to
// now, in steps of step. A zero since means the last 24 hours, and a zero
// step lets the hub choose. The hub widens a step that would give more
// than 500 samples.
func (c *Client) Staleness(ctx context.Context, id string, since time.Time, step time.Duration) (StalenessSeries, error) {
	v := url.Values{}
	if !since.IsZero() {
		v.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	if step > 0 {
		v.Set("step", step.String())
	}
	path := integrationPath(id, "staleness")
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out StalenessSeries
	_, err := c.do(ctx, http.MethodGet, path, nil, nil, &out)
	return out, err
}
