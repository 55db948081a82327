package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// Page sizes of ListDeliveries and QueryDeliveries.
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
	delivery, err := json.Marshal(in.Delivery)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO integrations
		(id, name, pattern, freshness_ns, poll_interval_ns, lookups, accept_risk, scope, reasons,
		 webhook_url, webhook_secret, token_hash, created_at, delivery)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		in.ID, in.Name, string(in.Pattern), int64(in.Freshness), int64(in.PollInterval),
		in.Lookups, in.AcceptRisk, string(scope), string(reasons),
		in.WebhookURL, in.WebhookSecret, in.TokenHash, timeArg(in.CreatedAt), string(delivery))
	if err != nil {
		return fmt.Errorf("create integration %q: %w", in.ID, mapError(err))
	}
	return nil
}

const integrationColumns = `id, name, pattern, freshness_ns, poll_interval_ns, lookups, accept_risk,
	scope, reasons, webhook_url, webhook_secret, token_hash, created_at, delivery,
	push_cursor, pull_cursor, pull_seen, last_pull_at,
	retry_cursor, retry_attempt, retry_due_at, retry_since,
	state, state_reason, state_since, previous_secret, previous_secret_until,
	last_error, last_error_at, last_success_at`

func scanIntegration(row pgx.Row) (store.IntegrationState, error) {
	var (
		st                              store.IntegrationState
		pattern, state                  string
		scope, reasons, delivery        []byte
		freshness, poll                 int64
		created, lastPull               pgtype.Timestamptz
		retryDue, retrySince            pgtype.Timestamptz
		stateSince, previousSecretUntil pgtype.Timestamptz
		lastErrorAt, lastSuccess        pgtype.Timestamptz
	)
	err := row.Scan(&st.ID, &st.Name, &pattern, &freshness, &poll, &st.Lookups, &st.AcceptRisk,
		&scope, &reasons, &st.WebhookURL, &st.WebhookSecret, &st.TokenHash, &created, &delivery,
		&st.PushCursor, &st.PullCursor, &st.PullSeen, &lastPull,
		&st.Retry.Cursor, &st.Retry.Attempt, &retryDue, &retrySince,
		&state, &st.StateReason, &stateSince, &st.PreviousSecret, &previousSecretUntil,
		&st.LastError, &lastErrorAt, &lastSuccess)
	if err != nil {
		return st, mapError(err)
	}

	st.Pattern = knowledge.Pattern(pattern)
	st.State = knowledge.DeliveryState(state)
	if err := json.Unmarshal(scope, &st.Scope); err != nil {
		return st, fmt.Errorf("postgres: integration %q: stored scope is invalid: %w", st.ID, err)
	}
	if err := json.Unmarshal(reasons, &st.Reasons); err != nil {
		return st, fmt.Errorf("postgres: integration %q: stored reasons are invalid: %w", st.ID, err)
	}
	if err := json.Unmarshal(delivery, &st.Delivery); err != nil {
		return st, fmt.Errorf("postgres: integration %q: stored delivery settings are invalid: %w", st.ID, err)
	}
	st.Freshness = time.Duration(freshness)
	st.PollInterval = time.Duration(poll)

	st.CreatedAt = timeValue(created)
	st.LastPullAt = timeValue(lastPull)
	st.Retry.DueAt = timeValue(retryDue)
	st.Retry.Since = timeValue(retrySince)
	st.StateSince = timeValue(stateSince)
	st.PreviousSecretUntil = timeValue(previousSecretUntil)
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
	notFound, err := s.CommitDeliveries(ctx, []store.DeliveryCommit{c})
	if err != nil {
		return err
	}
	if len(notFound) > 0 {
		return fmt.Errorf("integration %q: %w", c.IntegrationID, store.ErrNotFound)
	}
	return nil
}

// CommitDeliveries implements store.Store. It takes two round trips: one
// batch of updates, which also locks the integrations' rows, and one batch
// of inserts.
func (s *Store) CommitDeliveries(ctx context.Context, commits []store.DeliveryCommit) ([]int, error) {
	rows, err := store.PrepareDeliveries(commits)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	var notFound []int
	err = s.write(ctx, func(tx pgx.Tx) error {
		notFound = notFound[:0]
		updates := &pgx.Batch{}
		for i := range commits {
			queueDeliveryState(updates, &commits[i])
		}
		results := tx.SendBatch(ctx, updates)
		for i := range commits {
			tag, err := results.Exec()
			if err != nil {
				results.Close()
				return mapError(err)
			}
			if tag.RowsAffected() == 0 {
				notFound = append(notFound, i)
			}
		}
		if err := results.Close(); err != nil {
			return mapError(err)
		}

		inserts := &pgx.Batch{}
		skip := notFound
		for i := range commits {
			if len(skip) > 0 && skip[0] == i {
				skip = skip[1:]
				continue
			}
			queueAttempts(inserts, commits[i].IntegrationID, rows[i])
		}
		if inserts.Len() == 0 {
			return nil
		}
		if err := tx.SendBatch(ctx, inserts).Close(); err != nil {
			return fmt.Errorf("record delivery attempts: %w", mapError(err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return notFound, nil
}

// queueDeliveryState queues the update that moves the integration's cursor
// and sets its retry state and last error and success. For a commit of
// attempts only, it queues a no-op update instead, which checks that the
// integration exists and locks its row as the full update does.
func queueDeliveryState(b *pgx.Batch, c *store.DeliveryCommit) {
	if c.AttemptsOnly {
		b.Queue(`UPDATE integrations SET id = id WHERE id = $1`, c.IntegrationID)
		return
	}
	b.Queue(`UPDATE integrations SET
			push_cursor = GREATEST(push_cursor, $1),
			retry_cursor = $2, retry_attempt = $3, retry_due_at = $4, retry_since = $5,
			last_error = CASE WHEN $6 THEN $7 ELSE last_error END,
			last_error_at = coalesce($8, last_error_at),
			last_success_at = coalesce($9, last_success_at)
		WHERE id = $10`,
		c.PushCursor,
		c.Retry.Cursor, c.Retry.Attempt, timeArg(c.Retry.DueAt), timeArg(c.Retry.Since),
		!c.LastErrorAt.IsZero(), c.LastError,
		timeArg(c.LastErrorAt),
		timeArg(c.LastSuccessAt),
		c.IntegrationID)
}

// queueAttempts queues one insert per delivery row of an integration, in
// order, so that their ids grow in the order given.
func queueAttempts(b *pgx.Batch, integrationID string, rows []store.DeliveryRow) {
	for _, r := range rows {
		first, events := r.PackedValues()
		a := &r.Attempt
		b.Queue(`INSERT INTO deliveries
			(integration_id, event_id, cursor, article_id, version, type, attempt,
			 status_code, error, latency_ns, started_at, outcome, first_cursor, events)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb)`,
			integrationID, a.EventID, a.Cursor, a.ArticleID, a.Version, string(a.Type), a.Attempt,
			a.StatusCode, a.Error, int64(a.Latency), timeArg(a.StartedAt), a.Outcome, first, events)
	}
}

// ListDeliveries implements store.Store. It calls QueryDeliveries with only
// a limit.
func (s *Store) ListDeliveries(ctx context.Context, integrationID string, limit int) ([]store.Attempt, error) {
	return s.QueryDeliveries(ctx, integrationID, store.DeliveryFilter{Limit: limit})
}

// QueryDeliveries implements store.Store. A limit of 0 or less means 50, and
// limits above 1000 are lowered to 1000. An attempt without a start time is
// left out whenever Since or Until is set.
func (s *Store) QueryDeliveries(ctx context.Context, integrationID string, f store.DeliveryFilter) ([]store.Attempt, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultDeliveryLimit
	}
	limit = min(limit, maxDeliveryLimit)

	where := []string{"integration_id = $1"}
	args := []any{integrationID}
	// add appends a condition on the next placeholder, $n, with its value.
	add := func(condition string, value any) {
		args = append(args, value)
		where = append(where, fmt.Sprintf(condition, len(args)))
	}
	if f.Outcome != "" {
		add("outcome = $%d", f.Outcome)
	}
	if f.ArticleID != "" {
		// Packed rows have no article of their own: their events are
		// searched instead.
		add("(article_id = $%[1]d OR events @> jsonb_build_array(jsonb_build_object('a', $%[1]d::text)))", f.ArticleID)
	}
	if !f.Since.IsZero() {
		add("started_at >= $%d", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		add("started_at < $%d", f.Until.UTC())
	}
	args = append(args, limit)
	// Each row holds at least one attempt, so limit rows are enough.
	query := fmt.Sprintf(`SELECT id, integration_id, event_id, cursor, article_id, version, type,
			attempt, status_code, error, latency_ns, started_at, outcome, events
		FROM deliveries WHERE %s ORDER BY id DESC LIMIT $%d`, strings.Join(where, " AND "), len(args))

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
		rows, err := tx.Query(ctx, query, args...)
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
				events     []byte
			)
			err := rows.Scan(&a.ID, &a.IntegrationID, &a.EventID, &a.Cursor, &a.ArticleID, &a.Version, &changeType,
				&a.Attempt, &a.StatusCode, &a.Error, &latency, &started, &a.Outcome, &events)
			if err != nil {
				return mapError(err)
			}
			a.Type = knowledge.ChangeType(changeType)
			a.Latency = time.Duration(latency)
			a.StartedAt = timeValue(started)
			if out, err = store.UnpackAttempts(out, a, events, f.ArticleID, limit); err != nil {
				return err
			}
		}
		return mapError(rows.Err())
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetDeliveryState implements store.Store. An empty state is stored as
// active, and a state that is not one of the knowledge.DeliveryState
// constants is rejected.
func (s *Store) SetDeliveryState(ctx context.Context, integrationID string, state knowledge.DeliveryState, reason string, at time.Time) error {
	switch state {
	case "":
		state = knowledge.StateActive
	case knowledge.StateActive, knowledge.StatePaused, knowledge.StateDisabled:
	default:
		return fmt.Errorf("postgres: delivery state %q is invalid: use %q, %q or %q",
			state, knowledge.StateActive, knowledge.StatePaused, knowledge.StateDisabled)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE integrations SET state = $1, state_reason = $2, state_since = $3
		WHERE id = $4`, string(state), reason, timeArg(at), integrationID)
	if err != nil {
		return mapError(err)
	}
	return requireRow(tag, "integration %q", integrationID)
}

// RotateSecret implements store.Store. An integration that had no secret
// keeps no previous one, so PreviousSecretUntil stays zero then.
func (s *Store) RotateSecret(ctx context.Context, integrationID, secret string, previousUntil time.Time) error {
	// The right-hand sides of SET read the row as it was before the update,
	// so previous_secret gets the old webhook_secret.
	tag, err := s.pool.Exec(ctx, `UPDATE integrations SET
			previous_secret = webhook_secret,
			previous_secret_until = CASE WHEN webhook_secret = '' THEN NULL ELSE $1::timestamptz END,
			webhook_secret = $2
		WHERE id = $3`, timeArg(previousUntil), secret, integrationID)
	if err != nil {
		return mapError(err)
	}
	return requireRow(tag, "integration %q", integrationID)
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
