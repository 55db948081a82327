package sqlite

import (
	"context"

	"github.com/khub-dev/khub/internal/store"
)

// UpdateIntegration implements store.Store.
func (s *Store) UpdateIntegration(ctx context.Context, id string, u store.IntegrationUpdate) error {
	reasons, err := encodeJSON(u.Reasons)
	if err != nil {
		return err
	}
	delivery, err := encodeJSON(u.Delivery)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE integrations SET
				freshness_ns = ?, poll_interval_ns = ?, lookups = ?, accept_risk = ?,
				reasons = ?, webhook_url = ?, delivery = ?
			WHERE id = ?`,
			int64(u.Freshness), int64(u.PollInterval), u.Lookups, u.AcceptRisk,
			reasons, u.WebhookURL, delivery, id)
		if err != nil {
			return mapError(err)
		}
		return requireRow(res, "integration %q", id)
	})
}
