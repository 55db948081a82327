package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// versionColumns are the article_versions columns that scanVersion reads,
// for a table aliased v.
const versionColumns = `v.article_id, v.version, v.title, v.body, v.collection, v.class,
	v.tags, v.metadata, v.status, v.created_at, v.updated_at, v.review_every_ns, v.owner`

// scanner is *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// scanVersion reads versionColumns, followed by extra destinations.
func scanVersion(sc scanner, extra ...any) (knowledge.Article, error) {
	var (
		a                knowledge.Article
		tags, metadata   string
		created, updated sql.NullString
		class, status    string
		reviewEvery      int64
	)
	dest := append([]any{&a.ID, &a.Version, &a.Title, &a.Body, &a.Collection, &class,
		&tags, &metadata, &status, &created, &updated, &reviewEvery, &a.Owner}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return a, mapError(err)
	}
	a.Class = knowledge.Class(class)
	a.Status = knowledge.Status(status)
	a.ReviewEvery = time.Duration(reviewEvery)
	if err := json.Unmarshal([]byte(tags), &a.Tags); err != nil {
		return a, fmt.Errorf("sqlite: article %q version %d: stored tags are invalid: %w", a.ID, a.Version, err)
	}
	if err := json.Unmarshal([]byte(metadata), &a.Metadata); err != nil {
		return a, fmt.Errorf("sqlite: article %q version %d: stored metadata is invalid: %w", a.ID, a.Version, err)
	}
	// Stored "null" reads as empty, not nil, as in the PostgreSQL store,
	// so that readers get [] and {}.
	if a.Tags == nil {
		a.Tags = []string{}
	}
	if a.Metadata == nil {
		a.Metadata = map[string]string{}
	}
	var err error
	if a.CreatedAt, err = parseTime(created); err != nil {
		return a, err
	}
	if a.UpdatedAt, err = parseTime(updated); err != nil {
		return a, err
	}
	return a, nil
}

// encodeJSON encodes v without HTML escaping, so that stored tags keep '<',
// '>' and '&' as written and the full-text index gets the same characters.
func encodeJSON(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// currentVersion is the current row of an article inside a write, with the
// indexed text exactly as stored, which the full-text delete must repeat.
type currentVersion struct {
	article knowledge.Article
	seq     int64
	hash    string
	tags    string // the stored JSON
}

func loadCurrent(ctx context.Context, tx *txn, id string) (*currentVersion, error) {
	var cur currentVersion
	row := tx.QueryRowContext(ctx, `SELECT `+versionColumns+`, v.seq, v.hash, v.tags
		FROM articles a JOIN article_versions v ON v.seq = a.current_seq
		WHERE a.id = ?`, id)
	a, err := scanVersion(row, &cur.seq, &cur.hash, &cur.tags)
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
// a stored article with a non-canonical hash.
func (s *Store) SaveArticle(ctx context.Context, a knowledge.Article, opts store.SaveOptions) (store.SaveResult, error) {
	if err := prepareSave(&a, &opts); err != nil {
		return store.SaveResult{}, err
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	// The hash and the JSON columns are computed before the write lock is
	// taken, except for an archive, whose content the transaction reads.
	var hash, tags, metadata string
	encode := func() error {
		var err error
		hash = a.ContentHash()
		if tags, err = encodeJSON(a.Tags); err != nil {
			return err
		}
		metadata, err = encodeJSON(a.Metadata)
		return err
	}
	if !opts.Archive {
		if err := encode(); err != nil {
			return store.SaveResult{}, err
		}
	}

	var res store.SaveResult
	err := s.write(ctx, func(tx *txn) error {
		prev, err := loadCurrent(ctx, tx, a.ID)
		if err != nil {
			return err
		}
		if err := checkPreconditions(a.ID, prev, opts); err != nil {
			return err
		}
		if opts.Archive {
			a = archived(prev.article)
			if err := encode(); err != nil {
				return err
			}
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

		var seq int64
		err = tx.QueryRowContext(ctx, `INSERT INTO article_versions
			(article_id, version, title, body, collection, class, tags, metadata, status, hash, created_at, updated_at,
			 review_every_ns, owner)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
			next.ID, next.Version, next.Title, next.Body, next.Collection, string(next.Class),
			tags, metadata, string(next.Status), hash, formatTime(next.CreatedAt), formatTime(next.UpdatedAt),
			int64(next.ReviewEvery), next.Owner,
		).Scan(&seq)
		if err != nil {
			return mapError(err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO articles (id, current_seq, version, status, hash)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET current_seq = excluded.current_seq,
				version = excluded.version, status = excluded.status, hash = excluded.hash`,
			next.ID, seq, next.Version, string(next.Status), hash)
		if err != nil {
			return mapError(err)
		}
		if err := updateSearchIndex(ctx, tx, prev, &next, seq); err != nil {
			return err
		}

		change := knowledge.Change{
			ArticleID: next.ID,
			Version:   next.Version,
			Type:      knowledge.ChangeTypeFor(prevArticle, &next),
			Time:      now,
			Article:   next,
		}
		// The cursor is allocated here, inside a transaction that began with
		// BEGIN IMMEDIATE and so holds SQLite's single write lock until
		// COMMIT. No other writer can allocate a cursor or commit in between,
		// so cursor order equals commit order. A reader therefore never reads
		// cursor N+1 committed while N is still pending, and a reader that
		// continues from the highest cursor it read skips nothing.
		err = tx.QueryRowContext(ctx, `INSERT INTO changes (article_id, version, type, time)
			VALUES (?, ?, ?, ?) RETURNING cursor`,
			change.ArticleID, change.Version, string(change.Type), formatTime(change.Time),
		).Scan(&change.Cursor)
		if err != nil {
			return mapError(err)
		}
		tx.head = change.Cursor
		res = store.SaveResult{Article: next, Created: prev == nil, Changed: true, Change: change}
		return nil
	})
	if err != nil {
		return store.SaveResult{}, err
	}
	return res, nil
}

// prepareSave normalizes and validates the article that SaveArticle is
// given, or for opts.Archive only its id, which it then requires to exist.
func prepareSave(a *knowledge.Article, opts *store.SaveOptions) error {
	if opts.Archive {
		opts.MustExist = true
		return knowledge.ValidateID("id", a.ID)
	}
	a.Normalize()
	return a.Validate()
}

// archived returns the article with status archived, as SaveOptions.Archive
// stores it.
func archived(a knowledge.Article) knowledge.Article {
	a.Status = knowledge.StatusArchived
	return a
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
	row := s.reader.QueryRowContext(ctx, `SELECT `+versionColumns+`
		FROM articles a JOIN article_versions v ON v.seq = a.current_seq
		WHERE a.id = ?`, id)
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
	row := s.reader.QueryRowContext(ctx, `SELECT `+metaColumns+`
		FROM articles a JOIN article_versions v ON v.seq = a.current_seq
		WHERE a.id = ?`, id)
	a, err := scanVersion(row)
	if err != nil {
		return knowledge.Article{}, fmt.Errorf("article %q: %w", id, err)
	}
	return a, nil
}

// GetArticleVersion implements store.Store.
func (s *Store) GetArticleVersion(ctx context.Context, id string, version int64) (knowledge.Article, error) {
	row := s.reader.QueryRowContext(ctx, `SELECT `+versionColumns+`
		FROM article_versions v WHERE v.article_id = ? AND v.version = ?`, id, version)
	a, err := scanVersion(row)
	if err != nil {
		return knowledge.Article{}, fmt.Errorf("article %q version %d: %w", id, version, err)
	}
	return a, nil
}

// ListVersions implements store.Store. It returns store.ErrNotFound for an
// unknown article.
func (s *Store) ListVersions(ctx context.Context, id string) ([]knowledge.Article, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+versionColumns+`
		FROM article_versions v WHERE v.article_id = ? ORDER BY v.version`, id)
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
	err := s.reader.QueryRowContext(ctx, `SELECT count(*) FROM articles WHERE status <> 'archived'`).Scan(&n)
	return n, mapError(err)
}
