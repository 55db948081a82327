package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/fulltext"
)

// MaxQueryLen bounds the search text, in bytes.
const MaxQueryLen = 1000

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var filter knowledge.Scope
	for _, key := range queryKeys(q) {
		values := q[key]
		switch {
		case key == "q", key == "limit", key == "cursor", key == "facets":
			if len(values) > 1 {
				s.writeError(w, r, badRequest(key, "%s is given %d times: give it once", key, len(values)))
				return
			}
		case key == "class":
			for _, v := range values {
				filter.Classes = append(filter.Classes, knowledge.Class(v))
			}
		case key == "tag":
			filter.Tags = append(filter.Tags, values...)
		case key == "collection":
			filter.Collections = append(filter.Collections, values...)
		case metaParam(key):
			// meta[KEY] is OpenAPI's deepObject form of meta.KEY, which
			// generated clients send.
			name := strings.TrimPrefix(key, "meta.")
			if strings.HasPrefix(key, "meta[") {
				name = key[len("meta[") : len(key)-1]
			}
			if name == "" || len(values) > 1 {
				s.writeError(w, r, badRequest(key, "%s is invalid: give meta.KEY=VALUE once per key", key))
				return
			}
			if err := checkMetaKey(key, name); err != nil {
				s.writeError(w, r, err)
				return
			}
			if filter.Metadata == nil {
				filter.Metadata = map[string]string{}
			}
			if _, dup := filter.Metadata[name]; dup {
				s.writeError(w, r, badRequest(key, "the metadata key %q is given as both meta.%s and meta[%s]: give it once", name, name, name))
				return
			}
			filter.Metadata[name] = values[0]
		default:
			s.writeError(w, r, badRequest(key, "unknown query parameter %q: use q, class, tag, collection, meta.KEY, limit, cursor or facets", key))
			return
		}
	}
	text := q.Get("q")
	if err := checkQueryText(text); err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, err := intParam(q, "limit", 20, 1, 100)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	facets, err := boolParam(q, "facets")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cursor := q.Get("cursor")
	if len(cursor) > maxCursorLen {
		s.writeError(w, r, badRequest("cursor", "cursor is %d bytes long, but cursors are at most %d: send the next value of the previous page unchanged", len(cursor), maxCursorLen))
		return
	}
	filter.Normalize()
	if err := filter.ValidateFields(searchFilterFields); err != nil {
		s.writeError(w, r, err)
		return
	}

	filters := append(principalFrom(r.Context()).scope(), filter)
	// The position must be read before the search, for the reason given
	// in the documentation of logPosition.
	position, err := s.logPosition(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// A cached result skips the full-text query and the read of the
	// review state, also for a revalidation; see resultcache.go.
	key := searchKey(r, position, text, filters, limit, cursor, facets)
	cached, err := s.results.do(r.Context(), kindSearch, key, position, func(ctx context.Context) (any, int64, error) {
		res, err := s.hub.Store.Search(ctx, store.SearchQuery{Text: text, Filters: filters, Limit: int(limit), Cursor: cursor, Facets: facets})
		if err != nil {
			return nil, 0, err
		}
		out := client.SearchResult{Hits: make([]client.SearchHit, len(res.Hits)), Next: res.Next, Facets: clientFacets(res.Facets), AnyTerm: res.AnyTerm}
		for i, h := range res.Hits {
			out.Hits[i] = clientSearchHit(&h)
		}
		return s.newSearchEntry(ctx, out)
	})
	if errors.Is(err, store.ErrBadCursor) {
		err = badRequest("cursor", "%v", err)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	entry := cached.(*searchEntry)
	now := s.now()
	out := entry.render(now)
	maxAge := capMaxAge(cacheMaxAge(r), entry.reviews, now)
	writeCached(w, r, resultETag(r, position, hitReviews(out.Hits)), time.Time{}, maxAge, searchResultJSON{&out})
}

// maxCursorLen bounds the cursor parameter of a search, in bytes. A cursor
// contains an article id of at most knowledge.MaxIDLen bytes and about 120
// bytes more, in base64.
const maxCursorLen = 1024

// clientSearchHit converts a store hit to its API form.
func clientSearchHit(h *store.SearchHit) client.SearchHit {
	return client.SearchHit{ID: h.ID, Title: h.Title, Collection: h.Collection, Class: string(h.Class), Tags: h.Tags,
		Status: string(h.Status), Version: h.Version, Snippet: h.Snippet, SnippetHTML: h.SnippetHTML, Matched: h.Matched, Score: h.Score}
}

// clientFacets converts store facets to their API form. Nil stays nil.
func clientFacets(f *store.Facets) *client.Facets {
	if f == nil {
		return nil
	}
	conv := func(in []store.FacetCount) []client.FacetCount {
		out := make([]client.FacetCount, len(in))
		for i, c := range in {
			out[i] = client.FacetCount{Value: c.Value, Count: c.Count}
		}
		return out
	}
	return &client.Facets{Classes: conv(f.Classes), Collections: conv(f.Collections), Tags: conv(f.Tags)}
}

// boolParam reads an optional query parameter whose value is true or
// false.
func boolParam(q url.Values, name string) (bool, error) {
	switch v := q.Get(name); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, badRequest(name, "%s %q is invalid: use true or false", name, v)
	}
}

// recordParam reads the record parameter of the change feed and the
// stream: whether a read moves the integration's pull cursor, true unless
// it is "false". A tool that reports what it applied with POST /v1/cursor
// reads with record=false, so that freshness counts only its reports.
func recordParam(q url.Values) (bool, error) {
	switch v := q.Get("record"); v {
	case "", "true":
		return true, nil
	case "false":
		return false, nil
	default:
		return false, badRequest("record", "record %q is invalid: use false to leave the pull cursor to POST /v1/cursor, or leave it out", v)
	}
}

// checkQueryText checks the q parameter of a search. Tabs and line breaks
// separate terms like spaces. Other control characters are rejected,
// because no index term contains them, PostgreSQL text cannot contain NUL
// and the SQLite FTS5 query parser rejects it.
func checkQueryText(text string) error {
	if len(text) > MaxQueryLen {
		return badRequest("q", "q is %d bytes long, but the maximum is %d: shorten the query", len(text), MaxQueryLen)
	}
	if !utf8.ValidString(text) {
		return badRequest("q", "q is not valid UTF-8 at byte %d: percent-encode the text as UTF-8", invalidUTF8At([]byte(text)))
	}
	if i := strings.IndexFunc(text, func(c rune) bool {
		return unicode.IsControl(c) && c != '\t' && c != '\n' && c != '\r'
	}); i >= 0 {
		c, _ := utf8.DecodeRuneInString(text[i:])
		return badRequest("q", "q contains the control character %U at byte %d: remove it from the search text", c, i)
	}
	// Words are runs of letters, digits and marks, so text without a
	// letter or digit rarely has one; only such text is parsed here.
	if strings.TrimSpace(text) != "" && !strings.ContainsFunc(text, isLetterOrDigit) && len(fulltext.Parse(text).Terms) == 0 {
		return badRequest("q", "q %.40q has no word that can be searched: symbols, punctuation and emoji are not indexed; search words of letters or digits, or leave q out to list the newest articles", text)
	}
	return nil
}

func isLetterOrDigit(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// checkMetaKey checks the KEY of a meta.KEY search parameter against the
// rules for metadata keys, so that a key no article can have is an error
// rather than a filter that matches nothing. The error names the parameter
// as sent.
func checkMetaKey(param, name string) error {
	switch {
	case len(name) > knowledge.MaxMetadataKey:
		return badRequest(param, "the key of %.60q… is %d bytes long, but metadata keys are at most %d bytes: shorten the key", param, len(name), knowledge.MaxMetadataKey)
	case !utf8.ValidString(name):
		return badRequest(param, "the key of %q is not valid UTF-8: percent-encode the key as UTF-8", param)
	case strings.ContainsFunc(name, unicode.IsControl):
		return badRequest(param, "the key of %q contains a control character, which metadata keys cannot contain: remove it", param)
	}
	return nil
}

// metaParam reports whether a query parameter is a metadata filter:
// meta.KEY or meta[KEY].
func metaParam(key string) bool {
	return strings.HasPrefix(key, "meta.") || strings.HasPrefix(key, "meta[") && strings.HasSuffix(key, "]")
}

// searchFilterFields name the query parameters of a search filter, so that
// an invalid value is reported under the parameter the caller sent.
var searchFilterFields = knowledge.ScopeFields{
	Collections:    "collection",
	Classes:        "class",
	Tags:           "tag",
	MetadataPrefix: "meta.",
}

// changes serves the change feed. With wait set, it holds the request open
// until a change in the caller's scope commits or the wait ends.
func (s *Server) changes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for _, key := range queryKeys(q) {
		values := q[key]
		if key != "after" && key != "limit" && key != "wait" && key != "record" {
			s.writeError(w, r, badRequest(key, "unknown query parameter %q: use after, limit, wait or record", key))
			return
		}
		if len(values) > 1 {
			s.writeError(w, r, badRequest(key, "%s is given %d times: give it once", key, len(values)))
			return
		}
	}
	after, err := intParam(q, "after", 0, 0, 1<<62)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, err := intParam(q, "limit", 100, 1, 1000)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	record, err := recordParam(q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// A cursor beyond the head would be saved as the caller's position and
	// make it skip every change up to that cursor once they commit.
	head, err := s.hub.Store.HeadCursor(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if after > head {
		s.writeError(w, r, badRequest("after", "after %d is beyond the newest change, cursor %d: pass the next value of an earlier response, or 0 to start from the beginning", after, head))
		return
	}
	// Retention may have removed entries the caller has not read, and
	// reading on would skip them without a sign.
	oldest, err := s.hub.Store.OldestCursor(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if oldest > after+1 {
		s.writeError(w, r, &apiError{Status: http.StatusGone, Code: "resync_required", Field: "after",
			Message: fmt.Sprintf("change-log entries %d to %d were removed by retention: reload the articles in scope with search or get, then read the feed with after=%d", after+1, oldest-1, oldest-1)})
		return
	}
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		wait, err = time.ParseDuration(v)
		if err != nil || wait < 0 {
			s.writeError(w, r, badRequest("wait", "wait %q is invalid: use a duration such as 30s, at most %s", v, s.cfg.MaxWait))
			return
		}
		if wait > s.cfg.MaxWait {
			s.writeError(w, r, badRequest("wait", "wait %s is longer than the maximum %s: send a shorter wait and poll again when it ends", wait, s.cfg.MaxWait))
			return
		}
	}

	if r.Method == http.MethodHead {
		// HEAD is safe: it neither waits nor moves the caller's cursor,
		// so a probe cannot mark a tool as caught up.
		wait, record = 0, false
	}
	p := principalFrom(r.Context())
	page, err := s.readChanges(w, r, after, int(limit), wait, p.scope())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	next := max(page.ScannedTo, after)
	if !p.admin && record {
		if err := s.hub.Store.RecordPull(r.Context(), p.integration.ID, next, time.Now().UTC()); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	// A page of the feed also records the reader's position, so a cached
	// copy would both go stale and hide the read from freshness.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(appendChangesPage(make([]byte, 0, 128+100*len(page.Changes)), page.Changes, next))
}

// readChanges reads the log and, when nothing in scope is new, waits for
// commits until the deadline. Entries outside the scope move the cursor on
// without ending the wait.
func (s *Server) readChanges(w http.ResponseWriter, r *http.Request, after int64, limit int, wait time.Duration, scope []knowledge.Scope) (store.ChangePage, error) {
	ctx := r.Context()
	deadline := time.Now().Add(wait)
	if wait > 0 {
		// The server's write timeout must not cut a long poll short.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + 10*time.Second))
	}
	scanned := after
	for {
		// Take the wake-up channel before reading, so that a commit between
		// the read and the wait is not missed.
		changed := s.hub.Wake.Changed()
		page, err := s.hub.Store.ReadChangeEntries(ctx, scanned, limit, scope...)
		if err != nil {
			return page, err
		}
		page.ScannedTo = max(page.ScannedTo, scanned)
		remaining := time.Until(deadline)
		if len(page.Changes) > 0 || remaining <= 0 {
			return page, nil
		}
		scanned = page.ScannedTo
		timer := time.NewTimer(remaining)
		select {
		case <-changed:
			timer.Stop()
		case <-timer.C:
		case <-s.streams.ctx.Done():
			// The hub is shutting down: end the poll as if its wait ran
			// out, so that http.Server.Shutdown need not wait for it.
			timer.Stop()
			return page, nil
		case <-ctx.Done():
			timer.Stop()
			return store.ChangePage{}, ctx.Err()
		}
	}
}

// appendChangesPage appends the JSON of a client.ChangesPage with the
// entries of changes and next, byte for byte what writeJSON writes for it.
// Pages hold up to 1000 entries. Encoding them with encoding/json, which
// reflects on each field and validates the output of each time's
// MarshalJSON, took a sixth of the handler's CPU time.
func appendChangesPage(b []byte, changes []knowledge.Change, next int64) []byte {
	b = append(b, `{"changes":[`...)
	for i := range changes {
		c := &changes[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"cursor":`...)
		b = strconv.AppendInt(b, c.Cursor, 10)
		b = append(b, `,"article_id":`...)
		b = appendJSONText(b, c.ArticleID)
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, c.Version, 10)
		b = append(b, `,"type":`...)
		b = appendJSONText(b, string(visibleType(c)))
		b = append(b, `,"time":`...)
		b = appendJSONTime(b, c.Time)
		b = append(b, '}')
	}
	b = append(b, `],"next":`...)
	b = strconv.AppendInt(b, next, 10)
	return append(b, "}\n"...)
}

// visibleType returns the type of a change for a reader of the scope it was
// read for: removed for a change that moved the article out of the scope,
// because its own type would reveal something of a version the reader may
// not read.
func visibleType(c *knowledge.Change) knowledge.ChangeType {
	if c.Left {
		return knowledge.ChangeRemoved
	}
	return c.Type
}

// queryKeys returns the keys of q in order, so that of several faulty
// parameters the same one is named every time.
func queryKeys(q url.Values) []string { return slices.Sorted(maps.Keys(q)) }

func intParam(q url.Values, name string, def, minValue, maxValue int64) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < minValue || n > maxValue {
		return 0, badRequest(name, "%s %q is invalid: use an integer from %d to %d", name, v, minValue, maxValue)
	}
	return n, nil
}
