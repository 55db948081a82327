package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// Page sizes of ReadChanges.
const (
	defaultChangeLimit = 100
	maxChangeLimit     = 1000
)

// queryArgs collects the bound parameters of a query as it is built.
type queryArgs []any

// add appends v and returns its placeholder, such as $3.
func (q *queryArgs) add(v any) string {
	*q = append(*q, v)
	return "$" + strconv.Itoa(len(*q))
}

// scopeFilter appends to where the SQL conditions that make an
// article_versions row, aliased v, match every scope, with the values bound
// as parameters in args.
func scopeFilter(where []string, args *queryArgs, scopes ...knowledge.Scope) []string {
	return scopeFilterOn("v", where, args, scopes...)
}

// scopeFilterOn is scopeFilter for an article_versions row with the given
// alias.
func scopeFilterOn(v string, where []string, args *queryArgs, scopes ...knowledge.Scope) []string {
	for _, sc := range scopes {
		if len(sc.Collections) > 0 {
			where = append(where, v+".collection = ANY ("+args.add(sc.Collections)+"::text[])")
		}
		if len(sc.Classes) > 0 {
			classes := make([]string, len(sc.Classes))
			for i, c := range sc.Classes {
				classes[i] = string(c)
			}
			where = append(where, v+".class = ANY ("+args.add(classes)+"::text[])")
		}
		if len(sc.Tags) > 0 {
			where = append(where, v+".tags && "+args.add(sc.Tags)+"::text[]")
		}
		// Containment of the whole map requires every key to have its
		// value, and keys need no quoting as they would in a JSON path.
		if len(sc.Metadata) > 0 {
			where = append(where, v+".metadata @> "+args.add(sc.Metadata)+"::jsonb")
		}
	}
	return where
}

// announceConds returns the SQL form of knowledge.AnnouncedTo for a change
// aliased c, joined with its version v and the version before pv (see
// previousJoin), and binds its values in args. announced is true when a
// reader of every scope receives the change. leaves is true when it does
// so only because the version before matched. With no scope conditions,
// announced is empty and leaves is FALSE.
func announceConds(args *queryArgs, scopes ...knowledge.Scope) (announced, leaves string) {
	newer := scopeFilter(nil, args, scopes...)
	if len(newer) == 0 {
		return "", "FALSE"
	}
	n := strings.Join(newer, " AND ")
	o := strings.Join(scopeFilterOn("pv", nil, args, scopes...), " AND ")
	return "((" + n + ") OR (pv.article_id IS NOT NULL AND " + o + "))",
		"(pv.article_id IS NOT NULL AND " + o + " AND NOT (" + n + "))"
}

// changeColumns are the columns that scanChange reads, for changes aliased c
// joined with the version it created, aliased v.
const changeColumns = versionColumns + `, c.cursor, c.type, c.time`

const changeJoin = `changes c JOIN article_versions v ON v.article_id = c.article_id AND v.version = c.version`

func scanChange(row pgx.Row) (knowledge.Change, error) {
	var c knowledge.Change
	var changeType string
	a, err := scanVersion(row, &c.Cursor, &changeType, &c.Time)
	if err != nil {
		return knowledge.Change{}, err
	}
	c.ArticleID = a.ID
	c.Version = a.Version
	c.Type = knowledge.ChangeType(changeType)
	c.Time = c.Time.UTC()
	c.Article = a
	return c, nil
}

// previousJoin joins the version before a change's, aliased pv, which is
// missing for a first version.
const previousJoin = ` LEFT JOIN article_versions pv ON pv.article_id = c.article_id AND pv.version = c.version - 1`

// previousColumns are the columns of pv that scanChangeWithPrevious reads
// after changeColumns.
const previousColumns = `pv.version, pv.collection, pv.class, pv.tags, pv.metadata, pv.status`

// scanChangeWithPrevious reads changeColumns and previousColumns.
func scanChangeWithPrevious(row pgx.Row) (knowledge.Change, error) {
	var (
		version                   pgtype.Int8
		collection, class, status pgtype.Text
		tags                      []string
		metadata                  map[string]string
	)
	c, err := scanChange(extraRow{row, []any{&version, &collection, &class, &tags, &metadata, &status}})
	if err != nil || !version.Valid {
		return c, err
	}
	if tags == nil {
		tags = []string{}
	}
	if metadata == nil {
		metadata = map[string]string{}
	}
	c.Previous = &knowledge.Article{ID: c.ArticleID, Version: version.Int64, Collection: collection.String,
		Class: knowledge.Class(class.String), Tags: tags, Metadata: metadata, Status: knowledge.Status(status.String)}
	return c, nil
}

// leadingRow reads a first column into first and passes the rest on.
type leadingRow struct {
	pgx.Row
	first any
}

func (l leadingRow) Scan(dest ...any) error {
	return l.Row.Scan(append([]any{l.first}, dest...)...)
}

// extraRow appends destinations to every Scan of a row.
type extraRow struct {
	pgx.Row
	extra []any
}

func (e extraRow) Scan(dest ...any) error {
	return e.Row.Scan(append(dest, e.extra...)...)
}

// changeEntryColumns are the columns that scanChangeEntry reads, for
// changes aliased c.
const changeEntryColumns = `c.cursor, c.article_id, c.version, c.type, c.time`

func scanChangeEntry(row pgx.Row) (knowledge.Change, error) {
	var c knowledge.Change
	var changeType string
	if err := row.Scan(&c.Cursor, &c.ArticleID, &c.Version, &changeType, &c.Time); err != nil {
		return knowledge.Change{}, mapError(err)
	}
	c.Type = knowledge.ChangeType(changeType)
	c.Time = c.Time.UTC()
	return c, nil
}

// ReadChanges implements store.Store. A limit of 0 or less means 100, and
// limits above 1000 are lowered to 1000. ScannedTo is where the caller
// continues either way.
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
	var args queryArgs
	where := []string{"c.cursor > " + args.add(after)}
	// The first column marks a change that leaves the filters' scope.
	announced, left := announceConds(&args, filters...)
	if announced != "" {
		where = append(where, announced)
	}
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
		` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY c.cursor LIMIT ` + args.add(limit)

	page := store.ChangePage{ScannedTo: after}
	err := s.read(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return mapError(err)
		}
		defer rows.Close()
		for rows.Next() {
			var left bool
			c, err := scan(leadingRow{rows, &left})
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
		// head of this snapshot has been looked at. No lower cursor can
		// commit later, because SaveArticle allocates cursors in commit
		// order.
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

func headCursor(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}) (int64, error) {
	var head int64
	err := q.QueryRow(ctx, `SELECT coalesce(max(cursor), 0) FROM changes`).Scan(&head)
	return head, mapError(err)
}

// HeadCursor implements store.Store.
func (s *Store) HeadCursor(ctx context.Context) (int64, error) {
	return headCursor(ctx, s.pool)
}

// OldestChangeAfter implements store.Store. A nil integration matches every
// change, but pushedOnly then has no pattern to apply and is rejected.
func (s *Store) OldestChangeAfter(ctx context.Context, in *knowledge.Integration, after int64, pushedOnly bool) (knowledge.Change, error) {
	var args queryArgs
	where := []string{"c.cursor > " + args.add(after)}
	leaves := "FALSE"
	if in != nil {
		// As ReadChanges, a change counts when its new version is in the
		// scope or when it leaves the scope.
		var announced string
		if announced, leaves = announceConds(&args, in.Scope); announced != "" {
			where = append(where, announced)
		}
	}
	if pushedOnly {
		if in == nil {
			return knowledge.Change{}, errors.New("postgres: oldest change: pushedOnly needs an integration")
		}
		// This mirrors Integration.PushesChange. A change that leaves the
		// scope is always pushed. Operations events go only to a scope that
		// names them, and hybrid sends only what hybridPushes matches.
		pushes := "TRUE"
		switch in.Pattern {
		case knowledge.PatternPush:
		case knowledge.PatternHybrid:
			pushes = hybridPushes(&args, "c")
		default:
			return knowledge.Change{}, fmt.Errorf("integration %q with pattern %q pushes no changes: %w", in.ID, in.Pattern, store.ErrNotFound)
		}
		if !in.Scope.NamesOperations() {
			pushes = "(" + pushes + " AND v.class <> " + args.add(string(knowledge.ClassOperations)) + ")"
		}
		where = append(where, "("+pushes+" OR "+leaves+")")
	}
	query := `SELECT ` + changeColumns + ` FROM ` + changeJoin + previousJoin +
		` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY c.cursor LIMIT 1`
	c, err := scanChange(s.pool.QueryRow(ctx, query, args...))
	if err != nil {
		return knowledge.Change{}, fmt.Errorf("change after cursor %d: %w", after, err)
	}
	return c, nil
}

// hybridPushes returns the SQL form of what Integration.PushesChange
// sends for hybrid within the scope, for a change aliased change joined
// with its version aliased v: time-sensitive classes, operations events,
// deprecations and archivals. It binds its values in args.
func hybridPushes(args *queryArgs, change string) string {
	classes := make([]string, 0, len(knowledge.TimeSensitiveClasses)+1)
	for _, c := range knowledge.TimeSensitiveClasses {
		classes = append(classes, string(c))
	}
	classes = append(classes, string(knowledge.ClassOperations))
	types := []string{string(knowledge.ChangeDeprecated), string(knowledge.ChangeArchived)}
	return "(v.class = ANY (" + args.add(classes) + "::text[]) OR " + change + ".type = ANY (" + args.add(types) + "::text[]))"
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
		AND p.events @> jsonb_build_array(jsonb_build_object('c', ` + cursor + `)))`
}

// OldestFailedChange implements store.Store. A pull integration has no
// deliveries, so it returns store.ErrNotFound for one.
func (s *Store) OldestFailedChange(ctx context.Context, in *knowledge.Integration, after int64) (knowledge.Change, error) {
	if in == nil {
		return knowledge.Change{}, errors.New("postgres: oldest failed change: an integration is required")
	}

	var args queryArgs
	id, cursor := args.add(in.ID), args.add(after)
	// A later change of the article up to the push cursor that is in the
	// scope but that the pattern does not push settles the failure: the
	// tool reads that version when it pulls. Push sends every change in
	// the scope, and a change that leaves the scope as a removal, so for
	// push only a delivery settles a failure. A later change outside the
	// scope settles nothing, because the tool still holds what it had.
	skippedCond := ""
	switch in.Pattern {
	case knowledge.PatternPush:
	case knowledge.PatternHybrid:
		skipped := append(scopeFilter(nil, &args, in.Scope), "NOT "+hybridPushes(&args, "later"))
		skippedCond = `AND NOT EXISTS (SELECT 1 FROM changes later
			JOIN article_versions v ON v.article_id = later.article_id AND v.version = later.version
			WHERE later.article_id = d.article_id AND later.cursor > d.cursor AND later.cursor <= i.push_cursor
			AND ` + strings.Join(skipped, " AND ") + `)`
	default:
		return knowledge.Change{}, fmt.Errorf("integration %q with pattern %q pushes no changes: %w", in.ID, in.Pattern, store.ErrNotFound)
	}

	// The outcomes are literals rather than parameters, so that every plan,
	// generic ones included, can use the partial index deliveries_failed.
	failed, delivered := "'"+store.OutcomeFailed+"'", "'"+store.OutcomeDelivered+"'"
	query := `SELECT ` + changeColumns + `
		FROM deliveries d
		JOIN integrations i ON i.id = d.integration_id
		JOIN changes c ON c.cursor = d.cursor
		JOIN article_versions v ON v.article_id = c.article_id AND v.version = c.version
		WHERE d.integration_id = ` + id + ` AND d.outcome = ` + failed + ` AND d.cursor > ` + cursor + `
		AND NOT EXISTS (SELECT 1 FROM deliveries ok
			WHERE ok.integration_id = d.integration_id AND ok.article_id = d.article_id
			AND ok.cursor >= d.cursor AND ok.outcome = ` + delivered + `)
		AND NOT EXISTS (SELECT 1 FROM changes pc
			WHERE pc.article_id = d.article_id AND pc.cursor >= d.cursor AND pc.cursor <= i.push_cursor
			AND ` + packedDelivered("d.integration_id", "pc.cursor") + `)
		` + skippedCond + `
		ORDER BY d.cursor LIMIT 1`

	c, err := scanChange(s.pool.QueryRow(ctx, query, args...))
	if err != nil {
		return knowledge.Change{}, fmt.Errorf("failed delivery of integration %q after cursor %d: %w", in.ID, after, err)
	}
	return c, nil
}
