package sqlite

import (
	"context"
	"time"
)

// PruneChanges implements store.Store. Times are stored as fixed-width UTC
// text, so the comparison is by time.
func (s *Store) PruneChanges(ctx context.Context, before time.Time) (int64, error) {
	var deleted int64
	err := s.write(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM changes
			WHERE time < ? AND cursor < (SELECT max(cursor) FROM changes)`, formatTime(before))
		if err != nil {
			return mapError(err)
		}
		deleted, err = res.RowsAffected()
		return mapError(err)
	})
	return deleted, err
}

// OldestCursor implements store.Store.
func (s *Store) OldestCursor(ctx context.Context) (int64, error) {
	var oldest int64
	err := s.reader.QueryRowContext(ctx, `SELECT coalesce(min(cursor), 0) FROM changes`).Scan(&oldest)
	return oldest, mapError(err)
}
