package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

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
	scope, err := encodeJSON(in.Scope)
	if err != nil {
		return err
	}
	reasons, err := encodeJSON(in.Reasons)
	if err != nil {
		return err
	}
	delivery, err := encodeJSON(in.Delivery)
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO integrations
			(id, name, pattern, freshness_ns, poll_interval_ns, lookups, accept_risk, scope, reasons,
			 webhook_url, webhook_secret, token_hash, created_at, delivery)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			in.ID, in.Name, string(in.Pattern), int64(in.Freshness), int64(in.PollInterval),
			in.Lookups, in.AcceptRisk, scope, reasons,
			in.WebhookURL, in.WebhookSecret, in.TokenHash, formatTime(in.CreatedAt), delivery)
		if err != nil {
			return fmt.Errorf("create integration %q: %w", in.ID, mapError(err))
		}
		return nil
	})
}

const integrationColumns = `id, name, pattern, freshness_ns, poll_interval_ns, lookups, accept_risk,
	scope, reasons, webhook_url, webhook_secret, token_hash, created_at, delivery,
	push_cursor, pull_cursor, pull_seen, last_pull_at,
	retry_cursor, retry_attempt, retry_due_at, retry_since,
	state, state_reason, state_since, previous_secret, previous_secret_until,
	last_error, last_error_at, last_success_at`

func scanIntegration(sc scanner) (store.IntegrationState, error) {
	var (
		st                                store.IntegrationState
		pattern, scope, reasons, delivery string
		state                             string
		freshness, poll                   int64
		created, lastPull                 sql.NullString
		retryDue, retrySince              sql.NullString
		stateSince, previousSecretUntil   sql.NullString
		lastErrorAt, lastSuccess          sql.NullString
	)
	err := sc.Scan(&st.ID, &st.Name, &pattern, &freshness, &poll, &st.Lookups, &st.AcceptRisk,
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
	st.Freshness = time.Duration(freshness)
	st.PollInterval = time.Duration(poll)
	if err := json.Unmarshal([]byte(scope), &st.Scope); err != nil {
		return st, fmt.Errorf("sqlite: integration %q: stored scope is invalid: %w", st.ID, err)
	}
	if err := json.Unmarshal([]byte(reasons), &st.Reasons); err != nil {
		return st, fmt.Errorf("sqlite: integration %q: stored reasons are invalid: %w", st.ID, err)
	}
	if err := json.Unmarshal([]byte(delivery), &st.Delivery); err != nil {
		return st, fmt.Errorf("sqlite: integration %q: stored delivery settings are invalid: %w", st.ID, err)
	}
	times := []struct {
		dst *time.Time
		src sql.NullString
	}{
		{&st.CreatedAt, created},
		{&st.LastPullAt, lastPull},
		{&st.Retry.DueAt, retryDue},
		{&st.Retry.Since, retrySince},
		{&st.StateSince, stateSince},
		{&st.PreviousSecretUntil, previousSecretUntil},
		{&st.LastErrorAt, lastErrorAt},
		{&st.LastSuccessAt, lastSuccess},
	}
	for _, t := range times {
		if *t.dst, err = parseTime(t.src); err != nil {
			return st, err
		}
	}
	return st, nil
}

// GetIntegration implements store.Store.
func (s *Store) GetIntegration(ctx context.Context, id string) (store.IntegrationState, error) {
	row := s.reader.QueryRowContext(ctx, `SELECT `+integrationColumns+` FROM integrations WHERE id = ?`, id)
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
	row := s.reader.QueryRowContext(ctx, `SELECT `+integrationColumns+`
		FROM integrations WHERE token_hash = ? AND token_hash <> ''`, tokenHash)
	st, err := scanIntegration(row)
	if err != nil {
		// The hash identifies a credential, so it stays out of the message.
		return store.IntegrationState{}, fmt.Errorf("integration by pull token: %w", err)
	}
	return st, nil
}

// ListIntegrations implements store.Store. It orders by creation time, then
// id.
func (s *Store) ListIntegrations(ctx context.Context) ([]store.IntegrationState, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+integrationColumns+`
		FROM integrations ORDER BY created_at, id`)
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

// DeleteIntegration implements store.Store. It deletes the integration's
// delivery attempts too, and its lease goes through ON DELETE CASCADE.
func (s *Store) DeleteIntegration(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *txn) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE integration_id = ?`, id); err != nil {
			return mapError(err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM integrations WHERE id = ?`, id)
		if err != nil {
			return mapError(err)
		}
		return requireRow(res, "integration %q", id)
	})
}

// requireRow returns store.ErrNotFound, described by format and args, when
// the statement changed no row.
func requireRow(res sql.Result, format string, args ...any) error {
	n, err := res.RowsAffected()
	if err != nil {
		return mapError(err)
	}
	if n == 0 {
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

// CommitDeliveries implements store.Store.
func (s *Store) CommitDeliveries(ctx context.Context, commits []store.DeliveryCommit) ([]int, error) {
	rows, err := store.PrepareDeliveries(commits)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	var notFound []int
	err = s.write(ctx, func(tx *txn) error {
		notFound = notFound[:0]
		for i := range commits {
			found, err := updateDeliveryState(ctx, tx, &commits[i])
			if err != nil {
				return err
			}
			if !found {
				notFound = append(notFound, i)
				continue
			}
			if err := insertAttempts(ctx, tx, commits[i].IntegrationID, rows[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return notFound, nil
}

// updateDeliveryState moves the integration's cursor and sets its retry
// state and last error and success, or only checks that it exists for a
// commit of attempts only. It reports false for an unknown integration.
func updateDeliveryState(ctx context.Context, tx *txn, c *store.DeliveryCommit) (bool, error) {
	if c.AttemptsOnly {
		// A no-op update checks that the integration exists.
		res, err := tx.ExecContext(ctx, `UPDATE integrations SET id = id WHERE id = ?`, c.IntegrationID)
		return rowChanged(res, err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE integrations SET
			push_cursor = max(push_cursor, ?),
			retry_cursor = ?, retry_attempt = ?, retry_due_at = ?, retry_since = ?,
			last_error = CASE WHEN ? THEN ? ELSE last_error END,
			last_error_at = coalesce(?, last_error_at),
			last_success_at = coalesce(?, last_success_at)
		WHERE id = ?`,
		c.PushCursor,
		c.Retry.Cursor, c.Retry.Attempt, formatTime(c.Retry.DueAt), formatTime(c.Retry.Since),
		!c.LastErrorAt.IsZero(), c.LastError,
		formatTime(c.LastErrorAt),
		formatTime(c.LastSuccessAt),
		c.IntegrationID)
	return rowChanged(res, err)
}

func rowChanged(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, mapError(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, mapError(err)
	}
	return n > 0, nil
}

// insertAttempt is the INSERT of one delivery row. Multi-row INSERTs
// saved nothing in BenchmarkStore/CommitDeliveries: the same CPU time for
// 100 attempts of one integration, and about a quarter more for one
// attempt each of 100 integrations. A statement that writes several rows
// keeps a statement journal of each page it changes, in a temporary file.
const insertAttempt = `INSERT INTO deliveries
	(integration_id, event_id, cursor, article_id, version, type, attempt,
	 status_code, error, latency_ns, started_at, outcome, first_cursor, events)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// insertAttempts inserts an integration's delivery rows in order, so that
// their ids grow in the order given.
func insertAttempts(ctx context.Context, tx *txn, integrationID string, rows []store.DeliveryRow) error {
	for _, r := range rows {
		first, events := r.PackedValues()
		a := &r.Attempt
		_, err := tx.ExecContext(ctx, insertAttempt,
			integrationID, a.EventID, a.Cursor, a.ArticleID, a.Version, string(a.Type), a.Attempt,
			a.StatusCode, a.Error, int64(a.Latency), formatTime(a.StartedAt), a.Outcome, first, events)
		if err != nil {
			return fmt.Errorf("record delivery attempt of integration %q: %w", integrationID, mapError(err))
		}
	}
	return nil
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

	where := []string{"integration_id = ?"}
	args := []any{integrationID}
	if f.Outcome != "" {
		where = append(where, "outcome = ?")
		args = append(args, f.Outcome)
	}
	if f.ArticleID != "" {
		// Packed rows have no article of their own: their events are
		// searched instead.
		where = append(where, `(article_id = ? OR (events IS NOT NULL
			AND EXISTS (SELECT 1 FROM json_each(events) e WHERE e.value ->> 'a' = ?)))`)
		args = append(args, f.ArticleID, f.ArticleID)
	}
	// Stored times have a fixed width, so comparing them as strings
	// compares the instants.
	if !f.Since.IsZero() {
		where = append(where, "started_at >= ?")
		args = append(args, formatTime(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "started_at < ?")
		args = append(args, formatTime(f.Until))
	}
	args = append(args, limit)

	out := []store.Attempt{}
	err := s.read(ctx, func(tx *txn) error {
		var exists bool
		err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM integrations WHERE id = ?)`, integrationID).Scan(&exists)
		if err != nil {
			return mapError(err)
		}
		if !exists {
			return fmt.Errorf("integration %q: %w", integrationID, store.ErrNotFound)
		}
		// Each row holds at least one attempt, so limit rows are enough.
		rows, err := tx.QueryContext(ctx, `SELECT id, integration_id, event_id, cursor, article_id, version, type,
				attempt, status_code, error, latency_ns, started_at, outcome, events
			FROM deliveries WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`, args...)
		if err != nil {
			return mapError(err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				a          store.Attempt
				changeType string
				latency    int64
				started    sql.NullString
				events     []byte
			)
			err := rows.Scan(&a.ID, &a.IntegrationID, &a.EventID, &a.Cursor, &a.ArticleID, &a.Version, &changeType,
				&a.Attempt, &a.StatusCode, &a.Error, &latency, &started, &a.Outcome, &events)
			if err != nil {
				return mapError(err)
			}
			a.Type = knowledge.ChangeType(changeType)
			a.Latency = time.Duration(latency)
			if a.StartedAt, err = parseTime(started); err != nil {
				return err
			}
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
		return fmt.Errorf("sqlite: delivery state %q is invalid: use %q, %q or %q",
			state, knowledge.StateActive, knowledge.StatePaused, knowledge.StateDisabled)
	}
	return s.write(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE integrations SET state = ?, state_reason = ?, state_since = ?
			WHERE id = ?`, string(state), reason, formatTime(at), integrationID)
		if err != nil {
			return mapError(err)
		}
		return requireRow(res, "integration %q", integrationID)
	})
}

// RotateSecret implements store.Store. An integration that had no secret
// keeps no previous one, so PreviousSecretUntil stays zero then.
func (s *Store) RotateSecret(ctx context.Context, integrationID, secret string, previousUntil time.Time) error {
	return s.write(ctx, func(tx *txn) error {
		// The right-hand sides of SET read the row as it was before the
		// update, so previous_secret gets the old webhook_secret.
		res, err := tx.ExecContext(ctx, `UPDATE integrations SET
				previous_secret = webhook_secret,
				previous_secret_until = CASE WHEN webhook_secret = '' THEN NULL ELSE ? END,
				webhook_secret = ?
			WHERE id = ?`, formatTime(previousUntil), secret, integrationID)
		if err != nil {
			return mapError(err)
		}
		return requireRow(res, "integration %q", integrationID)
	})
}

// RecordPull implements store.Store. It returns store.ErrNotFound for an
// unknown integration.
func (s *Store) RecordPull(ctx context.Context, integrationID string, cursor int64, at time.Time) error {
	return s.write(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE integrations SET
				pull_cursor = max(pull_cursor, ?),
				pull_seen = 1,
				last_pull_at = coalesce(?, last_pull_at)
			WHERE id = ?`, cursor, formatTime(at), integrationID)
		if err != nil {
			return mapError(err)
		}
		return requireRow(res, "integration %q", integrationID)
	})
}
