package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/fulltext"
)

// Search result sizes.
const (
	defaultSearchLimit = 20
	maxSearchLimit     = 100
)

// listPrefix is how much of a body a listing without search text reads for
// its snippet, in characters: fulltext.SnippetWords words of any sensible
// length fit.
const listPrefix = 1000

// reindexBatch is the number of articles that rebuildSearchIndex reads at
// a time.
const reindexBatch = 500

// rebuildSearchIndex recomputes the search document of every current,
// non-archived article when the analyzer that built the documents,
// recorded in search_index, is not fulltext.AnalyzerVersion: after
// migration 00005, and whenever the analyzer's rules change. It runs in one
// transaction that first locks the search_index row, so when several nodes
// start at once one rebuilds and the others wait and then find the
// documents current.
func rebuildSearchIndex(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return mapError(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var version int
	if err := tx.QueryRow(ctx, `SELECT analyzer FROM search_index FOR UPDATE`).Scan(&version); err != nil {
		return fmt.Errorf("postgres: read the search index version: %w", mapError(err))
	}
	if version == fulltext.AnalyzerVersion {
		return nil
	}
	last := ""
	for {
		rows, err := tx.Query(ctx, `SELECT a.id, v.title, v.tags, v.body
			FROM articles a JOIN article_versions v ON v.seq = a.current_seq
			WHERE a.status <> 'archived' AND a.id > $1 ORDER BY a.id LIMIT $2`, last, reindexBatch)
		if err != nil {
			return mapError(err)
		}
		var batch pgx.Batch
		n := 0
		for rows.Next() {
			var id, title, body string
			var tags []string
			if err := rows.Scan(&id, &title, &tags, &body); err != nil {
				rows.Close()
				return mapError(err)
			}
			title, tagText, body := indexFields(title, tags, body)
			batch.Queue(`UPDATE articles SET document = `+documentSQL("$2", "$3", "$4")+` WHERE id = $1`, id, title, tagText, body)
			last = id
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return mapError(err)
		}
		if n > 0 {
			if err := tx.SendBatch(ctx, &batch).Close(); err != nil {
				return fmt.Errorf("postgres: rebuild the search index up to article %q: %w", last, mapError(err))
			}
		}
		if n < reindexBatch {
			break
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE search_index SET analyzer = $1`, fulltext.AnalyzerVersion); err != nil {
		return mapError(err)
	}
	return mapError(tx.Commit(ctx))
}

// indexFields returns the analyzed text of an article's title, tags and
// body, which documentSQL turns into the search document. Accents are
// folded here, by package fulltext, so the search works the same with or
// without PostgreSQL's unaccent extension and needs no privilege to
// install one.
func indexFields(title string, tags []string, body string) (string, string, string) {
	return fulltext.IndexText(title), fulltext.IndexText(strings.Join(tags, " ")), fulltext.IndexText(body)
}

// Search implements store.Store. The text is parsed by package fulltext
// and written as to_tsquery input whose operands hold only letters, digits
// and marks, so input text cannot form operators. Score is ts_rank_cd over
// the document, weighted title A, tags B and body C; it depends only on the
// article and the query.
func (s *Store) Search(ctx context.Context, q store.SearchQuery) (store.SearchResult, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultSearchLimit
	}
	limit = min(limit, maxSearchLimit)
	if q.TitleFirst && q.Cursor != "" {
		return store.SearchResult{}, fmt.Errorf("%w: a title-first search has one page: leave the cursor out", store.ErrBadCursor)
	}
	var cur *fulltext.Cursor
	if q.Cursor != "" {
		var err error
		if cur, err = fulltext.DecodeCursor(q.Cursor); err != nil {
			return store.SearchResult{}, err
		}
	}

	query := q.Query()
	key := fulltext.CursorKey(query, q.Filters)
	if strings.TrimSpace(q.Text) == "" {
		out, err := s.listNewest(ctx, q, cur, key, limit)
		if q.TitleFirst {
			out.Next = ""
		}
		return out, err
	}
	out := store.SearchResult{Hits: []store.SearchHit{}}
	if len(query.Terms) == 0 {
		// Nothing in the text can match a word of the index.
		if q.Facets {
			out.Facets = &store.Facets{Classes: []store.FacetCount{}, Collections: []store.FacetCount{}, Tags: []store.FacetCount{}}
		}
		return out, nil
	}

	anyTerm := q.Any
	if cur != nil {
		if err := fulltext.CheckCursor(cur, key, false); err != nil {
			return store.SearchResult{}, err
		}
		anyTerm = cur.Any
	}
	need := fulltext.Need(cur, limit)
	if q.TitleFirst {
		// One page, so no hits beyond it are needed for a cursor.
		need = limit
	}
	ranking, err := s.rankQuery(ctx, &query, anyTerm, q.TitleFirst, q.Filters, need)
	if err != nil {
		return store.SearchResult{}, err
	}
	if cur == nil && !anyTerm && len(ranking) == 0 && len(query.Terms) > 1 {
		// No article has every term, so any term may match.
		anyTerm = true
		if ranking, err = s.rankQuery(ctx, &query, true, q.TitleFirst, q.Filters, need); err != nil {
			return store.SearchResult{}, err
		}
	}

	page, next := fulltext.NextPage(ranking, cur, limit, key, anyTerm)
	if next != nil && !q.TitleFirst {
		out.Next = next.Encode()
	}
	out.AnyTerm = anyTerm && !q.Any
	if out.Hits, err = s.hitDetails(ctx, page, &query, q.NoSnippets); err != nil {
		return store.SearchResult{}, err
	}

	if q.Facets {
		var args queryArgs
		where := scopeFilter([]string{"a.document @@ to_tsquery(" + searchConfig + ", " + args.add(query.TSQuery(anyTerm)) + ")",
			"a.status <> 'archived'"}, &args, q.Filters...)
		if out.Facets, err = s.facets(ctx, where, args); err != nil {
			return store.SearchResult{}, err
		}
	}
	return out, nil
}

// rankQuery returns up to n matches of the query, best first and by id
// among equal scores. With titleFirst, it first ranks the matches in the
// title (weight A) and tags (weight B) alone. Only when fewer than n are
// found that way does it rank every match; see store.SearchQuery.TitleFirst.
func (s *Store) rankQuery(ctx context.Context, query *fulltext.Query, anyTerm, titleFirst bool, filters []knowledge.Scope, n int) ([]fulltext.Ranked, error) {
	if titleFirst {
		ranking, err := s.rank(ctx, query.TSQueryWeights(anyTerm, "AB"), filters, n)
		if err != nil || len(ranking) >= n {
			return ranking, err
		}
	}
	return s.rank(ctx, query.TSQuery(anyTerm), filters, n)
}

// rank returns up to n matches of a to_tsquery expression, best first and
// by id among equal scores.
func (s *Store) rank(ctx context.Context, expr string, filters []knowledge.Scope, n int) ([]fulltext.Ranked, error) {
	var args queryArgs
	query := "to_tsquery(" + searchConfig + ", " + args.add(expr) + ")"
	where := scopeFilter([]string{"a.document @@ q.query", "a.status <> 'archived'"}, &args, filters...)
	rows, err := s.pool.Query(ctx, `WITH q AS (SELECT `+query+` AS query)
		SELECT v.seq, v.article_id, ts_rank_cd(a.document, q.query)::float8 AS score
		FROM q, articles a JOIN article_versions v ON v.seq = a.current_seq
		WHERE `+strings.Join(where, " AND ")+`
		ORDER BY score DESC, v.article_id
		LIMIT `+args.add(n), args...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var out []fulltext.Ranked
	for rows.Next() {
		var r fulltext.Ranked
		if err := rows.Scan(&r.Seq, &r.ID, &r.Score); err != nil {
			return nil, mapError(err)
		}
		out = append(out, r)
	}
	return out, mapError(rows.Err())
}

// hitDetails reads the article versions of a page and returns its hits in
// page order. With a query, snippets are cut around its matches; without,
// they are the start of the body.
func (s *Store) hitDetails(ctx context.Context, page []fulltext.Ranked, query *fulltext.Query, noSnippets bool) ([]store.SearchHit, error) {
	hits := make([]store.SearchHit, 0, len(page))
	if len(page) == 0 {
		return hits, nil
	}
	body := "v.body"
	switch {
	case noSnippets:
		body = "''"
	case query == nil:
		body = fmt.Sprintf("left(v.body, %d)", listPrefix)
	}

	seqs := make([]int64, len(page))
	for i, r := range page {
		seqs[i] = r.Seq
	}
	rows, err := s.pool.Query(ctx, `SELECT v.seq, v.article_id, v.title, v.collection, v.class, v.tags,
		v.metadata, v.status, v.version, `+body+`
		FROM article_versions v WHERE v.seq = ANY ($1)`, seqs)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()

	bySeq := make(map[int64]store.SearchHit, len(page))
	for rows.Next() {
		var (
			h                   store.SearchHit
			seq                 int64
			class, status, text string
		)
		if err := rows.Scan(&seq, &h.ID, &h.Title, &h.Collection, &class, &h.Tags, &h.Metadata, &status, &h.Version, &text); err != nil {
			return nil, mapError(err)
		}
		h.Class = knowledge.Class(class)
		h.Status = knowledge.Status(status)
		if h.Tags == nil {
			h.Tags = []string{}
		}
		if h.Metadata == nil {
			h.Metadata = map[string]string{}
		}
		if !noSnippets {
			hl := fulltext.Snippet(query, h.Title, h.Tags, text)
			h.Snippet, h.SnippetHTML, h.Matched = hl.Text, hl.HTML, hl.Matched
		}
		bySeq[seq] = h
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}

	for _, r := range page {
		h, ok := bySeq[r.Seq]
		if !ok {
			// Versions are immutable and never deleted.
			return nil, fmt.Errorf("postgres: version row %d of article %q is missing", r.Seq, r.ID)
		}
		h.Score = r.Score
		hits = append(hits, h)
	}
	return hits, nil
}

// listNewest returns current, non-archived articles that match the
// filters, most recently updated first. Its pages continue by keyset on
// (updated_at, article_id): an article written between pages moves to the
// front, before the pages already read, so the others are neither
// repeated nor skipped.
func (s *Store) listNewest(ctx context.Context, q store.SearchQuery, cur *fulltext.Cursor, key uint64, limit int) (store.SearchResult, error) {
	var out store.SearchResult
	var err error
	if q.Facets {
		var args queryArgs
		where := scopeFilter([]string{"a.status <> 'archived'"}, &args, q.Filters...)
		if out.Facets, err = s.facets(ctx, where, args); err != nil {
			return out, err
		}
	}

	var args queryArgs
	where := scopeFilter([]string{"a.status <> 'archived'"}, &args, q.Filters...)
	if cur != nil {
		if err := fulltext.CheckCursor(cur, key, true); err != nil {
			return store.SearchResult{}, err
		}
		at := args.add(time.Unix(0, cur.Updated).UTC())
		where = append(where, "(v.updated_at < "+at+" OR v.updated_at = "+at+" AND v.article_id > "+args.add(cur.ID)+")")
	}
	rows, err := s.pool.Query(ctx, `SELECT v.seq, v.article_id, v.updated_at
		FROM articles a JOIN article_versions v ON v.seq = a.current_seq
		WHERE `+strings.Join(where, " AND ")+`
		ORDER BY v.updated_at DESC, v.article_id LIMIT `+args.add(limit+1), args...)
	if err != nil {
		return out, mapError(err)
	}
	var page []fulltext.Ranked
	var updated []time.Time
	for rows.Next() {
		var r fulltext.Ranked
		var at time.Time
		if err := rows.Scan(&r.Seq, &r.ID, &at); err != nil {
			rows.Close()
			return out, mapError(err)
		}
		page = append(page, r)
		updated = append(updated, at)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, mapError(err)
	}

	if len(page) > limit {
		page = page[:limit]
		next := fulltext.Cursor{Key: key, List: true, Updated: updated[limit-1].UnixNano(), ID: page[limit-1].ID}
		out.Next = next.Encode()
	}
	out.Hits, err = s.hitDetails(ctx, page, nil, q.NoSnippets)
	return out, err
}

// facets counts the articles that a query matches by class, collection and
// tag. where and args select the matches from articles a joined with their
// current versions v.
func (s *Store) facets(ctx context.Context, where []string, args queryArgs) (*store.Facets, error) {
	rows, err := s.pool.Query(ctx, `WITH m AS MATERIALIZED (
			SELECT v.class, v.collection, v.tags
			FROM articles a JOIN article_versions v ON v.seq = a.current_seq
			WHERE `+strings.Join(where, " AND ")+`
		)
		SELECT 'class', class, count(*) FROM m GROUP BY class
		UNION ALL SELECT 'collection', collection, count(*) FROM m GROUP BY collection
		UNION ALL SELECT 'tag', t, count(*) FROM m, unnest(m.tags) t GROUP BY t`, args...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	f := &store.Facets{Classes: []store.FacetCount{}, Collections: []store.FacetCount{}, Tags: []store.FacetCount{}}
	for rows.Next() {
		var kind string
		var c store.FacetCount
		if err := rows.Scan(&kind, &c.Value, &c.Count); err != nil {
			return nil, mapError(err)
		}
		switch kind {
		case "class":
			f.Classes = append(f.Classes, c)
		case "collection":
			f.Collections = append(f.Collections, c)
		default:
			f.Tags = append(f.Tags, c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}
	f.Sort()
	return f, nil
}
