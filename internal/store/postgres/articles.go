package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// versionColumns are the article_versions columns that scanVersion reads,
// for a table aliased v.
const versionColumns = `v.article_id, v.version, v.title, v.body, v.collection, v.class,
	v.tags, v.metadata, v.status, v.created_at, v.updated_at, v.review_every_ns, v.owner`

// searchConfig is the text search configuration of the search document and
// of queries. 'simple' lower-cases words and neither stems nor drops stop
// words, so "cert" does not match "certificate", as in the SQLite back-end.
// It is built in. Accents are folded before the text reaches it, by
// indexFields and fulltext.Parse, so "cafe" finds "café" as on SQLite.
const searchConfig = "'simple'::regconfig"

// documentSQL computes the search document from the title, the tags joined
// by spaces and the body, given as three parameters.
func documentSQL(title, tags, body string) string {
	return fmt.Sprintf(`setweight(to_tsvector(%[1]s, %[2]s), 'A') ||
		setweight(to_tsvector(%[1]s, %[3]s), 'B') ||
		setweight(to_tsvector(%[1]s, %[4]s), 'C')`, searchConfig, title, tags, body)
}

// scanVersion reads versionColumns, followed by extra destinations.
func scanVersion(row pgx.Row, extra ...any) (knowledge.Article, error) {
	var (
		a             knowledge.Article
		class, status string
		reviewEvery   int64
	)
	dest := append([]any{&a.ID, &a.Version, &a.Title, &a.Body, &a.Collection, &class,
		&a.Tags, &a.Metadata, &status, &a.CreatedAt, &a.UpdatedAt, &reviewEvery, &a.Owner}, extra...)
	if err := row.Scan(dest...); err != nil {
		return a, mapError(err)
	}
	a.Class = knowledge.Class(class)
	a.Status = knowledge.Status(status)
	a.ReviewEvery = time.Duration(reviewEvery)
	// Normalize leaves empty, not nil, tags and metadata.
	if a.Tags == nil {
		a.Tags = []string{}
	}
	if a.Metadata == nil {
		a.Metadata = map[string]string{}
	}
	a.CreatedAt = a.CreatedAt.UTC()
	a.UpdatedAt = a.UpdatedAt.UTC()
	return a, nil
}

// currentVersion is the current row of an article inside a write.
type currentVersion struct {
	article knowledge.Article
	hash    string
}

// loadCurrent returns the article's current version, or nil when it does
// not exist.
func loadCurrent(ctx context.Context, tx pgx.Tx, id string) (*currentVersion, error) {
	var cur currentVersion
	row := tx.QueryRow(ctx, `SELECT `+versionColumns+`, v.hash
		FROM articles a JOIN article_versions v ON v.seq = a.current_seq
		WHERE a.id = $1`, id)
	a, err := scanVersion(row, &cur.hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cur.article = a
	return &cur, nil
}

// SaveArticle implements store.Store. It normalizes and validates a again,
// so a caller that skipped that step gets a *knowledge.FieldError rather than
// a stored article with a non-canonical hash. Commit times are truncated to
// the microsecond, the precision of timestamptz, so the result equals what a
// later read returns.
func (s *Store) SaveArticle(ctx context.Context, a knowledge.Article, opts store.SaveOptions) (store.SaveResult, error) {
	if opts.Archive {
		opts.MustExist = true
		if err := knowledge.ValidateID("id", a.ID); err != nil {
			return store.SaveResult{}, err
		}
	} else {
		a.Normalize()
		if err := a.Validate(); err != nil {
			return store.SaveResult{}, err
		}
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC().Truncate(time.Microsecond)
	// An archive's content, and so its hash, is read in the transaction.
	var hash string
	if !opts.Archive {
		hash = a.ContentHash()
	}

	var res store.SaveResult
	err := s.write(ctx, func(tx pgx.Tx) error {
		// Writers of one article queue here, so the current version read
		// below stays current until COMMIT, and two writers that create
		// the same article at once become a create and an update.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, s.articlesOID, hash32(a.ID)); err != nil {
			return mapError(err)
		}
		prev, err := loadCurrent(ctx, tx, a.ID)
		if err != nil {
			return err
		}
		if err := checkPreconditions(a.ID, prev, opts); err != nil {
			return err
		}
		if opts.Archive {
			a = prev.article
			a.Status = knowledge.StatusArchived
			hash = a.ContentHash()
		}
		if prev != nil && prev.hash == hash {
			res = store.SaveResult{Article: prev.article}
			return nil
		}

		next := a
		next.Version = 1
		next.CreatedAt = now
		next.UpdatedAt = now
		var prevArticle *knowledge.Article
		if prev != nil {
			prevArticle = &prev.article
			next.Version = prev.article.Version + 1
			next.CreatedAt = prev.article.CreatedAt
		}
		if err := insertVersion(ctx, tx, &next, hash); err != nil {
			return err
		}

		change := knowledge.Change{
			ArticleID: next.ID,
			Version:   next.Version,
			Type:      knowledge.ChangeTypeFor(prevArticle, &next),
			Time:      now,
			Article:   next,
		}
		if change.Cursor, err = s.appendChange(ctx, tx, &change); err != nil {
			return err
		}
		if s.beforeCommit != nil {
			s.beforeCommit()
		}
		res = store.SaveResult{Article: next, Created: prev == nil, Changed: true, Change: change}
		return nil
	})
	if err != nil {
		return store.SaveResult{}, err
	}
	return res, nil
}

// insertVersion stores next as a new version and makes it the article's
// current version, with its search document, or none when it is archived.
func insertVersion(ctx context.Context, tx pgx.Tx, next *knowledge.Article, hash string) error {
	var seq int64
	err := tx.QueryRow(ctx, `INSERT INTO article_versions
		(article_id, version, title, body, collection, class, tags, metadata, status, hash, created_at, updated_at,
		 review_every_ns, owner)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING seq`,
		next.ID, next.Version, next.Title, next.Body, next.Collection, string(next.Class),
		next.Tags, next.Metadata, string(next.Status), hash, next.CreatedAt, next.UpdatedAt,
		int64(next.ReviewEvery), next.Owner,
	).Scan(&seq)
	if err != nil {
		return fmt.Errorf("store article %q version %d: %w", next.ID, next.Version, mapError(err))
	}
	title, tags, body := indexFields(next.Title, next.Tags, next.Body)
	_, err = tx.Exec(ctx, `INSERT INTO articles (id, current_seq, version, status, hash, document)
		VALUES ($1, $2, $3, $4, $5, CASE WHEN $4 <> 'archived' THEN `+documentSQL("$6", "$7", "$8")+` END)
		ON CONFLICT (id) DO UPDATE SET current_seq = excluded.current_seq, version = excluded.version,
			status = excluded.status, hash = excluded.hash, document = excluded.document`,
		next.ID, seq, next.Version, string(next.Status), hash,
		title, tags, body)
	if err != nil {
		return fmt.Errorf("make article %q version %d current: %w", next.ID, next.Version, mapError(err))
	}
	return nil
}

// appendChange inserts the change-log entry and returns its cursor. It must
// run last in the write transaction, because the lock it takes is held until
// COMMIT and every other SaveArticle waits for it.
//
// The lock makes cursor order equal commit order. A plain sequence does not:
// a transaction that took cursor 41 can commit after one that took 42, and a
// reader that saw 42 and moved on would never see 41. Here the sequence is
// read only by the holder of the change-log lock, and PostgreSQL releases a
// transaction's locks after its commit became visible to new snapshots. So
// the next holder allocates a higher cursor only after every lower cursor is
// committed or rolled back for good. Any snapshot that contains a cursor
// then contains every committed lower one, and a reader that continues from
// the newest cursor it saw skips nothing. Rolled-back writes leave gaps.
//
// The same statement queues a notification with the cursor on the store's
// channel. PostgreSQL delivers it to ListenChanges at COMMIT, and drops it
// on rollback.
func (s *Store) appendChange(ctx context.Context, tx pgx.Tx, c *knowledge.Change) (int64, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, s.changesOID); err != nil {
		return 0, mapError(err)
	}
	var cursor int64
	err := tx.QueryRow(ctx, `WITH c AS (
			INSERT INTO changes (article_id, version, type, time)
			VALUES ($1, $2, $3, $4) RETURNING cursor
		)
		SELECT c.cursor FROM c, pg_notify($5, c.cursor::text)`,
		c.ArticleID, c.Version, string(c.Type), c.Time, s.channel,
	).Scan(&cursor)
	if err != nil {
		return 0, fmt.Errorf("append change of article %q version %d: %w", c.ArticleID, c.Version, mapError(err))
	}
	return cursor, nil
}

func checkPreconditions(id string, prev *currentVersion, opts store.SaveOptions) error {
	switch {
	case opts.CreateOnly && prev != nil:
		return fmt.Errorf("article %q exists already at version %d: %w", id, prev.article.Version, store.ErrConflict)
	case opts.MustExist && prev == nil:
		return fmt.Errorf("article %q: %w", id, store.ErrNotFound)
	case opts.IfVersion != 0 && prev == nil:
		return fmt.Errorf("article %q does not exist, expected version %d: %w", id, opts.IfVersion, store.ErrConflict)
	case opts.IfVersion != 0 && prev.article.Version != opts.IfVersion:
		return fmt.Errorf("article %q is at version %d, expected version %d: %w", id, prev.article.Version, opts.IfVersion, store.ErrConflict)
	}
	return nil
}

// GetArticle implements store.Store.
func (s *Store) GetArticle(ctx context.Context, id string) (knowledge.Article, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+versionColumns+`
		FROM articles a JOIN article_versions v ON v.seq = a.current_seq
		WHERE a.id = $1`, id)
	a, err := scanVersion(row)
	if err != nil {
		return knowledge.Article{}, fmt.Errorf("article %q: %w", id, err)
	}
	return a, nil
}

// metaColumns are versionColumns with an empty text in place of the body,
// so that scanVersion reads them.
var metaColumns = strings.Replace(versionColumns, "v.body", "''", 1)

// GetArticleMeta implements store.Store.
func (s *Store) GetArticleMeta(ctx context.Context, id string) (knowledge.Article, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+metaColumns+`
		FROM articles a JOIN article_versions v ON v.seq = a.current_seq
		WHERE a.id = $1`, id)
	a, err := scanVersion(row)
	if err != nil {
		return knowledge.Article{}, fmt.Errorf("article %q: %w", id, err)
	}
	return a, nil
}

// GetArticleVersion implements store.Store.
func (s *Store) GetArticleVersion(ctx context.Context, id string, version int64) (knowledge.Article, error) {
	row := s.pool.QueryRow(ctx, `SELECT `+versionColumns+`
		FROM article_versions v WHERE v.article_id = $1 AND v.version = $2`, id, version)
	a, err := scanVersion(row)
	if err != nil {
		return knowledge.Article{}, fmt.Errorf("article %q version %d: %w", id, version, err)
	}
	return a, nil
}

// ListVersions implements store.Store. It returns store.ErrNotFound for an
// unknown article.
func (s *Store) ListVersions(ctx context.Context, id string) ([]knowledge.Article, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+versionColumns+`
		FROM article_versions v WHERE v.article_id = $1 ORDER BY v.version`, id)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var out []knowledge.Article
	for rows.Next() {
		a, err := scanVersion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("article %q: %w", id, store.ErrNotFound)
	}
	return out, nil
}

// CountArticles implements store.Store.
func (s *Store) CountArticles(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM articles WHERE status <> 'archived'`).Scan(&n)
	return n, mapError(err)
}
