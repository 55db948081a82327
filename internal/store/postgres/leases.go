package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AcquireLease implements store.Store. Expiry times come from the database
// clock, clock_timestamp(), so nodes whose clocks differ agree on them. They
// keep microseconds, the precision of timestamptz, and ttl is rounded up to
// a whole microsecond, so a lease never lasts less than ttl.
func (s *Store) AcquireLease(ctx context.Context, integrationID, node string, ttl time.Duration) (bool, error) {
	if node == "" {
		return false, fmt.Errorf("postgres: acquire lease of integration %q: the node name is empty: pass the name of this hub process", integrationID)
	}
	if ttl < 0 {
		return false, fmt.Errorf("postgres: acquire lease of integration %q: ttl %v is negative: pass 0 or more", integrationID, ttl)
	}
	micros := int64((ttl + time.Microsecond - 1) / time.Microsecond)

	// The update runs only when node holds the lease or it has expired.
	// Otherwise the statement changes nothing and returns no row. ON CONFLICT
	// locks the existing row before it checks the condition, so of two nodes
	// that race for an expired lease, the second finds the first one's lease
	// and gets no row.
	// A lease expires at expires_at, so a ttl of 0 is expired at once.
	var holder string
	err := s.pool.QueryRow(ctx, `INSERT INTO leases AS l (integration_id, node, expires_at)
		VALUES ($1, $2, clock_timestamp() + $3 * interval '1 microsecond')
		ON CONFLICT (integration_id) DO UPDATE
			SET node = excluded.node, expires_at = excluded.expires_at
			WHERE l.node = excluded.node OR l.expires_at <= clock_timestamp()
		RETURNING l.node`,
		integrationID, node, micros,
	).Scan(&holder)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		// A foreign-key violation means the integration does not exist.
		return false, fmt.Errorf("acquire lease of integration %q: %w", integrationID, mapError(err))
	}
	return true, nil
}

// ReleaseLease implements store.Store.
func (s *Store) ReleaseLease(ctx context.Context, integrationID, node string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM leases WHERE integration_id = $1 AND node = $2`, integrationID, node)
	if err != nil {
		return fmt.Errorf("release lease of integration %q: %w", integrationID, mapError(err))
	}
	return nil
}
