package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// bodilessColumns are versionColumns with an empty string for the body,
// for reads that need every field but the text.
var bodilessColumns = strings.Replace(versionColumns, "v.body", "''::text", 1)

// splitKeys returns the article ids and versions of keys as two arrays,
// which unnest pairs up again, so that one query carries a whole batch.
func splitKeys(keys []store.VersionKey) ([]string, []int64) {
	ids := make([]string, len(keys))
	versions := make([]int64, len(keys))
	for i, k := range keys {
		ids[i], versions[i] = k.ArticleID, k.Version
	}
	return ids, versions
}

// checkKeyCount rejects batches above store.MaxReceipts.
func checkKeyCount(n int) error {
	if n > store.MaxReceipts {
		return fmt.Errorf("postgres: %d article versions in one call; the maximum is %d", n, store.MaxReceipts)
	}
	return nil
}

// DescribeVersions implements store.Store.
func (s *Store) DescribeVersions(ctx context.Context, keys []store.VersionKey) (map[store.VersionKey]store.VersionInfo, error) {
	if err := checkKeyCount(len(keys)); err != nil {
		return nil, err
	}
	out := make(map[store.VersionKey]store.VersionInfo, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	ids, versions := splitKeys(keys)
	err := s.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+bodilessColumns+`
			FROM unnest($1::text[], $2::bigint[]) AS k (article_id, version)
			JOIN article_versions v ON v.article_id = k.article_id AND v.version = k.version`, ids, versions)
		if err != nil {
			return mapError(err)
		}
		var found []string
		for rows.Next() {
			a, err := scanVersion(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out[store.VersionKey{ArticleID: a.ID, Version: a.Version}] = store.VersionInfo{Version: a}
			found = append(found, a.ID)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return mapError(err)
		}
		if len(found) == 0 {
			return nil
		}

		rows, err = tx.Query(ctx, `SELECT `+bodilessColumns+`
			FROM articles a JOIN article_versions v ON v.seq = a.current_seq
			WHERE a.id = ANY ($1::text[])`, found)
		if err != nil {
			return mapError(err)
		}
		defer rows.Close()
		byID := map[string]knowledge.Article{}
		for rows.Next() {
			a, err := scanVersion(rows)
			if err != nil {
				return err
			}
			byID[a.ID] = a
		}
		if err := rows.Err(); err != nil {
			return mapError(err)
		}
		for k, info := range out {
			info.Current = byID[k.ArticleID]
			out[k] = info
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RecordReceipts implements store.Store. Rows are written in article id
// order, as store.HighestPerArticle sorts them, so concurrent batches for
// one integration wait for each other instead of deadlocking.
func (s *Store) RecordReceipts(ctx context.Context, integrationID string, keys []store.VersionKey, at time.Time) error {
	if err := checkKeyCount(len(keys)); err != nil {
		return err
	}
	ids, versions := splitKeys(store.HighestPerArticle(keys))
	at = at.UTC()
	return s.write(ctx, func(tx pgx.Tx) error {
		var exists bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM integrations WHERE id = $1)`, integrationID).Scan(&exists)
		if err != nil {
			return mapError(err)
		}
		if !exists {
			return fmt.Errorf("integration %q: %w", integrationID, store.ErrNotFound)
		}
		if len(ids) == 0 {
			return nil
		}
		// SET expressions read the row as it was before the update, so
		// applied_at compares the old version. WITH ORDINALITY keeps the
		// sorted order of the keys.
		_, err = tx.Exec(ctx, `INSERT INTO receipts (integration_id, article_id, version, applied_at, received_at)
			SELECT $1, k.article_id, k.version, $2, $2
			FROM unnest($3::text[], $4::bigint[]) WITH ORDINALITY AS k (article_id, version, n)
			ORDER BY k.n
			ON CONFLICT (integration_id, article_id) DO UPDATE SET
				version = GREATEST(receipts.version, excluded.version),
				applied_at = CASE WHEN excluded.version > receipts.version THEN excluded.applied_at ELSE receipts.applied_at END,
				received_at = excluded.received_at`,
			integrationID, at, ids, versions)
		if err != nil {
			return fmt.Errorf("record receipts of integration %q: a receipt names an article version that does not exist: %w", integrationID, mapError(err))
		}
		return nil
	})
}

// SummarizeReceipts implements store.Store.
func (s *Store) SummarizeReceipts(ctx context.Context, in *knowledge.Integration, maxBehind int) (store.ReceiptSummary, error) {
	var sum store.ReceiptSummary
	err := s.read(ctx, func(tx pgx.Tx) error {
		var last pgtype.Timestamptz
		err := tx.QueryRow(ctx, `SELECT count(*), max(received_at) FROM receipts WHERE integration_id = $1`, in.ID).
			Scan(&sum.Articles, &last)
		if err != nil {
			return mapError(err)
		}
		sum.LastReceiptAt = timeValue(last)
		if sum.Articles == 0 || maxBehind <= 0 {
			return nil
		}
		// Counting one row beyond maxBehind shows whether the count is
		// capped, and the limit bounds the work for a tool far behind.
		var args queryArgs
		where := scopeFilter([]string{"r.integration_id = " + args.add(in.ID), "a.version > r.version"}, &args, in.Scope)
		err = tx.QueryRow(ctx, `SELECT count(*) FROM (
				SELECT 1 FROM receipts r
				JOIN articles a ON a.id = r.article_id
				JOIN article_versions v ON v.seq = a.current_seq
				WHERE `+strings.Join(where, " AND ")+` LIMIT `+args.add(maxBehind+1)+`) behind`, args...).Scan(&sum.Behind)
		if err != nil {
			return mapError(err)
		}
		if sum.Behind > int64(maxBehind) {
			sum.Behind, sum.BehindCapped = int64(maxBehind), true
		}
		return nil
	})
	return sum, err
}

// ArticleProgress implements store.Store.
func (s *Store) ArticleProgress(ctx context.Context, in *store.IntegrationState, articleID string) (store.ArticleProgress, error) {
	p := store.ArticleProgress{Applied: store.Receipt{ArticleID: articleID}}
	err := s.read(ctx, func(tx pgx.Tx) error {
		var applied, received time.Time
		err := tx.QueryRow(ctx, `SELECT version, applied_at, received_at FROM receipts
			WHERE integration_id = $1 AND article_id = $2`, in.ID, articleID).Scan(&p.Applied.Version, &applied, &received)
		switch err = mapError(err); {
		case err == nil:
			p.Applied.AppliedAt, p.Applied.ReceivedAt = applied.UTC(), received.UTC()
		case !errors.Is(err, store.ErrNotFound):
			return err
		}

		// Packed rows are found through the article's changes, newest
		// first, up to the push cursor, which no packed row passes. Only
		// when none holds a retained change are the events of packed rows
		// from before the log's oldest entry searched, newest first: that
		// scan reads every such row of the integration when the article
		// has none.
		err = tx.QueryRow(ctx, `SELECT greatest(
				(SELECT coalesce(max(version), 0) FROM deliveries
					WHERE integration_id = $1 AND article_id = $2 AND outcome = $3),
				coalesce(
					(SELECT pc.version FROM changes pc
						WHERE pc.article_id = $2 AND pc.cursor <= (SELECT push_cursor FROM integrations WHERE id = $1)
						AND `+packedDelivered("$1", "pc.cursor")+`
						ORDER BY pc.cursor DESC LIMIT 1),
					(SELECT (e ->> 'v')::bigint FROM deliveries p, jsonb_array_elements(p.events) e
						WHERE p.integration_id = $1 AND p.events IS NOT NULL
						AND p.first_cursor < (SELECT coalesce(min(cursor), 0) FROM changes)
						AND e ->> 'a' = $2
						ORDER BY p.first_cursor DESC, 1 DESC LIMIT 1),
					0))`,
			in.ID, articleID, store.OutcomeDelivered).Scan(&p.Pushed)
		if err != nil {
			return mapError(err)
		}

		var args queryArgs
		where := scopeFilter([]string{"c.article_id = " + args.add(articleID), "c.cursor <= " + args.add(in.PullCursor)}, &args, in.Scope)
		err = tx.QueryRow(ctx, `SELECT coalesce(max(c.version), 0) FROM `+changeJoin+`
			WHERE `+strings.Join(where, " AND "), args...).Scan(&p.Pulled)
		return mapError(err)
	})
	return p, err
}
