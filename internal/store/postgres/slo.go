package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/khub-dev/khub/internal/store"
)

// RecordStaleness implements store.Store in one statement. Samples are
// grouped by key first, because ON CONFLICT DO UPDATE cannot change a row
// twice in one statement. They are inserted in key order, so two nodes that
// record the same buckets at once lock the rows in the same order. The join
// drops samples of integrations deleted since they were measured.
func (s *Store) RecordStaleness(ctx context.Context, samples []store.StalenessSample) error {
	if len(samples) == 0 {
		return nil
	}
	ids := make([]string, len(samples))
	times := make([]time.Time, len(samples))
	staleness := make([]int64, len(samples))
	within := make([]bool, len(samples))
	for i, sm := range samples {
		ids[i], times[i], staleness[i], within[i] = sm.IntegrationID, sm.At, int64(sm.Staleness), sm.WithinWindow
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO staleness_samples AS t (integration_id, at, staleness_ns, within_window)
		SELECT sm.id, sm.at, max(sm.ns), bool_and(sm.within)
		FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::boolean[]) AS sm (id, at, ns, within)
		JOIN integrations i ON i.id = sm.id
		GROUP BY sm.id, sm.at
		ORDER BY sm.id, sm.at
		ON CONFLICT (integration_id, at) DO UPDATE SET
			staleness_ns = greatest(t.staleness_ns, excluded.staleness_ns),
			within_window = t.within_window AND excluded.within_window`,
		ids, times, staleness, within)
	if err != nil {
		return fmt.Errorf("record %d staleness samples: %w", len(samples), mapError(err))
	}
	return nil
}

// StalenessSeries implements store.Store. Steps are whole microseconds,
// the precision of timestamptz, and since is truncated to a microsecond.
func (s *Store) StalenessSeries(ctx context.Context, integrationID string, since, until time.Time, step time.Duration) ([]store.StalenessSample, error) {
	stepUS := step.Microseconds()
	if stepUS < 1 {
		return nil, fmt.Errorf("postgres: staleness series of integration %q: step %v is shorter than 1µs: pass a longer step", integrationID, step)
	}
	since = since.Truncate(time.Microsecond)
	// extract(epoch FROM interval) is numeric, so the step index is exact.
	rows, err := s.pool.Query(ctx, `SELECT floor(extract(epoch FROM at - $2) * 1000000 / $3)::bigint AS step,
			max(staleness_ns), bool_and(within_window)
		FROM staleness_samples
		WHERE integration_id = $1 AND at >= $2 AND at < $4
		GROUP BY step
		ORDER BY step`,
		integrationID, since, stepUS, until)
	if err != nil {
		return nil, mapError(err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.StalenessSample, error) {
		var index, stalenessNS int64
		var within bool
		if err := row.Scan(&index, &stalenessNS, &within); err != nil {
			return store.StalenessSample{}, err
		}
		return store.StalenessSample{
			IntegrationID: integrationID,
			At:            since.Add(time.Duration(index * stepUS * int64(time.Microsecond))).UTC(),
			Staleness:     time.Duration(stalenessNS),
			WithinWindow:  within,
		}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("staleness series of integration %q: %w", integrationID, mapError(err))
	}
	return out, nil
}

// SummarizeStaleness implements store.Store.
func (s *Store) SummarizeStaleness(ctx context.Context, integrationID string, now time.Time) (store.StalenessSummary, error) {
	var sum store.StalenessSummary
	var worstHour, worstDay int64
	err := s.pool.QueryRow(ctx, `SELECT
			coalesce(max(staleness_ns) FILTER (WHERE at >= $2), 0),
			coalesce(max(staleness_ns), 0),
			count(*),
			count(*) FILTER (WHERE within_window)
		FROM staleness_samples
		WHERE integration_id = $1 AND at >= $3 AND at <= $4`,
		integrationID, now.Add(-time.Hour), now.Add(-24*time.Hour), now,
	).Scan(&worstHour, &worstDay, &sum.DaySamples, &sum.DayWithin)
	if err != nil {
		return sum, fmt.Errorf("summarize staleness of integration %q: %w", integrationID, mapError(err))
	}
	sum.WorstHour, sum.WorstDay = time.Duration(worstHour), time.Duration(worstDay)
	return sum, nil
}

// PruneStaleness implements store.Store.
func (s *Store) PruneStaleness(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM staleness_samples WHERE at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("prune staleness samples: %w", mapError(err))
	}
	return tag.RowsAffected(), nil
}
