package slo

import (
	"context"
	"errors"
	"time"

	"github.com/khub-dev/khub/internal/freshness"
	"github.com/khub-dev/khub/internal/store"
)

// Summary is the freshness objective of one integration as the API shows
// it.
type Summary struct {
	// Staleness is the current reading.
	Staleness time.Duration
	// WorstHour and WorstDay are the largest staleness of the last hour and
	// the last 24 hours, the current reading included.
	WorstHour time.Duration
	WorstDay  time.Duration
	// WithinRatioDay is the share of the last 24 hours' samples within the
	// window, from 0 to 1. Without samples yet, it is 1 or 0 as the current
	// reading is within the window or not.
	WithinRatioDay float64
	// Alerting is true while the integration's alert article records a
	// raised alert.
	Alerting bool
}

// Summarize condenses the stored samples of an integration with its
// current reading rep, taken at now.
func Summarize(ctx context.Context, st store.Store, in *store.IntegrationState, rep freshness.Report, now time.Time) (Summary, error) {
	stats, err := st.SummarizeStaleness(ctx, in.ID, now)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{
		Staleness: rep.Staleness,
		WorstHour: max(stats.WorstHour, rep.Staleness),
		WorstDay:  max(stats.WorstDay, rep.Staleness),
	}
	switch {
	case stats.DaySamples > 0:
		sum.WithinRatioDay = float64(stats.DayWithin) / float64(stats.DaySamples)
	case rep.WithinWindow:
		sum.WithinRatioDay = 1
	}
	a, err := st.GetArticle(ctx, AlertArticleID(in.ID))
	switch {
	case err == nil:
		sum.Alerting = isRaised(&a)
	case !errors.Is(err, store.ErrNotFound):
		return Summary{}, err
	}
	return sum, nil
}

// MaxSeriesPoints bounds the samples of a staleness series, so that a chart
// of any range stays small.
const MaxSeriesPoints = 500

// SeriesStep returns the step of a staleness series over [since, until):
// the requested step, widened when needed so that the range has at most
// MaxSeriesPoints steps. A zero step selects the narrowest such step. The
// result is a whole number of microseconds, the precision of stored
// sample times, and at least one millisecond.
func SeriesStep(since, until time.Time, step time.Duration) time.Duration {
	span := until.Sub(since)
	minimum := (span + MaxSeriesPoints - 1) / MaxSeriesPoints
	step = max(step, minimum, time.Millisecond)
	return (step + time.Microsecond - 1).Truncate(time.Microsecond)
}
