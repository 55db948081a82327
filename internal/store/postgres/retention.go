package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// PruneChanges implements store.Store.
func (s *Store) PruneChanges(ctx context.Context, before time.Time) (int64, error) {
	var deleted int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM changes
			WHERE time < $1 AND cursor < (SELECT max(cursor) FROM changes)`, before)
		if err != nil {
			return mapError(err)
		}
		deleted = tag.RowsAffected()
		return nil
	})
	return deleted, err
}

// OldestCursor implements store.Store.
func (s *Store) OldestCursor(ctx context.Context) (int64, error) {
	var oldest int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(min(cursor), 0) FROM changes`).Scan(&oldest)
	return oldest, mapError(err)
}
