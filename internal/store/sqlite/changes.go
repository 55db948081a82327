package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	return scopeFilterOn("v", where, args, scopes...)
}

// scopeFilterOn is scopeFilter for an article_versions row with the given
// alias.
func scopeFilterOn(v string, where []string, args []any, scopes ...knowledge.Scope) ([]string, []any) {
	for _, sc := range scopes {
		if len(sc.Collections) > 0 {
			where = append(where, v+".collection IN ("+placeholders(len(sc.Collections))+")")
			for _, c := range sc.Collections {
				args = append(args, c)
			}
		}
		if len(sc.Classes) > 0 {
			where = append(where, v+".class IN ("+placeholders(len(sc.Classes))+")")
			for _, c := range sc.Classes {
				args = append(args, string(c))
			}
		}
		if len(sc.Tags) > 0 {
			where = append(where, "EXISTS (SELECT 1 FROM json_each("+v+".tags) WHERE json_each.value IN ("+placeholders(len(sc.Tags))+"))")
			for _, t := range sc.Tags {
				args = append(args, t)
			}
		}
		// json_each compares keys as given, where a JSON path would need
		// quoting for keys containing '.' or '"'.
		for k, val := range sc.Metadata {
			where = append(where, "EXISTS (SELECT 1 FROM json_each("+v+".metadata) WHERE json_each.key = ? AND json_each.value = ?)")
			args = append(args, k, val)
		}
	}
	return where, args
}

// sqlCond is an SQL condition with the values of its placeholders.
type sqlCond struct {
	sql  string
	args []any
}

// announceConds returns the SQL form of knowledge.AnnouncedTo for a change
// aliased c, joined with its version v and the version before pv (see
// previousJoin). announced is true when a reader of every scope receives
// the change. leaves is true when it does so only because the version
// before matched. With no scope conditions, announced is empty and leaves
// is FALSE.
func announceConds(scopes ...knowledge.Scope) (announced, leaves sqlCond) {
	newer, newerArgs := scopeFilter(nil, nil, scopes...)
	if len(newer) == 0 {
		return sqlCond{}, sqlCond{sql: "FALSE"}
	}
	older, olderArgs := scopeFilterOn("pv", nil, nil, scopes...)
	n, o := strings.Join(newer, " AND "), strings.Join(older, " AND ")
	announced = sqlCond{"((" + n + ") OR (pv.article_id IS NOT NULL AND " + o + "))", append(slices.Clone(newerArgs), olderArgs...)}
	leaves = sqlCond{"(pv.article_id IS NOT NULL AND " + o + " AND NOT (" + n + "))", append(slices.Clone(olderArgs), newerArgs...)}
	return announced, leaves
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

// previousJoin joins the version before a change's, aliased pv, which is
// missing for a first version.
const previousJoin = ` LEFT JOIN article_versions pv ON pv.article_id = c.article_id AND pv.version = c.version - 1`

// previousColumns are the columns of pv that scanChangeWithPrevious reads
// after changeColumns.
const previousColumns = `pv.version, pv.collection, pv.class, pv.tags, pv.metadata, pv.status`

// scanChangeWithPrevious reads changeColumns and previousColumns.
func scanChangeWithPrevious(sc scanner) (knowledge.Change, error) {
	var (
		version                       sql.NullInt64
		collection, class, tags, meta sql.NullString
		status                        sql.NullString
	)
	c, err := scanChange(extraScanner{sc, []any{&version, &collection, &class, &tags, &meta, &status}})
	if err != nil || !version.Valid {
		return c, err
	}
	p := &knowledge.Article{ID: c.ArticleID, Version: version.Int64, Collection: collection.String,
		Class: knowledge.Class(class.String), Status: knowledge.Status(status.String)}
	if err := json.Unmarshal([]byte(tags.String), &p.Tags); err != nil {
		return c, fmt.Errorf("sqlite: article %q version %d: stored tags are invalid: %w", p.ID, p.Version, err)
	}
	if err := json.Unmarshal([]byte(meta.String), &p.Metadata); err != nil {
		return c, fmt.Errorf("sqlite: article %q version %d: stored metadata is invalid: %w", p.ID, p.Version, err)
	}
	c.Previous = p
	return c, nil
}

// leadingScanner reads a first column into first and passes the rest on.
type leadingScanner struct {
	scanner
	first any
}

func (l leadingScanner) Scan(dest ...any) error {
	return l.scanner.Scan(append([]any{l.first}, dest...)...)
}

// extraScanner appends destinations to every Scan of a scanner.
type extraScanner struct {
	scanner
	extra []any
}

func (e extraScanner) Scan(dest ...any) error {
	return e.scanner.Scan(append(dest, e.extra...)...)
}

// changeEntryColumns are the columns that scanChangeEntry reads, for
// changes aliased c.
const changeEntryColumns = `c.cursor, c.article_id, c.version, c.type, c.time`

func scanChangeEntry(sc scanner) (knowledge.Change, error) {
	var (
		c          knowledge.Change
		changeType string
		at         sql.NullString
	)
	if err := sc.Scan(&c.Cursor, &c.ArticleID, &c.Version, &changeType, &at); err != nil {
		return knowledge.Change{}, mapError(err)
	}
	t, err := parseTime(at)
	if err != nil {
		return knowledge.Change{}, err
	}
	c.Type = knowledge.ChangeType(changeType)
	c.Time = t
	return c, nil
}

// ReadChanges implements store.Store. A limit of 0 or less means 100, and
// limits above 1000 are lowered to 1000. In both cases the caller continues
// from ScannedTo as usual.
func (s *Store) ReadChanges(ctx context.Context, after int64, limit int, filters ...knowledge.Scope) (store.ChangePage, error) {
	return s.readChanges(ctx, after, limit, true, filters)
}

// ReadChangeEntries implements store.Store, with the limits of
// ReadChanges.
func (s *Store) ReadChangeEntries(ctx context.Context, after int64, limit int, filters ...knowledge.Scope) (store.ChangePage, error) {
	return s.readChanges(ctx, after, limit, false, filters)
}

// readChanges reads a page of the change log, with each entry's article
// version when withArticles is set.
func (s *Store) readChanges(ctx context.Context, after int64, limit int, withArticles bool, filters []knowledge.Scope) (store.ChangePage, error) {
	if limit <= 0 {
		limit = defaultChangeLimit
	}
	limit = min(limit, maxChangeLimit)
	// The first column marks a change that leaves the filters' scope. It
	// comes before WHERE, so its values are bound first.
	announced, leaves := announceConds(filters...)
	where, args := []string{"c.cursor > ?"}, append(slices.Clone(leaves.args), after)
	if announced.sql != "" {
		where = append(where, announced.sql)
		args = append(args, announced.args...)
	}
	left := leaves.sql
	args = append(args, limit)
	columns, from, scan := changeColumns+", "+previousColumns, changeJoin+previousJoin, scanChangeWithPrevious
	if !withArticles {
		columns, scan = changeEntryColumns, scanChangeEntry
		// Without scope conditions the joins can go, because only they
		// read the versions and every entry has one.
		if len(where) == 1 {
			from = `changes c`
		}
	}
	query := `SELECT ` + left + `, ` + columns + ` FROM ` + from +
		` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY c.cursor LIMIT ?`

	page := store.ChangePage{ScannedTo: after}
	err := s.read(ctx, func(tx *txn) error {
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return mapError(err)
		}
		defer rows.Close()
		for rows.Next() {
			var left bool
			c, err := scan(leadingScanner{rows, &left})
			if err != nil {
				return err
			}
			c.Left = left
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
	announced, leaves := announceConds()
	if in != nil {
		// As ReadChanges, a change counts when its new version is in the
		// scope or when it leaves the scope.
		announced, leaves = announceConds(in.Scope)
		if announced.sql != "" {
			where = append(where, announced.sql)
			args = append(args, announced.args...)
		}
	}
	if pushedOnly {
		if in == nil {
			return knowledge.Change{}, errors.New("sqlite: oldest change: pushedOnly needs an integration")
		}
		// This mirrors Integration.PushesChange. A change that leaves the
		// scope is always pushed. Operations events go only to a scope that
		// names them, and hybrid sends only what hybridPushes matches.
		pushes, pushesArgs := "TRUE", []any(nil)
		switch in.Pattern {
		case knowledge.PatternPush:
		case knowledge.PatternHybrid:
			pushes, pushesArgs = hybridPushes("c")
		default:
			return knowledge.Change{}, fmt.Errorf("integration %q with pattern %q pushes no changes: %w", in.ID, in.Pattern, store.ErrNotFound)
		}
		if !in.Scope.NamesOperations() {
			pushes = "(" + pushes + " AND v.class <> ?)"
			pushesArgs = append(pushesArgs, string(knowledge.ClassOperations))
		}
		where = append(where, "("+pushes+" OR "+leaves.sql+")")
		args = append(append(args, pushesArgs...), leaves.args...)
	}
	query := `SELECT ` + changeColumns + ` FROM ` + changeJoin + previousJoin +
		` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY c.cursor LIMIT 1`
	c, err := scanChange(s.reader.QueryRowContext(ctx, query, args...))
	if err != nil {
		return knowledge.Change{}, fmt.Errorf("change after cursor %d: %w", after, err)
	}
	return c, nil
}

// hybridPushes returns the SQL form of what Integration.PushesChange
// sends for hybrid within the scope, for a change aliased change joined
// with its version aliased v: time-sensitive classes, operations events,
// deprecations and archivals.
func hybridPushes(change string) (string, []any) {
	args := make([]any, 0, len(knowledge.TimeSensitiveClasses)+3)
	for _, c := range knowledge.TimeSensitiveClasses {
		args = append(args, string(c))
	}
	args = append(args, string(knowledge.ClassOperations), string(knowledge.ChangeDeprecated), string(knowledge.ChangeArchived))
	cond := "(v.class IN (" + placeholders(len(knowledge.TimeSensitiveClasses)) + ") OR v.class = ? OR " + change + ".type IN (?, ?))"
	return cond, args
}

// packedDelivered is an SQL condition: a packed delivery row of the
// integration holds the change at the cursor. Both arguments are SQL
// expressions. Packed rows of one integration cover disjoint ranges, so
// only the last one that starts at or before the cursor can hold it.
func packedDelivered(integration, cursor string) string {
	return `EXISTS (SELECT 1 FROM deliveries p
		WHERE p.id = (SELECT q.id FROM deliveries q
			WHERE q.integration_id = ` + integration + ` AND q.events IS NOT NULL AND q.first_cursor <= ` + cursor + `
			ORDER BY q.first_cursor DESC LIMIT 1)
		AND p.cursor >= ` + cursor + `
		AND EXISTS (SELECT 1 FROM json_each(p.events) e WHERE e.value ->> 'c' = ` + cursor + `))`
}

// OldestFailedChange implements store.Store. A pull integration has no
// deliveries, so it returns store.ErrNotFound for one.
func (s *Store) OldestFailedChange(ctx context.Context, in *knowledge.Integration, after int64) (knowledge.Change, error) {
	if in == nil {
		return knowledge.Change{}, errors.New("sqlite: oldest failed change: an integration is required")
	}

	// A later change of the article up to the push cursor that is in the
	// scope but that the pattern does not push settles the failure: the
	// tool reads that version when it pulls. Push sends every change in
	// the scope, and a change that leaves the scope as a removal, so for
	// push only a delivery settles a failure. A later change outside the
	// scope settles nothing, because the tool still holds what it had.
	skippedCond, skippedArgs := "", []any(nil)
	switch in.Pattern {
	case knowledge.PatternPush:
	case knowledge.PatternHybrid:
		skipped, args := scopeFilter(nil, nil, in.Scope)
		cond, condArgs := hybridPushes("later")
		skipped = append(skipped, "NOT "+cond)
		skippedArgs = append(args, condArgs...)
		skippedCond = `AND NOT EXISTS (SELECT 1 FROM changes later
			JOIN article_versions v ON v.article_id = later.article_id AND v.version = later.version
			WHERE later.article_id = d.article_id AND later.cursor > d.cursor AND later.cursor <= i.push_cursor
			AND ` + strings.Join(skipped, " AND ") + `)`
	default:
		return knowledge.Change{}, fmt.Errorf("integration %q with pattern %q pushes no changes: %w", in.ID, in.Pattern, store.ErrNotFound)
	}

	// The outcome is a literal rather than a parameter, so that SQLite can
	// use the partial index deliveries_failed.
	query := `SELECT ` + changeColumns + `
		FROM deliveries d
		JOIN integrations i ON i.id = d.integration_id
		JOIN changes c ON c.cursor = d.cursor
		JOIN article_versions v ON v.article_id = c.article_id AND v.version = c.version
		WHERE d.integration_id = ? AND d.outcome = '` + store.OutcomeFailed + `' AND d.cursor > ?
		AND NOT EXISTS (SELECT 1 FROM deliveries ok
			WHERE ok.integration_id = d.integration_id AND ok.article_id = d.article_id
			AND ok.cursor >= d.cursor AND ok.outcome = '` + store.OutcomeDelivered + `')
		AND NOT EXISTS (SELECT 1 FROM changes pc
			WHERE pc.article_id = d.article_id AND pc.cursor >= d.cursor AND pc.cursor <= i.push_cursor
			AND ` + packedDelivered("d.integration_id", "pc.cursor") + `)
		` + skippedCond + `
		ORDER BY d.cursor LIMIT 1`

	args := append([]any{in.ID, after}, skippedArgs...)
	c, err := scanChange(s.reader.QueryRowContext(ctx, query, args...))
	if err != nil {
		return knowledge.Change{}, fmt.Errorf("failed delivery of integration %q after cursor %d: %w", in.ID, after, err)
	}
	return c, nil
}
