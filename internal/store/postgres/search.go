package postgres

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// Search result sizes.
const (
	defaultSearchLimit = 20
	maxSearchLimit     = 100
	snippetWords       = 16
)

// snippetOpen and snippetClose mark matches in ts_headline output. They are
// private-use characters, which article text practically never contains, so
// a body headline without them means that the body did not match. They are
// replaced by '[' and ']' afterwards.
const (
	snippetOpen  = "\uE000"
	snippetClose = "\uE001"
)

// headlineOptions are the ts_headline options: at most snippetWords words
// around the best match.
var headlineOptions = fmt.Sprintf("StartSel=%s, StopSel=%s, MaxWords=%d, MinWords=%d",
	snippetOpen, snippetClose, snippetWords, snippetWords/2)

// Search implements store.Store. Every term of q.Text is quoted for
// websearch_to_tsquery, which the PostgreSQL manual documents as never
// raising syntax errors, so "or", '-' and quotes in the input are searched
// for as text. All terms must match. When that finds nothing and there were
// several terms, any term may match. Score is ts_rank_cd over the document,
// weighted title A, tags B and body C.
func (s *Store) Search(ctx context.Context, q store.SearchQuery) ([]store.SearchHit, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultSearchLimit
	}
	limit = min(limit, maxSearchLimit)

	if strings.TrimSpace(q.Text) == "" {
		return s.listNewest(ctx, q.Filters, limit)
	}
	terms := quoteTerms(q.Text)
	if len(terms) == 0 {
		// Nothing in the text can match a word of the index.
		return []store.SearchHit{}, nil
	}
	hits, err := s.match(ctx, strings.Join(terms, " "), q.Filters, limit)
	if err != nil || len(hits) > 0 || len(terms) == 1 {
		return hits, err
	}
	// An unquoted "or" is websearch_to_tsquery's OR operator.
	return s.match(ctx, strings.Join(terms, " or "), q.Filters, limit)
}

// quoteTerms splits text at white space and returns each term in double
// quotes, with the double quotes it contained removed, so that
// websearch_to_tsquery reads it as words and never as an operator. Terms
// without a letter, digit or mark are dropped, because the text search
// parser turns them into no word at all.
func quoteTerms(text string) []string {
	var out []string
	for _, t := range strings.Fields(text) {
		t = strings.ReplaceAll(t, `"`, " ")
		if !strings.ContainsFunc(t, func(r rune) bool {
			return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)
		}) {
			continue
		}
		out = append(out, `"`+t+`"`)
	}
	return out
}

// match runs one websearch_to_tsquery expression. The inner query ranks and
// limits; ts_headline, which parses the whole text, runs only on the rows
// that are returned.
func (s *Store) match(ctx context.Context, expr string, filters []knowledge.Scope, limit int) ([]store.SearchHit, error) {
	var args queryArgs
	query := "websearch_to_tsquery(" + searchConfig + ", " + args.add(expr) + ")"
	where := scopeFilter([]string{"a.document @@ q.query", "a.status <> 'archived'"}, &args, filters...)
	sql := `WITH q AS (SELECT ` + query + ` AS query),
		ranked AS (
			SELECT v.seq, ts_rank_cd(a.document, q.query)::float8 AS score, v.updated_at, v.article_id
			FROM q, articles a JOIN article_versions v ON v.seq = a.current_seq
			WHERE ` + strings.Join(where, " AND ") + `
			ORDER BY score DESC, v.updated_at DESC, v.article_id
			LIMIT ` + args.add(limit) + `
		)
		SELECT v.article_id, v.title, v.class, v.status, v.version, r.score,
			ts_headline(` + searchConfig + `, v.body, q.query, ` + args.add(headlineOptions) + `),
			ts_headline(` + searchConfig + `, v.title, q.query, ` + args.add(headlineOptions) + `)
		FROM q, ranked r JOIN article_versions v ON v.seq = r.seq
		ORDER BY r.score DESC, r.updated_at DESC, r.article_id`
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	hits := []store.SearchHit{}
	for rows.Next() {
		var (
			h                         store.SearchHit
			class, status             string
			bodySnippet, titleSnippet string
		)
		err := rows.Scan(&h.ID, &h.Title, &class, &status, &h.Version, &h.Score, &bodySnippet, &titleSnippet)
		if err != nil {
			return nil, mapError(err)
		}
		h.Class = knowledge.Class(class)
		h.Status = knowledge.Status(status)
		h.Snippet = bodySnippet
		if !strings.Contains(bodySnippet, snippetOpen) {
			// Only the title or the tags matched.
			h.Snippet = titleSnippet
		}
		h.Snippet = strings.NewReplacer(snippetOpen, "[", snippetClose, "]").Replace(h.Snippet)
		hits = append(hits, h)
	}
	return hits, mapError(rows.Err())
}

// listNewest returns current, non-archived articles that match the filters,
// most recently updated first, with the start of the body as the snippet.
func (s *Store) listNewest(ctx context.Context, filters []knowledge.Scope, limit int) ([]store.SearchHit, error) {
	var args queryArgs
	where := scopeFilter([]string{"a.status <> 'archived'"}, &args, filters...)
	// The snippet needs at most snippetWords words, so a prefix of the body
	// is enough; 1000 characters hold 16 words of any sensible length.
	sql := `SELECT v.article_id, v.title, v.class, v.status, v.version, left(v.body, 1000)
		FROM articles a JOIN article_versions v ON v.seq = a.current_seq
		WHERE ` + strings.Join(where, " AND ") + `
		ORDER BY v.updated_at DESC, v.article_id LIMIT ` + args.add(limit)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	hits := []store.SearchHit{}
	for rows.Next() {
		var (
			h             store.SearchHit
			class, status string
			body          string
		)
		if err := rows.Scan(&h.ID, &h.Title, &class, &status, &h.Version, &body); err != nil {
			return nil, mapError(err)
		}
		h.Class = knowledge.Class(class)
		h.Status = knowledge.Status(status)
		h.Snippet = leadingWords(body, snippetWords)
		hits = append(hits, h)
	}
	return hits, mapError(rows.Err())
}

// leadingWords returns the first n words of s joined by single spaces, with
// "…" appended when s has more.
func leadingWords(s string, n int) string {
	words := strings.Fields(s)
	if len(words) <= n {
		return strings.Join(words, " ")
	}
	return strings.Join(words[:n], " ") + "…"
}
