package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// Page sizes of ListDeliveries.
const (
	defaultDeliveryLimit = 50
	maxDeliveryLimit     = 1000
)

// CreateIntegration implements store.Store. It returns store.ErrConflict
// when the id or the token hash is taken.
func (s *Store) CreateIntegration(ctx context.Context, in knowledge.Integration) error {
	if err := knowledge.ValidateID("id", in.ID); err != nil {
		return err
	}
	// encoding/json writes nil slices and maps as null, so they come back
	// nil, and empty ones as empty.
	scope, err := json.Marshal(in.Scope)
	if err != nil {
		return err
	}
	reasons, err := json.Marshal(in.Reasons)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO integrations
		(id, name, pattern, freshness_ns, poll_interval_ns, lookups, accept_risk, scope, reasons,
		 webhook_url, webhook_secret, token_hash, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		in.ID, in.Name, string(in.Pattern), int64(in.Freshness), int64(in.PollInterval),
		in.Lookups, in.AcceptRisk, string(scope), string(reasons),
		in.WebhookURL, in.WebhookSecret, in.TokenHash, timeArg(in.CreatedAt))
	if err != nil {
		return fmt.Errorf("create integration %q: %w", in.ID, mapError(err))
	}
	return nil
}

const integrationColumns = `id, name, pattern, freshness_ns, poll_interval_ns, lookups, accept_risk,
	scope, reasons, webhook_url, webhook_secret, token_hash, created_at,
	push_cursor, pull_cursor, pull_seen, last_pull_at,
	retry_cursor, retry_attempt, retry_due_at, last_error, last_error_at, last_success_at`

func scanIntegration(row pgx.Row) (store.IntegrationState, error) {
	var (
		st                          store.IntegrationState
		pattern                     string
		scope, reasons              []byte
		freshness, poll             int64
		created, lastPull, retryDue pgtype.Timestamptz
		lastErrorAt, lastSuccess    pgtype.Timestamptz
	)
	err := row.Scan(&st.ID, &st.Name, &pattern, &freshness, &poll, &st.Lookups, &st.AcceptRisk,
		&scope, &reasons, &st.WebhookURL, &st.WebhookSecret, &st.TokenHash, &created,
		&st.PushCursor, &st.PullCursor, &st.PullSeen, &lastPull,
		&st.Retry.Cursor, &st.Retry.Attempt, &retryDue, &st.LastError, &lastErrorAt, &lastSuccess)
	if err != nil {
		return st, mapError(err)
	}

	st.Pattern = knowledge.Pattern(pattern)
	if err := json.Unmarshal(scope, &st.Scope); err != nil {
		return st, fmt.Errorf("postgres: integration %q: stored scope is invalid: %w", st.ID, err)
	}
	if err := json.Unmarshal(reasons, &st.Reasons); err != nil {
		return st, fmt.Errorf("postgres: integration %q: stored reasons are invalid: %w", st.ID, err)
	}
	st.Freshness = time.Duration(freshness)
	st.PollInterval = time.Duration(poll)

	st.CreatedAt = timeValue(created)
	st.LastPullAt = timeValue(lastPull)
	st.Retry.DueAt = timeValue(retryDue)
	st.LastErrorAt = timeValue(lastErrorAt)
	st.LastSuccessAt = timeValue(lastSuccess)
	return st, nil
}

// GetIntegration implements store.Store.
func (s *Store) GetIntegration(ctx context.Context, id string) (store.IntegrationState, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+integrationColumns+` FROM integrations WHERE id = $1`, id)
	st, err := scanIntegration(row)
	if err != nil {
		return store.IntegrationState{}, fmt.Errorf("integration %q: %w", id, err)
	}
	return st, nil
}

// GetIntegrationByToken implements store.Store. Integrations without a pull
// token have an empty hash, which never matches.
func (s *Store) GetIntegrationByToken(ctx context.Context, tokenHash string) (store.IntegrationState, error) {
	if tokenHash == "" {
		return store.IntegrationState{}, fmt.Errorf("integration with an empty token hash: %w", store.ErrNotFound)
	}
	row := s.pool.QueryRow(ctx, `SELECT `+integrationColumns+`
		FROM integrations WHERE token_hash = $1 AND token_hash <> ''`, tokenHash)
	st, err := scanIntegration(row)
	if err != nil {
		// The hash identifies a credential, so it stays out of the message.
		return store.IntegrationState{}, fmt.Errorf("integration by pull token: %w", err)
	}
	return st, nil
}

// ListIntegrations implements store.Store. It orders by creation time, with
// a missing one first, then id.
func (s *Store) ListIntegrations(ctx context.Context) ([]store.IntegrationState, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+integrationColumns+`
		FROM integrations ORDER BY created_at NULLS FIRST, id`)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	out := []store.IntegrationState{}
	for rows.Next() {
		st, err := scanIntegration(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, mapError(rows.Err())
}

// DeleteIntegration implements store.Store. Its delivery attempts go with
// it, through the foreign key's ON DELETE CASCADE.
func (s *Store) DeleteIntegration(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM integrations WHERE id = $1`, id)
	if err != nil {
		return mapError(err)
	}
	return requireRow(tag, "integration %q", id)
}

// requireRow returns store.ErrNotFound, described by format and args, when
// the statement changed no row.
func requireRow(tag pgconn.CommandTag, format string, args ...any) error {
	if tag.RowsAffected() == 0 {
		return fmt.Errorf(format+": %w", append(args, store.ErrNotFound)...)
	}
	return nil
}

// CommitDelivery implements store.Store. It returns store.ErrNotFound for an
// unknown integration and writes nothing then.
func (s *Store) CommitDelivery(ctx context.Context, c store.DeliveryCommit) error {
	for _, a := range c.Attempts {
		if a.IntegrationID != "" && a.IntegrationID != c.IntegrationID {
			return fmt.Errorf("postgres: commit delivery: attempt for integration %q in a commit for %q", a.IntegrationID, c.IntegrationID)
		}
	}
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE integrations SET
				push_cursor = GREATEST(push_cursor, $1),
				retry_cursor = $2, retry_attempt = $3, retry_due_at = $4,
				last_error = CASE WHEN $5 THEN $6 ELSE last_error END,
				last_error_at = coalesce($7, last_error_at),
				last_success_at = coalesce($8, last_success_at)
			WHERE id = $9`,
			c.PushCursor,
			c.Retry.Cursor, c.Retry.Attempt, timeArg(c.Retry.DueAt),
			!c.LastErrorAt.IsZero(), c.LastError,
			timeArg(c.LastErrorAt),
			timeArg(c.LastSuccessAt),
			c.IntegrationID)
		if err != nil {
			return mapError(err)
		}
		if err := requireRow(tag, "integration %q", c.IntegrationID); err != nil {
			return err
		}
		return insertAttempts(ctx, tx, c.IntegrationID, c.Attempts)
	})
}

// insertAttempts inserts the attempts in order, in one round trip, so their
// ids grow in the order given.
func insertAttempts(ctx context.Context, tx pgx.Tx, integrationID string, attempts []store.Attempt) error {
	if len(attempts) == 0 {
		return nil
	}
	batch := &pgx.Batch{}
	for _, a := range attempts {
		batch.Queue(`INSERT INTO deliveries
			(integration_id, event_id, cursor, article_id, version, type, attempt,
			 status_code, error, latency_ns, started_at, outcome)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			integrationID, a.EventID, a.Cursor, a.ArticleID, a.Version, string(a.Type), a.Attempt,
			a.StatusCode, a.Error, int64(a.Latency), timeArg(a.StartedAt), a.Outcome)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return fmt.Errorf("record delivery attempts of integration %q: %w", integrationID, mapError(err))
	}
	return nil
}

// ListDeliveries implements store.Store. A limit of 0 or less means 50, and
// limits above 1000 are lowered to 1000. It returns store.ErrNotFound for an
// unknown integration.
func (s *Store) ListDeliveries(ctx context.Context, integrationID string, limit int) ([]store.Attempt, error) {
	if limit <= 0 {
		limit = defaultDeliveryLimit
	}
	limit = min(limit, maxDeliveryLimit)
	out := []store.Attempt{}
	err := s.read(ctx, func(tx pgx.Tx) error {
		var exists bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM integrations WHERE id = $1)`, integrationID).Scan(&exists)
		if err != nil {
			return mapError(err)
		}
		if !exists {
			return fmt.Errorf("integration %q: %w", integrationID, store.ErrNotFound)
		}
		rows, err := tx.Query(ctx, `SELECT id, integration_id, event_id, cursor, article_id, version, type,
				attempt, status_code, error, latency_ns, started_at, outcome
			FROM deliveries WHERE integration_id = $1 ORDER BY id DESC LIMIT $2`, integrationID, limit)
		if err != nil {
			return mapError(err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				a          store.Attempt
				changeType string
				latency    int64
				started    pgtype.Timestamptz
			)
			err := rows.Scan(&a.ID, &a.IntegrationID, &a.EventID, &a.Cursor, &a.ArticleID, &a.Version, &changeType,
				&a.Attempt, &a.StatusCode, &a.Error, &latency, &started, &a.Outcome)
			if err != nil {
				return mapError(err)
			}
			a.Type = knowledge.ChangeType(changeType)
			a.Latency = time.Duration(latency)
			a.StartedAt = timeValue(started)
			out = append(out, a)
		}
		return mapError(rows.Err())
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RecordPull implements store.Store. It returns store.ErrNotFound for an
// unknown integration.
func (s *Store) RecordPull(ctx context.Context, integrationID string, cursor int64, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE integrations SET
			pull_cursor = GREATEST(pull_cursor, $1),
			pull_seen = true,
			last_pull_at = coalesce($2, last_pull_at)
		WHERE id = $3`, cursor, timeArg(at), integrationID)
	if err != nil {
		return mapError(err)
	}
	return requireRow(tag, "integration %q", integrationID)
}
