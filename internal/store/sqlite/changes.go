package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// Page sizes of ReadChanges.
const (
	defaultChangeLimit = 100
	maxChangeLimit     = 1000
)

// scopeFilter appends to where the SQL conditions that make an
// article_versions row, aliased v, match every scope, and appends their
// values to args as bound parameters.
func scopeFilter(where []string, args []any, scopes ...knowledge.Scope) ([]string, []any) {
	for _, sc := range scopes {
		if len(sc.Collections) > 0 {
			where = append(where, "v.collection IN ("+placeholders(len(sc.Collections))+")")
			for _, c := range sc.Collections {
				args = append(args, c)
			}
		}
		if len(sc.Classes) > 0 {
			where = append(where, "v.class IN ("+placeholders(len(sc.Classes))+")")
			for _, c := range sc.Classes {
				args = append(args, string(c))
			}
		}
		if len(sc.Tags) > 0 {
			where = append(where, "EXISTS (SELECT 1 FROM json_each(v.tags) WHERE json_each.value IN ("+placeholders(len(sc.Tags))+"))")
			for _, t := range sc.Tags {
				args = append(args, t)
			}
		}
		// json_each compares keys as given, where a JSON path would need
		// quoting for keys containing '.' or '"'.
		for k, val := range sc.Metadata {
			where = append(where, "EXISTS (SELECT 1 FROM json_each(v.metadata) WHERE json_each.key = ? AND json_each.value = ?)")
			args = append(args, k, val)
		}
	}
	return where, args
}

// placeholders returns n comma-separated '?'.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// changeColumns are the columns that scanChange reads, for changes aliased c
// joined with the version it created, aliased v.
const changeColumns = versionColumns + `, c.cursor, c.type, c.time`

const changeJoin = `changes c JOIN article_versions v ON v.article_id = c.article_id AND v.version = c.version`

func scanChange(sc scanner) (knowledge.Change, error) {
	var (
		cursor     int64
		changeType string
		at         sql.NullString
	)
	a, err := scanVersion(sc, &cursor, &changeType, &at)
	if err != nil {
		return knowledge.Change{}, err
	}
	t, err := parseTime(at)
	if err != nil {
		return knowledge.Change{}, err
	}
	return knowledge.Change{
		Cursor:    cursor,
		ArticleID: a.ID,
		Version:   a.Version,
		Type:      knowledge.ChangeType(changeType),
		Time:      t,
		Article:   a,
	}, nil
}

// ReadChanges implements store.Store. A limit of 0 or less means 100, and
// limits above 1000 are lowered to 1000. In both cases the caller continues
// from ScannedTo as usual.
func (s *Store) ReadChanges(ctx context.Context, after int64, limit int, filters ...knowledge.Scope) (store.ChangePage, error) {
	if limit <= 0 {
		limit = defaultChangeLimit
	}
	limit = min(limit, maxChangeLimit)
	where, args := scopeFilter([]string{"c.cursor > ?"}, []any{after}, filters...)
	args = append(args, limit)
	query := `SELECT ` + changeColumns + ` FROM ` + changeJoin +
		` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY c.cursor LIMIT ?`

	page := store.ChangePage{ScannedTo: after}
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return mapError(err)
		}
		defer rows.Close()
		for rows.Next() {
			c, err := scanChange(rows)
			if err != nil {
				return err
			}
			page.Changes = append(page.Changes, c)
		}
		if err := rows.Err(); err != nil {
			return mapError(err)
		}
		if len(page.Changes) == limit {
			page.ScannedTo = page.Changes[len(page.Changes)-1].Cursor
			return nil
		}
		// Fewer entries than the limit matched, so every entry up to the
		// head of this snapshot has been looked at.
		head, err := headCursor(ctx, tx)
		if err != nil {
			return err
		}
		page.ScannedTo = max(head, after)
		return nil
	})
	if err != nil {
		return store.ChangePage{}, err
	}
	return page, nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func headCursor(ctx context.Context, q queryer) (int64, error) {
	var head int64
	err := q.QueryRowContext(ctx, `SELECT coalesce(max(cursor), 0) FROM changes`).Scan(&head)
	return head, mapError(err)
}

// HeadCursor implements store.Store.
func (s *Store) HeadCursor(ctx context.Context) (int64, error) {
	return headCursor(ctx, s.reader)
}

// OldestChangeAfter implements store.Store. A nil integration matches every
// change, but pushedOnly then has no pattern to apply and is rejected.
func (s *Store) OldestChangeAfter(ctx context.Context, in *knowledge.Integration, after int64, pushedOnly bool) (knowledge.Change, error) {
	where := []string{"c.cursor > ?"}
	args := []any{after}
	if in != nil {
		where, args = scopeFilter(where, args, in.Scope)
	}
	if pushedOnly {
		if in == nil {
			return knowledge.Change{}, errors.New("sqlite: oldest change: pushedOnly needs an integration")
		}
		switch in.Pattern {
		case knowledge.PatternPush:
		case knowledge.PatternHybrid:
			// The SQL form of Integration.PushesChange for hybrid.
			where = append(where, "(v.class IN ("+placeholders(len(knowledge.TimeSensitiveClasses))+") OR c.type IN (?, ?))")
			for _, c := range knowledge.TimeSensitiveClasses {
				args = append(args, string(c))
			}
			args = append(args, string(knowledge.ChangeDeprecated), string(knowledge.ChangeArchived))
		default:
			return knowledge.Change{}, fmt.Errorf("integration %q with pattern %q pushes no changes: %w", in.ID, in.Pattern, store.ErrNotFound)
		}
	}
	query := `SELECT ` + changeColumns + ` FROM ` + changeJoin +
		` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY c.cursor LIMIT 1`
	c, err := scanChange(s.reader.QueryRowContext(ctx, query, args...))
	if err != nil {
		return knowledge.Change{}, fmt.Errorf("change after cursor %d: %w", after, err)
	}
	return c, nil
}
