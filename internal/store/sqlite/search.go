package sqlite

import (
	"context"
	"database/sql"
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
	snippetTokens      = 16
)

// bm25Rank is the rank function of article_fts, with weights for the
// columns title, tags and body: a match in the title counts most, then
// tags, then the body.
const bm25Rank = "bm25(10.0, 5.0, 1.0)"

// snippetOpen and snippetClose mark matches in snippet() output. They are
// private-use characters, which article text practically never contains, so
// a body snippet without them means that the body did not match. They are
// replaced by '[' and ']' afterwards.
const (
	snippetOpen  = "\uE000"
	snippetClose = "\uE001"
)

// Column numbers of article_fts.
const (
	titleColumn = 0
	bodyColumn  = 2
)

// snippetSQL returns the snippet() call for one article_fts column.
func snippetSQL(column int) string {
	return fmt.Sprintf("snippet(article_fts, %d, '%s', '%s', '…', %d)", column, snippetOpen, snippetClose, snippetTokens)
}

// Search implements store.Store. Every term of q.Text is quoted as an FTS5
// string, so operators, column filters and quotes in the input are searched
// for as text. All terms must match. When that finds nothing and there were
// several terms, any term may match.
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
		// Nothing in the text can match a token of the index.
		return []store.SearchHit{}, nil
	}
	hits, err := s.match(ctx, strings.Join(terms, " AND "), q.Filters, limit)
	if err != nil || len(hits) > 0 || len(terms) == 1 {
		return hits, err
	}
	return s.match(ctx, strings.Join(terms, " OR "), q.Filters, limit)
}

// quoteTerms splits text at white space and returns each term as an FTS5
// string literal. Terms without a letter, digit or mark are dropped, because
// the unicode61 tokenizer turns them into no token at all.
//
// NOTE: unicode61 splits text only at separators, so in scripts written
// without spaces, such as Chinese, Japanese or Thai, a term matches only a
// whole run of text between separators.
func quoteTerms(text string) []string {
	var out []string
	for _, t := range strings.Fields(text) {
		if !strings.ContainsFunc(t, func(r rune) bool {
			return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)
		}) {
			continue
		}
		out = append(out, `"`+strings.ReplaceAll(t, `"`, `""`)+`"`)
	}
	return out
}

// match runs one FTS5 query expression and returns the best hits first.
func (s *Store) match(ctx context.Context, expr string, filters []knowledge.Scope, limit int) ([]store.SearchHit, error) {
	where, args := scopeFilter([]string{"article_fts MATCH ?", "rank MATCH ?"}, []any{expr, bm25Rank}, filters...)
	args = append(args, limit)

	// ORDER BY rank lets FTS5 return rows best first, so SQLite stops after
	// limit rows and computes snippet() only for them. ORDER BY bm25() would
	// compute it for every match before sorting. CROSS JOIN keeps
	// article_fts the outer loop, which that needs.
	query := `SELECT v.article_id, v.title, v.class, v.status, v.version, ` +
		snippetSQL(bodyColumn) + `, ` + snippetSQL(titleColumn) + `, rank
		FROM article_fts CROSS JOIN article_versions v ON v.seq = article_fts.rowid
		WHERE ` + strings.Join(where, " AND ") + `
		ORDER BY rank LIMIT ?`
	rows, err := s.reader.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()

	hits := []store.SearchHit{}
	for rows.Next() {
		h, err := scanMatch(rows)
		if err != nil {
			return nil, err
		}
		hits = append(hits, h)
	}
	return hits, mapError(rows.Err())
}

var snippetMarkers = strings.NewReplacer(snippetOpen, "[", snippetClose, "]")

func scanMatch(rows *sql.Rows) (store.SearchHit, error) {
	var (
		h                         store.SearchHit
		class, status             string
		bodySnippet, titleSnippet string
		rank                      float64
	)
	err := rows.Scan(&h.ID, &h.Title, &class, &status, &h.Version, &bodySnippet, &titleSnippet, &rank)
	if err != nil {
		return h, mapError(err)
	}
	h.Class = knowledge.Class(class)
	h.Status = knowledge.Status(status)
	// bm25() is lower for better matches.
	h.Score = -rank

	h.Snippet = bodySnippet
	if !strings.Contains(bodySnippet, snippetOpen) {
		// Only the title or the tags matched.
		h.Snippet = titleSnippet
	}
	h.Snippet = snippetMarkers.Replace(h.Snippet)
	return h, nil
}

// listNewest returns current, non-archived articles that match the filters,
// most recently updated first, with the start of the body as the snippet.
func (s *Store) listNewest(ctx context.Context, filters []knowledge.Scope, limit int) ([]store.SearchHit, error) {
	where, args := scopeFilter([]string{"a.status <> 'archived'"}, nil, filters...)
	args = append(args, limit)
	// The snippet needs at most snippetTokens words, so a prefix of the body
	// is enough. 1000 characters hold 16 words of any sensible length.
	query := `SELECT v.article_id, v.title, v.class, v.status, v.version, substr(v.body, 1, 1000)
		FROM articles a JOIN article_versions v ON v.seq = a.current_seq
		WHERE ` + strings.Join(where, " AND ") + `
		ORDER BY v.updated_at DESC, v.article_id LIMIT ?`
	rows, err := s.reader.QueryContext(ctx, query, args...)
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
		h.Snippet = leadingWords(body, snippetTokens)
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
