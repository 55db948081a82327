package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/fulltext"
	"github.com/khub-dev/khub/internal/store/textindex"
)

// Search result sizes.
const (
	defaultSearchLimit = 20
	maxSearchLimit     = 100
)

// bm25Rank is the rank function of article_fts, with weights for the
// columns title, tags and body: a match in the title counts most, then
// tags, then the body.
const bm25Rank = "bm25(10.0, 5.0, 1.0)"

// listPrefix is how much of a body a listing without search text reads for
// its snippet, in bytes: fulltext.SnippetWords words of any sensible
// length fit.
const listPrefix = 1000

// reindexBatch is the number of articles that rebuildSearchIndex reads at
// a time.
const reindexBatch = 500

// rebuildSearchIndex fills article_fts and article_search from the current
// versions when the analyzer that built them, recorded in search_index, is
// not fulltext.AnalyzerVersion: after migration 00005 created the tables,
// and whenever the analyzer's rules change. It runs in one write
// transaction, so a crash leaves the old index and the old version, and the
// next Open rebuilds again.
func rebuildSearchIndex(ctx context.Context, db *sql.DB) error {
	sqlTx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return mapError(err)
	}
	defer sqlTx.Rollback()
	// Unprepared: the rebuild runs once, before the store's pools exist.
	tx := &txn{Tx: sqlTx}
	var version int
	if err := tx.QueryRowContext(ctx, `SELECT analyzer FROM search_index`).Scan(&version); err != nil {
		return fmt.Errorf("sqlite: read the search index version: %w", err)
	}
	if version == fulltext.AnalyzerVersion {
		return nil
	}
	for _, stmt := range []string{`DELETE FROM article_fts`, `DELETE FROM article_search`,
		`DELETE FROM article_search_tags`, `DELETE FROM article_search_metadata`} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("sqlite: clear the search index: %w", err)
		}
	}
	last := int64(-1)
	for {
		rows, err := tx.QueryContext(ctx, `SELECT `+versionColumns+`, v.seq
			FROM articles a JOIN article_versions v ON v.seq = a.current_seq
			WHERE a.status <> 'archived' AND v.seq > ? ORDER BY v.seq LIMIT ?`, last, reindexBatch)
		if err != nil {
			return mapError(err)
		}
		type row struct {
			a   knowledge.Article
			seq int64
		}
		var batch []row
		for rows.Next() {
			var r row
			if r.a, err = scanVersion(rows, &r.seq); err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return mapError(err)
		}
		for _, r := range batch {
			if err := indexVersion(ctx, tx, &r.a, r.seq); err != nil {
				return fmt.Errorf("sqlite: rebuild the search index at article %q: %w", r.a.ID, err)
			}
			last = r.seq
		}
		if len(batch) < reindexBatch {
			break
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE search_index SET analyzer = ?`, fulltext.AnalyzerVersion); err != nil {
		return mapError(err)
	}
	return mapError(tx.Commit())
}

// indexVersion adds one article version to article_fts, as analyzed text,
// and to article_search with its tags and metadata.
func indexVersion(ctx context.Context, tx *txn, a *knowledge.Article, seq int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO article_fts (rowid, title, tags, body) VALUES (?, ?, ?, ?)`,
		seq, fulltext.IndexText(a.Title), fulltext.IndexText(strings.Join(a.Tags, " ")), fulltext.IndexText(a.Body))
	if err != nil {
		return err
	}
	tags, err := encodeJSON(a.Tags)
	if err != nil {
		return err
	}
	metadata, err := encodeJSON(a.Metadata)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO article_search
		(seq, article_id, version, title, collection, class, tags, metadata, status, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		seq, a.ID, a.Version, a.Title, a.Collection, string(a.Class), tags, metadata, string(a.Status), formatTime(a.UpdatedAt))
	if err != nil {
		return err
	}
	for _, t := range a.Tags {
		if _, err := tx.ExecContext(ctx, `INSERT INTO article_search_tags (seq, tag) VALUES (?, ?)`, seq, t); err != nil {
			return err
		}
	}
	for k, v := range a.Metadata {
		if _, err := tx.ExecContext(ctx, `INSERT INTO article_search_metadata (seq, key, value) VALUES (?, ?, ?)`, seq, k, v); err != nil {
			return err
		}
	}
	return nil
}

// updateSearchIndex replaces the article's rows in article_fts,
// article_search and its tag and metadata tables: the old version's rows go, and the new one is added
// unless it is archived. article_fts is contentless with
// contentless_delete, so the delete needs only the rowid.
func updateSearchIndex(ctx context.Context, tx *txn, prev *currentVersion, next *knowledge.Article, seq int64) error {
	u := textUpdate{seq: seq, next: next}
	if prev != nil && prev.article.Status != knowledge.StatusArchived {
		u.prevSeq, u.prev = prev.seq, &prev.article
	}
	tx.updates = append(tx.updates, u)
	if prev != nil && prev.article.Status != knowledge.StatusArchived {
		if _, err := tx.ExecContext(ctx, `DELETE FROM article_fts WHERE rowid = ?`, prev.seq); err != nil {
			return fmt.Errorf("sqlite: remove article %q version %d from the search index: %w", prev.article.ID, prev.article.Version, err)
		}
		for _, table := range []string{"article_search", "article_search_tags", "article_search_metadata"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE seq = ?`, prev.seq); err != nil {
				return fmt.Errorf("sqlite: remove article %q version %d from the search index: %w", prev.article.ID, prev.article.Version, err)
			}
		}
	}
	if next.Status != knowledge.StatusArchived {
		if err := indexVersion(ctx, tx, next, seq); err != nil {
			return fmt.Errorf("sqlite: index article %q version %d: %w", next.ID, next.Version, err)
		}
	}
	return nil
}

// Search implements store.Store. The text is parsed by package fulltext,
// which writes each term as an FTS5 string, so operators, column filters
// and quotes in the input are searched as text. All reads of one page run
// in one read transaction, so the ranking, the hits and the facets come
// from one snapshot.
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
	var out store.SearchResult
	if ix := s.textIndexReady(); ix != nil && strings.TrimSpace(q.Text) != "" {
		out, err := s.searchIndexed(ctx, ix, q, &query, cur, key, limit)
		if q.TitleFirst {
			out.Next = ""
		}
		return out, err
	}
	if ix := s.textIndexReady(); ix != nil && strings.TrimSpace(q.Text) == "" && cur == nil && ix.Excludes(q.Filters) {
		// No current article has a tag or metadata pair that the filters
		// require. Lookups list by attributes that often match none, and
		// in SQLite a listing by a missing tag scans the articles.
		out.Hits = []store.SearchHit{}
		if q.Facets {
			out.Facets = noFacets()
		}
		return out, nil
	}
	err := s.read(ctx, func(tx *txn) error {
		var err error
		if strings.TrimSpace(q.Text) == "" {
			out, err = listNewest(ctx, tx, q, cur, key, limit)
		} else {
			out, err = searchText(ctx, tx, q, &query, cur, key, limit)
		}
		return err
	})
	if err != nil {
		return store.SearchResult{}, err
	}
	if q.TitleFirst {
		out.Next = ""
	}
	if ix := s.textIndexReady(); ix != nil {
		for i := range out.Hits {
			h := &out.Hits[i]
			h.MetadataFolds, _ = ix.MetadataFolds(h.ID, h.Version)
		}
	}
	return out, nil
}

// noFacets returns the facets of a search that matches nothing.
func noFacets() *store.Facets {
	return &store.Facets{Classes: []store.FacetCount{}, Collections: []store.FacetCount{}, Tags: []store.FacetCount{}}
}

// searchText runs a search with text; see Search.
func searchText(ctx context.Context, tx *txn, q store.SearchQuery, query *fulltext.Query, cur *fulltext.Cursor, key uint64, limit int) (store.SearchResult, error) {
	out := store.SearchResult{Hits: []store.SearchHit{}}
	if len(query.Terms) == 0 {
		// Nothing in the text can match a token of the index.
		if q.Facets {
			out.Facets = noFacets()
		}
		return out, nil
	}

	anyTerm := q.Any
	if cur != nil {
		if err := fulltext.CheckCursor(cur, key, false); err != nil {
			return out, err
		}
		anyTerm = cur.Any
	}
	need := fulltext.Need(cur, limit)
	if q.TitleFirst {
		// One page, so no hits beyond it are needed for a cursor.
		need = limit
	}
	ranking, err := rankQuery(ctx, tx, query, anyTerm, q.TitleFirst, q.Filters, need)
	if err != nil {
		return out, err
	}
	if cur == nil && !anyTerm && len(ranking) == 0 && len(query.Terms) > 1 {
		// No article has every term, so any term may match.
		anyTerm = true
		if ranking, err = rankQuery(ctx, tx, query, true, q.TitleFirst, q.Filters, need); err != nil {
			return out, err
		}
	}

	page, next := fulltext.NextPage(ranking, cur, limit, key, anyTerm)
	if next != nil {
		out.Next = next.Encode()
	}
	out.AnyTerm = anyTerm && !q.Any
	if out.Hits, err = hitDetails(ctx, tx, page, query, q.NoSnippets); err != nil {
		return out, err
	}

	if q.Facets {
		where, args := searchFilter([]string{"article_fts MATCH ?"}, []any{query.FTS5(anyTerm)}, q.Filters...)
		if out.Facets, err = facets(ctx, tx, `article_fts CROSS JOIN article_search v ON v.seq = article_fts.rowid`, where, args); err != nil {
			return out, err
		}
	}
	return out, nil
}

// searchIndexed is searchText on the in-memory text index: the index
// ranks, counts the facets and gives the hits' fields, and the store
// reads only the bodies of a page's hits, for their snippets. A body is
// read by version, and versions never change, so a write between the
// ranking and the read changes nothing the page shows.
func (s *Store) searchIndexed(ctx context.Context, ix *textindex.Index, q store.SearchQuery, query *fulltext.Query, cur *fulltext.Cursor, key uint64, limit int) (store.SearchResult, error) {
	out := store.SearchResult{Hits: []store.SearchHit{}}
	if len(query.Terms) == 0 {
		if q.Facets {
			out.Facets = noFacets()
		}
		return out, nil
	}
	iq := textindex.Query{Terms: query.Terms, Any: q.Any, Filters: q.Filters}
	if cur != nil {
		if err := fulltext.CheckCursor(cur, key, false); err != nil {
			return out, err
		}
		iq.Any = cur.Any
	}
	need := fulltext.Need(cur, limit)
	if q.TitleFirst {
		need = limit
	}
	// The ranking and the facets read one state of the index, as the
	// FTS5 path reads one snapshot of the database.
	var hits []textindex.Hit
	var facets *facetCounter
	ix.Read(func(snap textindex.Snapshot) {
		hits = rankIndexed(snap, iq, q.TitleFirst, need)
		if cur == nil && !iq.Any && len(hits) == 0 && len(query.Terms) > 1 {
			// No article has every term, so any term may match.
			iq.Any = true
			hits = rankIndexed(snap, iq, q.TitleFirst, need)
		}
		if q.Facets {
			facets = &facetCounter{}
			snap.Each(iq, facets.add)
		}
	})

	ranking := make([]fulltext.Ranked, len(hits))
	bySeq := make(map[int64]*textindex.Hit, len(hits))
	for i := range hits {
		ranking[i] = hits[i].Ranked
		bySeq[hits[i].Seq] = &hits[i]
	}
	page, next := fulltext.NextPage(ranking, cur, limit, key, iq.Any)
	if next != nil {
		out.Next = next.Encode()
	}
	out.AnyTerm = iq.Any && !q.Any
	out.Hits = make([]store.SearchHit, 0, len(page))
	var bodies map[int64]string
	var hints []*fulltext.Hint
	if !q.NoSnippets && len(page) > 0 {
		var err error
		if bodies, err = s.readBodies(ctx, page); err != nil {
			return out, err
		}
		seqs := make([]int64, len(page))
		for i, r := range page {
			seqs[i] = r.Seq
		}
		hints = ix.Hints(seqs, query.Terms)
	}
	for i, r := range page {
		hit := bySeq[r.Seq]
		a := hit.Article
		// The index's own tags and metadata, which it never changes; see
		// store.SearchHit.
		h := store.SearchHit{ID: a.ID, Title: a.Title, Collection: a.Collection, Class: a.Class,
			Tags: a.Tags, Metadata: a.Metadata, Status: a.Status, Version: a.Version, Score: r.Score,
			MetadataFolds: hit.MetadataFolds}
		if h.Tags == nil {
			h.Tags = []string{}
		}
		if h.Metadata == nil {
			h.Metadata = map[string]string{}
		}
		if !q.NoSnippets {
			// The index records where the terms occur, so only the words
			// around the snippet are tokenized.
			hl := query.HighlightHint(h.Title, h.Tags, bodies[r.Seq], hints[i])
			h.Snippet, h.SnippetHTML, h.Matched = hl.Text, hl.HTML, hl.Matched
		}
		out.Hits = append(out.Hits, h)
	}

	if facets != nil {
		out.Facets = facets.facets()
	}
	return out, nil
}

// HighlightHits cuts the snippets of search hits for q as a search cuts
// them, or returns each body's first words when q has no terms. It cuts
// one only for a hit that is the current version in the text index, from
// the index's positions and the body cache, and reports which: for the
// others the caller reads the article. Lookups call it for their hits.
func (s *Store) HighlightHits(ctx context.Context, hits []*store.SearchHit, q *fulltext.Query) ([]fulltext.Highlight, []bool, error) {
	out := make([]fulltext.Highlight, len(hits))
	cut := make([]bool, len(hits))
	ix := s.textIndexReady()
	if ix == nil {
		return out, cut, nil
	}
	page := make([]fulltext.Ranked, 0, len(hits))
	at := make([]int, 0, len(hits)) // index in hits of each page entry
	for i, h := range hits {
		if seq, version, ok := ix.Seq(h.ID); ok && version == h.Version {
			page = append(page, fulltext.Ranked{Seq: seq, ID: h.ID})
			at = append(at, i)
		}
	}
	if len(page) == 0 {
		return out, cut, nil
	}
	bodies, err := s.readBodies(ctx, page)
	if err != nil {
		return nil, nil, err
	}
	var hints []*fulltext.Hint
	if len(q.Terms) > 0 {
		seqs := make([]int64, len(page))
		for k, r := range page {
			seqs[k] = r.Seq
		}
		hints = ix.Hints(seqs, q.Terms)
	}
	for k, r := range page {
		body, ok := bodies[r.Seq]
		if !ok {
			continue
		}
		h := hits[at[k]]
		if hints == nil {
			out[at[k]] = fulltext.Leading(body, fulltext.SnippetWords)
		} else {
			out[at[k]] = q.HighlightHint(h.Title, h.Tags, body, hints[k])
		}
		cut[at[k]] = true
	}
	return out, cut, nil
}

// rankIndexed is rankQuery on the in-memory index. The index scores only
// the articles that can still enter the n best, so leaving out common
// terms, as rankQuery does for FTS5, gains nothing there.
func rankIndexed(snap textindex.Snapshot, q textindex.Query, titleFirst bool, n int) []textindex.Hit {
	if titleFirst {
		head := q
		head.Head = true
		if hits := snap.Rank(head, n); len(hits) >= n {
			return hits
		}
	}
	return snap.Rank(q, n)
}

// facetCounter counts articles by class, collection and tag.
type facetCounter struct {
	classes, collections, tags map[string]int64
}

func (f *facetCounter) add(a *knowledge.Article) {
	if f.classes == nil {
		f.classes, f.collections, f.tags = map[string]int64{}, map[string]int64{}, map[string]int64{}
	}
	f.classes[string(a.Class)]++
	f.collections[a.Collection]++
	for _, t := range a.Tags {
		f.tags[t]++
	}
}

func (f *facetCounter) facets() *store.Facets {
	list := func(m map[string]int64) []store.FacetCount {
		out := make([]store.FacetCount, 0, len(m))
		for v, n := range m {
			out = append(out, store.FacetCount{Value: v, Count: n})
		}
		return out
	}
	out := &store.Facets{Classes: list(f.classes), Collections: list(f.collections), Tags: list(f.tags)}
	out.Sort()
	return out
}

// searchFilter appends to where the SQL conditions that make an
// article_search row, aliased v, match every scope, as scopeFilter does for
// article_versions, and appends their values to args. Tags and metadata
// are tested through article_search_tags and article_search_metadata,
// whose indexes find the matching articles without parsing JSON.
func searchFilter(where []string, args []any, scopes ...knowledge.Scope) ([]string, []any) {
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
			where = append(where, "v.seq IN (SELECT t.seq FROM article_search_tags t WHERE t.tag IN ("+placeholders(len(sc.Tags))+"))")
			for _, t := range sc.Tags {
				args = append(args, t)
			}
		}
		for k, val := range sc.Metadata {
			where = append(where, "v.seq IN (SELECT m.seq FROM article_search_metadata m WHERE m.key = ? AND m.value = ?)")
			args = append(args, k, val)
		}
	}
	return where, args
}

// rankQuery returns up to n matches of the query, best first; see rank.
//
// With titleFirst, it first ranks the articles that contain a term in the
// title or tags, by the BM25 of those columns. Only when fewer than n have
// one does it rank every match; see store.SearchQuery.TitleFirst.
//
// With anyTerm it then leaves out the terms of one word, or a prefix of
// one word, that at least half of the articles contain. FTS5's bm25()
// gives such a term an inverse document frequency of 1e-6, because
// log((N - n + 0.5) / (n + 0.5)) is not positive for n >= N/2
// (fts5_aux.c), so the term moves no score by more than about a millionth.
// Leaving it out spares FTS5 scoring most articles, which is what makes an
// any-term search of common words slow. Articles that contain only such
// terms rank after all others, so when the shorter query finds fewer than
// n matches, the whole query runs instead.
func rankQuery(ctx context.Context, tx *txn, query *fulltext.Query, anyTerm, titleFirst bool, filters []knowledge.Scope, n int) ([]fulltext.Ranked, error) {
	full := query.FTS5(anyTerm)
	if titleFirst {
		// FTS5 scores a column filter by the instances in those columns
		// only, and reads the position lists of the other rows just to
		// reject them, which costs far less than scoring them.
		ranking, err := rank(ctx, tx, "{title tags} : ("+full+")", filters, n)
		if err != nil || len(ranking) >= n {
			return ranking, err
		}
	}
	if !anyTerm || len(query.Terms) < 2 {
		return rank(ctx, tx, full, filters, n)
	}
	rare, err := withoutCommonTerms(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	if len(rare.Terms) == len(query.Terms) {
		return rank(ctx, tx, full, filters, n)
	}
	ranking, err := rank(ctx, tx, rare.FTS5(true), filters, n)
	if err != nil || len(ranking) >= n {
		return ranking, err
	}
	return rank(ctx, tx, full, filters, n)
}

// withoutCommonTerms returns the query without the terms of one word, or a
// prefix of one word, that at least half of the articles contain, or the
// query unchanged when every term is that common. A prefix counts as that
// common when one word that starts with it is, which is a lower bound of
// the articles that the prefix matches.
func withoutCommonTerms(ctx context.Context, tx *txn, query *fulltext.Query) (*fulltext.Query, error) {
	var articles int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM article_search`).Scan(&articles); err != nil {
		return nil, mapError(err)
	}
	rare := &fulltext.Query{}
	for _, t := range query.Terms {
		if len(t.Tokens) != 1 {
			rare.Terms = append(rare.Terms, t)
			continue
		}
		// U+10FFFF is the last code point, so the range holds every word
		// that starts with the prefix.
		stmt, args := `SELECT doc FROM article_fts_vocab WHERE term = ?`, []any{t.Tokens[0]}
		if t.Prefix {
			stmt, args = `SELECT max(doc) FROM article_fts_vocab WHERE term >= ? AND term < ?`, []any{t.Tokens[0], t.Tokens[0] + "\U0010FFFF"}
		}
		var docs sql.NullInt64
		err := tx.QueryRowContext(ctx, stmt, args...).Scan(&docs)
		if err != nil && err != sql.ErrNoRows {
			return nil, mapError(err)
		}
		if !docs.Valid || 2*docs.Int64 < articles {
			rare.Terms = append(rare.Terms, t)
		}
	}
	if len(rare.Terms) == 0 {
		return query, nil
	}
	return rare, nil
}

// rank returns up to n matches of an FTS5 expression, best first and by id
// among equal scores. ORDER BY rank alone lets FTS5 sort its matches by
// score itself, and SQLite then reads article_search only for the rows it
// returns or filters out, not for every match. When the row after the n-th
// ties with it, a second query reads every row that scores at least as
// well, so that the order by (score, id) is exact at the cut too.
func rank(ctx context.Context, tx *txn, expr string, filters []knowledge.Scope, n int) ([]fulltext.Ranked, error) {
	where, args := searchFilter([]string{"article_fts MATCH ?", "rank MATCH ?"}, []any{expr, bm25Rank}, filters...)
	// CROSS JOIN keeps article_fts the outer loop, so FTS5 drives the query
	// and the filters only test its matches.
	query := func(extra string) string {
		return `SELECT v.seq, v.article_id, rank
			FROM article_fts CROSS JOIN article_search v ON v.seq = article_fts.rowid
			WHERE ` + strings.Join(where, " AND ") + extra + `
			ORDER BY rank`
	}
	out, err := rankRows(ctx, tx, query("")+" LIMIT ?", append(slices.Clone(args), n+1))
	if err != nil {
		return nil, err
	}
	if len(out) > n && out[n].Score == out[n-1].Score {
		// bm25() is the negated score.
		out, err = rankRows(ctx, tx, query(" AND rank <= ?"), append(slices.Clone(args), -out[n-1].Score))
		if err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b fulltext.Ranked) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out[:min(n, len(out))], nil
}

func rankRows(ctx context.Context, tx *txn, query string, args []any) ([]fulltext.Ranked, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	var out []fulltext.Ranked
	for rows.Next() {
		var r fulltext.Ranked
		var rank float64
		if err := rows.Scan(&r.Seq, &r.ID, &rank); err != nil {
			return nil, mapError(err)
		}
		// bm25() is lower for better matches.
		r.Score = -rank
		out = append(out, r)
	}
	return out, mapError(rows.Err())
}

// hitColumns are the columns of article_search, aliased v, that scanHit
// reads, followed by the body for the snippet: none with noSnippets, the
// whole body for a query and its start for a listing.
func hitColumns(query *fulltext.Query, noSnippets bool) string {
	body := "(SELECT b.body FROM article_versions b WHERE b.seq = v.seq)"
	switch {
	case noSnippets:
		body = "''"
	case query == nil:
		body = fmt.Sprintf("(SELECT substr(b.body, 1, %d) FROM article_versions b WHERE b.seq = v.seq)", listPrefix)
	}
	return `v.seq, v.article_id, v.title, v.collection, v.class, v.tags, v.metadata, v.status, v.version, ` + body
}

// scanHit reads a row of hitColumns and then extra, and cuts the hit's
// snippet as hitColumns describes.
func scanHit(rows *sql.Rows, query *fulltext.Query, noSnippets bool, extra ...any) (int64, store.SearchHit, error) {
	var (
		h                               store.SearchHit
		seq                             int64
		class, status, tags, meta, text string
	)
	if err := rows.Scan(append([]any{&seq, &h.ID, &h.Title, &h.Collection, &class, &tags, &meta, &status, &h.Version, &text}, extra...)...); err != nil {
		return 0, h, mapError(err)
	}
	h.Class = knowledge.Class(class)
	h.Status = knowledge.Status(status)
	if err := json.Unmarshal([]byte(tags), &h.Tags); err != nil {
		return 0, h, fmt.Errorf("sqlite: article %q version %d: stored tags are invalid: %w", h.ID, h.Version, err)
	}
	if err := json.Unmarshal([]byte(meta), &h.Metadata); err != nil {
		return 0, h, fmt.Errorf("sqlite: article %q version %d: stored metadata is invalid: %w", h.ID, h.Version, err)
	}
	if !noSnippets {
		hl := fulltext.Snippet(query, h.Title, h.Tags, text)
		h.Snippet, h.SnippetHTML, h.Matched = hl.Text, hl.HTML, hl.Matched
	}
	return seq, h, nil
}

// hitDetails reads the hits of a page from article_search, and each body
// from article_versions for the snippet, and returns them in page order.
// With a query, snippets are cut around its matches; without, they are the
// start of the body.
func hitDetails(ctx context.Context, tx *txn, page []fulltext.Ranked, query *fulltext.Query, noSnippets bool) ([]store.SearchHit, error) {
	hits := make([]store.SearchHit, 0, len(page))
	if len(page) == 0 {
		return hits, nil
	}
	args := make([]any, len(page))
	for i, r := range page {
		args[i] = r.Seq
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+hitColumns(query, noSnippets)+`
		FROM article_search v WHERE v.seq IN (`+placeholders(len(page))+`)`, args...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	bySeq := make(map[int64]store.SearchHit, len(page))
	for rows.Next() {
		seq, h, err := scanHit(rows, query, noSnippets)
		if err != nil {
			return nil, err
		}
		bySeq[seq] = h
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err)
	}
	for _, r := range page {
		h, ok := bySeq[r.Seq]
		if !ok {
			// The ranking read the row in the same transaction.
			return nil, fmt.Errorf("sqlite: search row %d of article %q is missing", r.Seq, r.ID)
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
func listNewest(ctx context.Context, tx *txn, q store.SearchQuery, cur *fulltext.Cursor, key uint64, limit int) (store.SearchResult, error) {
	where, args := searchFilter([]string{"1"}, nil, q.Filters...)
	out := store.SearchResult{Hits: []store.SearchHit{}}
	var err error
	if q.Facets {
		if out.Facets, err = facets(ctx, tx, `article_search v`, where, args); err != nil {
			return out, err
		}
	}
	if cur != nil {
		if err := fulltext.CheckCursor(cur, key, true); err != nil {
			return store.SearchResult{}, err
		}
		at := formatTime(time.Unix(0, cur.Updated))
		where = append(where, "(v.updated_at < ? OR v.updated_at = ? AND v.article_id > ?)")
		args = append(args, at, at, cur.ID)
	}

	// One query reads the page and its hits.
	args = append(args, limit+1)
	rows, err := tx.QueryContext(ctx, `SELECT `+hitColumns(nil, q.NoSnippets)+`, v.updated_at FROM article_search v
		WHERE `+strings.Join(where, " AND ")+`
		ORDER BY v.updated_at DESC, v.article_id LIMIT ?`, args...)
	if err != nil {
		return out, mapError(err)
	}
	defer rows.Close()
	var last sql.NullString
	for rows.Next() {
		if len(out.Hits) == limit {
			// A row after the page: there is a next page.
			next := fulltext.Cursor{Key: key, List: true, ID: out.Hits[limit-1].ID}
			t, err := parseTime(last)
			if err != nil {
				return out, err
			}
			next.Updated = t.UnixNano()
			out.Next = next.Encode()
			break
		}
		_, h, err := scanHit(rows, nil, q.NoSnippets, &last)
		if err != nil {
			return out, err
		}
		out.Hits = append(out.Hits, h)
	}
	return out, mapError(rows.Err())
}

// facets counts the articles that a query matches by class, collection and
// tag. from names article_search as v, joined with what the query needs;
// where and args select the matches.
func facets(ctx context.Context, tx *txn, from string, where []string, args []any) (*store.Facets, error) {
	// The CTE is used three times, so SQLite computes it once.
	rows, err := tx.QueryContext(ctx, `WITH m AS MATERIALIZED (
			SELECT v.class, v.collection, v.tags FROM `+from+` WHERE `+strings.Join(where, " AND ")+`
		)
		SELECT 'class', class, count(*) FROM m GROUP BY class
		UNION ALL SELECT 'collection', collection, count(*) FROM m GROUP BY collection
		UNION ALL SELECT 'tag', t.value, count(*) FROM m, json_each(m.tags) t GROUP BY t.value`, args...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	f := noFacets()
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
