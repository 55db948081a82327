package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/knowledge"
)

// HTTP caching of the read paths follows RFC 9110 (validators and
// conditional requests) and RFC 9111 (Cache-Control).
//
// Entity tags are strong, so two responses with one tag for one URL have
// identical bodies:
//
//   - An article version is immutable and its number is never reused,
//     because archiving writes a new version and nothing deletes one. So
//     GET /v1/articles/{id}/versions/{n} gets "vN" of its version, and
//     GET /v1/articles/{id} gets "vN" of the current version, or
//     "vN-overdue" once its review is due, because review_overdue in the
//     body changes then without a new version. The representation is the
//     same for every caller who may read it.
//   - A computed result, such as a search or a version list, gets
//     "r<position>-<digest>". The digest is the first 96 bits of SHA-256,
//     in base64url. It covers resultETagScheme, the caller (the admin, or
//     one integration and its scope), the position, the review state of
//     the result, and the request path with its query in canonical
//     order. The position is the head cursor of the change log for
//     results read from the store as a whole, and the article's current
//     version for a version list. Every commit appends one change-log
//     entry and cursors are allocated in commit order, so identical
//     requests at one log position get one tag, and any commit changes
//     it. A commit outside the caller's scope changes it too, which costs
//     a full response but never a wrong 304. The review state lists the
//     hits whose review is overdue, the only part of a search result that
//     changes without a commit. It is known only once the result is, so
//     revalidating a search needs the result, which the node's result
//     cache (resultcache.go) usually holds until the next commit.
//
// A pull token's responses may be reused by a private cache for
// pullMaxAge of the integration's freshness window, and a current article
// whose review falls due sooner only until then. The admin token's
// responses must be revalidated each time. Every cached response carries
// Vary: Authorization, because scope and Cache-Control depend on the
// token. Errors are no-store, which writeJSON sets for every status of
// 400 and above.

// resultETagScheme is hashed into every result tag. Change it when the
// JSON of a computed result changes for the same data, so that tags issued
// before the change stop matching.
const resultETagScheme = "2"

// maxPullMaxAge caps the max-age of pull responses.
const maxPullMaxAge = 5 * time.Minute

// pullMaxAge returns how long a private cache may serve a pull response
// without asking khub again, in whole seconds: half the freshness window,
// at most maxPullMaxAge. A cached copy served at that age is at most that
// stale, so the other half of the window remains for the tool's own poll
// interval, retries and clock skew. The cap bounds how long a deprecation
// or an archival stays hidden behind a cache under a long window, and it
// costs little because revalidation returns 304 without a body. A window
// under two seconds gives 0, which means no-cache.
func pullMaxAge(window time.Duration) time.Duration {
	return min(window/2, maxPullMaxAge).Truncate(time.Second)
}

// cacheMaxAge returns the max-age for the caller of r: 0, meaning
// revalidate every time, for the admin token, and pullMaxAge of the
// integration's freshness window for a pull token.
func cacheMaxAge(r *http.Request) time.Duration {
	p := principalFrom(r.Context())
	if p.admin || p.integration == nil {
		return 0
	}
	return pullMaxAge(p.integration.Freshness)
}

// cacheControl returns the Cache-Control value for a max-age: private,
// because the response depends on the token, and no-cache below one second.
func cacheControl(maxAge time.Duration) string {
	secs := int64(maxAge / time.Second)
	if secs <= 0 {
		return "private, no-cache"
	}
	return "private, max-age=" + strconv.FormatInt(secs, 10)
}

// callerKey names the caller of r in result tags: the admin, or the
// integration with its scope. Scopes cannot be changed today, and hashing
// the scope keeps tags correct if that changes.
func callerKey(r *http.Request) string {
	p := principalFrom(r.Context())
	if p.admin || p.integration == nil {
		return "admin"
	}
	// A Scope contains only strings, which always marshal, and
	// encoding/json writes map keys in sorted order.
	scope, _ := json.Marshal(p.integration.Scope)
	return "integration:" + p.integration.ID + ":" + string(scope)
}

// resultETag returns the strong entity tag of a result that r computed at
// position, with review state reviews, as described at the top of this
// file. The path and query come last in the hashed text, because they
// alone may contain any byte.
func resultETag(r *http.Request, position int64, reviews string) string {
	pos := strconv.FormatInt(position, 10)
	h := sha256.New()
	h.Write([]byte(resultETagScheme + "\x00" + callerKey(r) + "\x00" + pos + "\x00" + reviews + "\x00" + r.URL.Path + "?" + r.URL.Query().Encode()))
	digest := base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
	return `"r` + pos + "-" + digest + `"`
}

// logPosition returns the head cursor of the change log, the position of
// a result that r computes from the store. Read it before the result. A
// commit between the two reads then gives the newer result the older
// position's tag, and a later request reads the newer position and gets a
// different tag, so no client keeps a stale copy through a 304. Reading
// the head after the result would do the opposite.
//
// A store with an in-memory search index, as the SQLite store has, commits
// a change before its index holds it. Its HeadCursor then names the change
// while searches still miss it, and a result computed in that moment would
// be cached and tagged as if it held the change. Such a store reports a
// head that moves only once its index holds the change (knownHead).
func (s *Server) logPosition(r *http.Request) (int64, error) {
	if k, ok := s.hub.Store.(knownHead); ok {
		return k.KnownHead(), nil
	}
	return s.hub.Store.HeadCursor(r.Context())
}

// knownHead is a store whose searches read an index that it updates after
// each commit; see logPosition and sqlite.Store.KnownHead.
type knownHead interface {
	KnownHead() int64
}

// hitReviews returns the review state of search hits for resultETag: the
// indexes of the hits whose review is overdue, or "" when there are none.
func hitReviews(hits []client.SearchHit) string {
	var b strings.Builder
	for i, h := range hits {
		if h.ReviewOverdue {
			b.WriteString(strconv.Itoa(i))
			b.WriteByte(',')
		}
	}
	return b.String()
}

// overdueETagSuffix marks the tag of an article's current version once its
// review is due.
const overdueETagSuffix = "-overdue"

// articleETag returns the strong entity tag of the current version of a
// as currentArticle renders it at now.
func articleETag(a *knowledge.Article, now time.Time) string {
	tag := etag(a.Version)
	if a.ReviewOverdue(now) {
		tag = tag[:len(tag)-1] + overdueETagSuffix + `"`
	}
	return tag
}

// capUntilReviewDue lowers maxAge to the time left until the review of a
// falls due, so that no cache serves review_overdue false after that.
func capUntilReviewDue(maxAge time.Duration, a *knowledge.Article, now time.Time) time.Duration {
	due := a.ReviewDue()
	if due.IsZero() || !now.Before(due) {
		return maxAge
	}
	return min(maxAge, due.Sub(now))
}

// ifNoneMatch evaluates the If-None-Match header of r against etag by weak
// comparison, as RFC 9110, section 13.1.2, requires for GET and HEAD.
// present is false when the header is missing. A value that is not a list
// of entity tags never matches, so the client gets a full response.
func ifNoneMatch(r *http.Request, etag string) (present, match bool) {
	h := headerList(r, "If-None-Match")
	if h == "" {
		return false, false
	}
	if h == "*" {
		return true, true
	}
	tags, _ := entityTags(h)
	opaque := strings.TrimPrefix(etag, "W/")
	for _, tag := range tags {
		if strings.TrimPrefix(tag, "W/") == opaque {
			return true, true
		}
	}
	return true, false
}

// ifModifiedSince returns the date of the If-Modified-Since header of r.
// ok is false when the header must be ignored (RFC 9110, section 13.1.3):
// it is missing, sent more than once or not an HTTP-date.
func ifModifiedSince(r *http.Request) (since time.Time, ok bool) {
	values := r.Header.Values("If-Modified-Since")
	if len(values) != 1 {
		return time.Time{}, false
	}
	since, err := http.ParseTime(strings.TrimSpace(values[0]))
	return since, err == nil
}

// notModified reports whether r may get 304 Not Modified
// (RFC 9110, section 13.2.2). If-None-Match takes precedence: when it is
// present, If-Modified-Since is ignored. If-Modified-Since counts only
// when lastModified is set, and compares at the one-second precision of
// HTTP dates.
func notModified(r *http.Request, etag string, lastModified time.Time) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if present, match := ifNoneMatch(r, etag); present {
		return match
	}
	if lastModified.IsZero() {
		return false
	}
	since, ok := ifModifiedSince(r)
	return ok && !lastModified.Truncate(time.Second).After(since)
}

// setCacheHeaders sets the validators and caching rules of a cacheable
// response.
func setCacheHeaders(w http.ResponseWriter, etag string, maxAge time.Duration) {
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", cacheControl(maxAge))
	h.Set("Vary", "Authorization")
}

// writeNotModified writes 304 Not Modified with the ETag, Cache-Control
// and Vary that a 200 would carry, and no body, when r's conditional
// headers allow it. It reports whether it wrote the response. A handler
// that has the tag before it computes the result may call it first to skip
// the work, but only if nothing in the result, such as a review state, can
// change the body without changing the tag.
func writeNotModified(w http.ResponseWriter, r *http.Request, etag string, lastModified time.Time, maxAge time.Duration) bool {
	if !notModified(r, etag, lastModified) {
		return false
	}
	setCacheHeaders(w, etag, maxAge)
	w.WriteHeader(http.StatusNotModified)
	return true
}

// writeCached writes the response to a cacheable GET: 304 Not Modified when r's
// conditional headers match etag or lastModified, and otherwise 200 with v
// as JSON. etag must be a strong entity tag that changes whenever the JSON
// of v does. lastModified, when not zero, is sent as Last-Modified at
// second precision. maxAge comes from cacheMaxAge.
func writeCached(w http.ResponseWriter, r *http.Request, etag string, lastModified time.Time, maxAge time.Duration, v any) {
	if writeNotModified(w, r, etag, lastModified, maxAge) {
		return
	}
	setCacheHeaders(w, etag, maxAge)
	if !lastModified.IsZero() {
		w.Header().Set("Last-Modified", lastModified.UTC().Format(http.TimeFormat))
	}
	writeJSON(w, http.StatusOK, v)
}
