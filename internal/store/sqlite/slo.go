package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/khub-dev/khub/internal/store"
)

// RecordStaleness implements store.Store. The INSERT selects from
// integrations, so a sample of an integration deleted since it was measured
// inserts nothing instead of failing the whole batch on its foreign key.
func (s *Store) RecordStaleness(ctx context.Context, samples []store.StalenessSample) error {
	if len(samples) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *txn) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO staleness_samples (integration_id, at_us, staleness_ns, within_window)
			SELECT id, ?, ?, ? FROM integrations WHERE id = ?
			ON CONFLICT (integration_id, at_us) DO UPDATE SET
				staleness_ns = max(staleness_ns, excluded.staleness_ns),
				within_window = min(within_window, excluded.within_window)`)
		if err != nil {
			return mapError(err)
		}
		defer stmt.Close()
		for _, sm := range samples {
			if _, err := stmt.ExecContext(ctx, sm.At.UnixMicro(), int64(sm.Staleness), sm.WithinWindow, sm.IntegrationID); err != nil {
				return fmt.Errorf("record staleness of integration %q: %w", sm.IntegrationID, mapError(err))
			}
		}
		return nil
	})
}

// StalenessSeries implements store.Store. Steps are whole microseconds,
// the precision of stored sample times.
func (s *Store) StalenessSeries(ctx context.Context, integrationID string, since, until time.Time, step time.Duration) ([]store.StalenessSample, error) {
	stepUS := step.Microseconds()
	if stepUS < 1 {
		return nil, fmt.Errorf("sqlite: staleness series of integration %q: step %v is shorter than 1µs: pass a longer step", integrationID, step)
	}
	sinceUS := since.UnixMicro()
	rows, err := s.reader.QueryContext(ctx, `SELECT (at_us - ?1) / ?2 AS step, max(staleness_ns), min(within_window)
		FROM staleness_samples
		WHERE integration_id = ?3 AND at_us >= ?1 AND at_us < ?4
		GROUP BY step
		ORDER BY step`,
		sinceUS, stepUS, integrationID, until.UnixMicro())
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var out []store.StalenessSample
	for rows.Next() {
		var index, stalenessNS int64
		var within bool
		if err := rows.Scan(&index, &stalenessNS, &within); err != nil {
			return nil, mapError(err)
		}
		out = append(out, store.StalenessSample{
			IntegrationID: integrationID,
			At:            time.UnixMicro(sinceUS + index*stepUS).UTC(),
			Staleness:     time.Duration(stalenessNS),
			WithinWindow:  within,
		})
	}
	return out, mapError(rows.Err())
}

// SummarizeStaleness implements store.Store.
func (s *Store) SummarizeStaleness(ctx context.Context, integrationID string, now time.Time) (store.StalenessSummary, error) {
	var sum store.StalenessSummary
	var worstHour, worstDay int64
	err := s.reader.QueryRowContext(ctx, `SELECT
			coalesce(max(CASE WHEN at_us >= ?2 THEN staleness_ns END), 0),
			coalesce(max(staleness_ns), 0),
			count(*),
			coalesce(sum(within_window), 0)
		FROM staleness_samples
		WHERE integration_id = ?1 AND at_us >= ?3 AND at_us <= ?4`,
		integrationID, now.Add(-time.Hour).UnixMicro(), now.Add(-24*time.Hour).UnixMicro(), now.UnixMicro(),
	).Scan(&worstHour, &worstDay, &sum.DaySamples, &sum.DayWithin)
	if err != nil {
		return sum, fmt.Errorf("summarize staleness of integration %q: %w", integrationID, mapError(err))
	}
	sum.WorstHour, sum.WorstDay = time.Duration(worstHour), time.Duration(worstDay)
	return sum, nil
}

// PruneStaleness implements store.Store.
func (s *Store) PruneStaleness(ctx context.Context, before time.Time) (int64, error) {
	var deleted int64
	err := s.write(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM staleness_samples WHERE at_us < ?`, before.UnixMicro())
		if err != nil {
			return mapError(err)
		}
		deleted, err = res.RowsAffected()
		return mapError(err)
	})
	return deleted, err
}
