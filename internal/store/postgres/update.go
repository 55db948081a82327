package postgres

import (
	"context"
	"encoding/json"

	"github.com/khub-dev/khub/internal/store"
)

// UpdateIntegration implements store.Store.
func (s *Store) UpdateIntegration(ctx context.Context, id string, u store.IntegrationUpdate) error {
	reasons, err := json.Marshal(u.Reasons)
	if err != nil {
		return err
	}
	delivery, err := json.Marshal(u.Delivery)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE integrations SET
			freshness_ns = $1, poll_interval_ns = $2, lookups = $3, accept_risk = $4,
			reasons = $5, webhook_url = $6, delivery = $7
		WHERE id = $8`,
		int64(u.Freshness), int64(u.PollInterval), u.Lookups, u.AcceptRisk,
		string(reasons), u.WebhookURL, string(delivery), id)
	if err != nil {
		return mapError(err)
	}
	return requireRow(tag, "integration %q", id)
}
