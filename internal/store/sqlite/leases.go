package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// validateLease checks the arguments of AcquireLease.
func validateLease(integrationID, node string, ttl time.Duration) error {
	if node == "" {
		return fmt.Errorf("sqlite: acquire lease of integration %q: the node name is empty: pass the name of this hub process", integrationID)
	}
	if ttl < 0 {
		return fmt.Errorf("sqlite: acquire lease of integration %q: ttl %v is negative: pass 0 or more", integrationID, ttl)
	}
	return nil
}

// AcquireLease implements store.Store. Expiry times come from this
// process's clock, which every process sharing the file agrees on, because
// WAL mode requires them to run on one host. They keep nanoseconds.
func (s *Store) AcquireLease(ctx context.Context, integrationID, node string, ttl time.Duration) (bool, error) {
	if err := validateLease(integrationID, node, ttl); err != nil {
		return false, err
	}
	var acquired bool
	err := s.write(ctx, func(tx *txn) error {
		// The clock is read after BEGIN IMMEDIATE took the write lock, so no
		// other process writes a lease between this reading and the commit.
		now := time.Now().UTC()
		// The update runs only when node holds the lease or it has expired.
		// Otherwise the statement changes nothing and returns no row. A lease
		// expires at expires_at, so a ttl of 0 is expired at once.
		var holder string
		err := tx.QueryRowContext(ctx, `INSERT INTO leases (integration_id, node, expires_at)
			VALUES (?, ?, ?)
			ON CONFLICT (integration_id) DO UPDATE
				SET node = excluded.node, expires_at = excluded.expires_at
				WHERE leases.node = excluded.node OR leases.expires_at <= ?
			RETURNING node`,
			integrationID, node, formatTime(now.Add(ttl)), formatTime(now),
		).Scan(&holder)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			// A foreign-key violation means the integration does not exist.
			return fmt.Errorf("acquire lease of integration %q: %w", integrationID, mapError(err))
		}
		acquired = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return acquired, nil
}

// ReleaseLease implements store.Store.
func (s *Store) ReleaseLease(ctx context.Context, integrationID, node string) error {
	return s.write(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM leases WHERE integration_id = ? AND node = ?`, integrationID, node)
		if err != nil {
			return fmt.Errorf("release lease of integration %q: %w", integrationID, mapError(err))
		}
		return nil
	})
}
