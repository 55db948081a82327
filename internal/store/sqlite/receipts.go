package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/textindex"
)

// bodilessColumns are versionColumns with an empty string for the body,
// for reads that need every field but the text.
var bodilessColumns = strings.Replace(versionColumns, "v.body", "''", 1)

// versionKeysJSON encodes keys as a JSON array of [article_id, version]
// pairs. Queries read it with json_each, so that one bound parameter
// carries a whole batch.
func versionKeysJSON(keys []store.VersionKey) (string, error) {
	pairs := make([][2]any, len(keys))
	for i, k := range keys {
		pairs[i] = [2]any{k.ArticleID, k.Version}
	}
	return encodeJSON(pairs)
}

// checkKeyCount rejects batches above store.MaxReceipts.
func checkKeyCount(n int) error {
	if n > store.MaxReceipts {
		return fmt.Errorf("sqlite: %d article versions in one call; the maximum is %d", n, store.MaxReceipts)
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
	if ix := s.textIndexReady(); ix != nil && describeCurrent(ix, keys, out) {
		return out, nil
	}
	clear(out)
	pairs, err := versionKeysJSON(keys)
	if err != nil {
		return nil, err
	}
	err = s.read(ctx, func(tx *txn) error {
		// json_each comes first, so that each pair is one lookup in the
		// (article_id, version) index.
		versions, err := tx.QueryContext(ctx, `SELECT `+bodilessColumns+`
			FROM json_each(?) k CROSS JOIN article_versions v
				ON v.article_id = k.value ->> 0 AND v.version = k.value ->> 1`, pairs)
		if err != nil {
			return mapError(err)
		}
		defer versions.Close()
		var ids []string
		for versions.Next() {
			a, err := scanVersion(versions)
			if err != nil {
				return err
			}
			out[store.VersionKey{ArticleID: a.ID, Version: a.Version}] = store.VersionInfo{Version: a}
			ids = append(ids, a.ID)
		}
		if err := versions.Err(); err != nil {
			return mapError(err)
		}
		if len(ids) == 0 {
			return nil
		}

		idList, err := encodeJSON(ids)
		if err != nil {
			return err
		}
		current, err := tx.QueryContext(ctx, `SELECT `+bodilessColumns+`
			FROM (SELECT DISTINCT value AS id FROM json_each(?)) k
			CROSS JOIN articles a ON a.id = k.id
			JOIN article_versions v ON v.seq = a.current_seq`, idList)
		if err != nil {
			return mapError(err)
		}
		defer current.Close()
		byID := map[string]knowledge.Article{}
		for current.Next() {
			a, err := scanVersion(current)
			if err != nil {
				return err
			}
			byID[a.ID] = a
		}
		if err := current.Err(); err != nil {
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

// describeCurrent fills out from the text index when every key names the
// current version of an article that is not archived, as the hits of a
// search or lookup do, and reports whether it did. SQLite stores a
// version's fields after its body, so reading them from article_versions
// walks the body's overflow pages; the index holds them in memory.
func describeCurrent(ix *textindex.Index, keys []store.VersionKey, out map[store.VersionKey]store.VersionInfo) bool {
	for _, k := range keys {
		a, ok := ix.Current(k.ArticleID)
		if !ok || a.Version != k.Version {
			return false
		}
		out[k] = store.VersionInfo{Version: *a, Current: *a}
	}
	return true
}

// RecordReceipts implements store.Store.
func (s *Store) RecordReceipts(ctx context.Context, integrationID string, keys []store.VersionKey, at time.Time) error {
	if err := checkKeyCount(len(keys)); err != nil {
		return err
	}
	pairs, err := versionKeysJSON(store.HighestPerArticle(keys))
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *txn) error {
		var exists int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM integrations WHERE id = ?`, integrationID).Scan(&exists)
		if err != nil {
			return fmt.Errorf("integration %q: %w", integrationID, mapError(err))
		}
		if len(keys) == 0 {
			return nil
		}
		// SET expressions read the row as it was before the update, so
		// applied_at compares the old version. "WHERE true" resolves the
		// parsing ambiguity of an upsert whose rows come from a SELECT.
		_, err = tx.ExecContext(ctx, `INSERT INTO receipts (integration_id, article_id, version, applied_at, received_at)
			SELECT ?, k.value ->> 0, k.value ->> 1, ?, ? FROM json_each(?) k WHERE true
			ON CONFLICT (integration_id, article_id) DO UPDATE SET
				version = max(receipts.version, excluded.version),
				applied_at = CASE WHEN excluded.version > receipts.version THEN excluded.applied_at ELSE receipts.applied_at END,
				received_at = excluded.received_at`,
			integrationID, formatTime(at), formatTime(at), pairs)
		if err != nil {
			return fmt.Errorf("record receipts of integration %q: a receipt names an article version that does not exist: %w", integrationID, mapError(err))
		}
		return nil
	})
}

// SummarizeReceipts implements store.Store.
func (s *Store) SummarizeReceipts(ctx context.Context, in *knowledge.Integration, maxBehind int) (store.ReceiptSummary, error) {
	var sum store.ReceiptSummary
	err := s.read(ctx, func(tx *txn) error {
		var last sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT count(*), max(received_at) FROM receipts WHERE integration_id = ?`, in.ID).
			Scan(&sum.Articles, &last)
		if err != nil {
			return mapError(err)
		}
		if sum.LastReceiptAt, err = parseTime(last); err != nil {
			return err
		}
		if sum.Articles == 0 || maxBehind <= 0 {
			return nil
		}
		// Counting one row beyond maxBehind shows whether the count is
		// capped, and the limit bounds the work for a tool far behind.
		where, args := scopeFilter([]string{"r.integration_id = ?", "a.version > r.version"}, []any{in.ID}, in.Scope)
		args = append(args, maxBehind+1)
		err = tx.QueryRowContext(ctx, `SELECT count(*) FROM (
				SELECT 1 FROM receipts r
				JOIN articles a ON a.id = r.article_id
				JOIN article_versions v ON v.seq = a.current_seq
				WHERE `+strings.Join(where, " AND ")+` LIMIT ?)`, args...).Scan(&sum.Behind)
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
	err := s.read(ctx, func(tx *txn) error {
		var applied, received sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT version, applied_at, received_at FROM receipts
			WHERE integration_id = ? AND article_id = ?`, in.ID, articleID).Scan(&p.Applied.Version, &applied, &received)
		switch err = mapError(err); {
		case err == nil:
			if p.Applied.AppliedAt, err = parseTime(applied); err != nil {
				return err
			}
			if p.Applied.ReceivedAt, err = parseTime(received); err != nil {
				return err
			}
		case !errors.Is(err, store.ErrNotFound):
			return err
		}

		// Packed rows are found through the article's changes, newest
		// first, up to the push cursor, which no packed row passes. Only
		// when none holds a retained change are the events of packed rows
		// from before the log's oldest entry searched, newest first: that
		// scan reads every such row of the integration when the article
		// has none.
		err = tx.QueryRowContext(ctx, `SELECT max(
				(SELECT coalesce(max(version), 0) FROM deliveries
					WHERE integration_id = ? AND article_id = ? AND outcome = ?),
				coalesce(
					(SELECT pc.version FROM changes pc
						WHERE pc.article_id = ? AND pc.cursor <= (SELECT push_cursor FROM integrations WHERE id = ?)
						AND `+packedDelivered("?", "pc.cursor")+`
						ORDER BY pc.cursor DESC LIMIT 1),
					(SELECT e.value ->> 'v' FROM deliveries p, json_each(p.events) e
						WHERE p.integration_id = ? AND p.events IS NOT NULL
						AND p.first_cursor < (SELECT coalesce(min(cursor), 0) FROM changes)
						AND e.value ->> 'a' = ?
						ORDER BY p.first_cursor DESC, 1 DESC LIMIT 1),
					0))`,
			in.ID, articleID, store.OutcomeDelivered, articleID, in.ID, in.ID, in.ID, articleID).Scan(&p.Pushed)
		if err != nil {
			return mapError(err)
		}

		where, args := scopeFilter([]string{"c.article_id = ?", "c.cursor <= ?"}, []any{articleID, in.PullCursor}, in.Scope)
		err = tx.QueryRowContext(ctx, `SELECT coalesce(max(c.version), 0) FROM `+changeJoin+`
			WHERE `+strings.Join(where, " AND "), args...).Scan(&p.Pulled)
		return mapError(err)
	})
	return p, err
}
