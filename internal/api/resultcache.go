package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/resultcache"
	"github.com/khub-dev/khub/internal/store"
)

// Searches and lookups keep their results in a resultcache.Cache on each
// node. A key holds the kind of request, the caller as callerKey names it,
// the change-log position from logPosition and the request's parameters in
// a canonical form. The position is read before the result is computed,
// as for result tags. Cursors are allocated in commit order, so a request
// that starts after a commit reads a newer position and never finds a
// result computed before that commit. A commit outside the
// caller's scope also moves the position, which costs a computation but
// never serves a stale result. Callers never share an entry, because
// callerKey differs for every integration and for the admin.
//
// The review state of a hit depends on the time as well as on the data.
// Its owner and review due time come from the article's current version,
// which only a commit changes. Whether the review is overdue depends on the
// time of the request. So an entry keeps each hit's owner and due time, and
// every request, also one served from the cache, decides overdue at its own
// time on its own copy of the hits.

// resultCache is the per-node cache of search and lookup results with its
// metrics.
type resultCache struct {
	cache  *resultcache.Cache
	hits   *prometheus.CounterVec
	misses *prometheus.CounterVec
}

// Request kinds, as keys and metric labels name them.
const (
	kindSearch = "search"
	kindLookup = "lookup"
)

// do returns the cached result of kind under key at position, or computes
// and keeps it, and counts the hit or miss.
func (c *resultCache) do(ctx context.Context, kind string, key resultcache.Key, position int64, compute func(context.Context) (any, int64, error)) (any, error) {
	v, hit, err := c.cache.Do(ctx, key, position, compute)
	if err != nil {
		return nil, err
	}
	if hit {
		c.hits.WithLabelValues(kind).Inc()
	} else {
		c.misses.WithLabelValues(kind).Inc()
	}
	return v, nil
}

// searchKey returns the cache key of a search by the caller of r.
// filters are the caller's scope and the request's normalized filters.
func searchKey(r *http.Request, position int64, text string, filters []knowledge.Scope, limit int64, cursor string, facets bool) resultcache.Key {
	// Filters contain only strings, which always marshal, and
	// encoding/json writes map keys in sorted order.
	f, _ := json.Marshal(filters)
	return resultcache.NewKey(kindSearch, callerKey(r), strconv.FormatInt(position, 10),
		text, string(f), strconv.FormatInt(limit, 10), cursor, strconv.FormatBool(facets))
}

// lookupKey returns the cache key of a lookup by the caller of r.
func lookupKey(r *http.Request, position int64, in *client.LookupRequest) resultcache.Key {
	attrs, _ := json.Marshal(in.Attributes)
	return resultcache.NewKey(kindLookup, callerKey(r), strconv.FormatInt(position, 10),
		in.Text, string(attrs), strconv.Itoa(in.Limit))
}

// Size estimates, in bytes, of the fixed part of results and hits: struct
// fields, slice and string headers and map overhead.
const (
	resultOverhead = 128
	hitOverhead    = 256
	stringOverhead = 16
)

func stringsSize(ss ...string) int64 {
	n := int64(0)
	for _, s := range ss {
		n += stringOverhead + int64(len(s))
	}
	return n
}

// searchResultSize estimates the memory that a search result holds.
func searchResultSize(res *client.SearchResult) int64 {
	n := resultOverhead + int64(len(res.Next))
	for i := range res.Hits {
		h := &res.Hits[i]
		n += hitOverhead + stringsSize(h.ID, h.Title, h.Collection, h.Class, h.Status, h.Snippet, h.SnippetHTML, h.Owner)
		n += stringsSize(h.Tags...) + stringsSize(h.Matched...)
	}
	if f := res.Facets; f != nil {
		for _, list := range [][]client.FacetCount{f.Classes, f.Collections, f.Tags} {
			for _, c := range list {
				n += 8 + stringsSize(c.Value)
			}
		}
	}
	return n
}

// lookupResultSize estimates the memory that a lookup result holds.
func lookupResultSize(res *client.LookupResult) int64 {
	n := resultOverhead + stringsSize(res.Terms...)
	for i := range res.Hits {
		h := &res.Hits[i]
		n += hitOverhead + stringsSize(h.ID, h.Title, h.Collection, h.Class, h.Status, h.Snippet, h.SnippetHTML,
			h.Reason, h.ReplacedBy, h.Owner)
		n += stringsSize(h.MatchedTerms...) + stringsSize(h.MatchedAttributes...)
	}
	return n
}

// reviewState is the input of a hit's review state: the owner and review
// due time of the article's current version. The current
// version counts, not the hit's, because a later version is a review.
// known is false when the hit's version is no longer stored, and the hit
// then gets no review state.
type reviewState struct {
	owner string
	due   time.Time
	known bool
}

// readReviewStates reads the review state of the versions that keys name,
// in order.
func (s *Server) readReviewStates(ctx context.Context, keys []store.VersionKey) ([]reviewState, error) {
	out := make([]reviewState, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	infos, err := s.hub.Store.DescribeVersions(ctx, keys)
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		if info, ok := infos[k]; ok {
			out[i] = reviewState{owner: info.Current.Owner, due: info.Current.ReviewDue(), known: true}
		}
	}
	return out, nil
}

// overdue reports whether the review was due at or before now, as
// knowledge.Article.ReviewOverdue does.
func (r *reviewState) overdue(now time.Time) bool {
	return !r.due.IsZero() && !now.Before(r.due)
}

// searchEntry is a cached search result without review state, and the
// review state of each hit.
type searchEntry struct {
	result  client.SearchResult
	reviews []reviewState
}

// lookupEntry is a cached lookup result without review state, and the
// review state of each hit.
type lookupEntry struct {
	result  client.LookupResult
	reviews []reviewState
}

// render returns a copy of the cached search result with the review state
// of its hits as of now.
func (e *searchEntry) render(now time.Time) client.SearchResult {
	out := e.result
	out.Hits = slices.Clone(out.Hits)
	for i := range out.Hits {
		if r := &e.reviews[i]; r.known {
			out.Hits[i].Owner, out.Hits[i].ReviewOverdue = r.owner, r.overdue(now)
		}
	}
	return out
}

// render returns a copy of the cached lookup result with the review state
// of its hits as of now.
func (e *lookupEntry) render(now time.Time) client.LookupResult {
	out := e.result
	out.Hits = slices.Clone(out.Hits)
	for i := range out.Hits {
		if r := &e.reviews[i]; r.known {
			out.Hits[i].Owner, out.Hits[i].ReviewOverdue = r.owner, r.overdue(now)
		}
	}
	return out
}

// capMaxAge lowers maxAge to the time left until the first review among
// reviews falls due, so that no cache serves review_overdue false after it.
func capMaxAge(maxAge time.Duration, reviews []reviewState, now time.Time) time.Duration {
	for i := range reviews {
		if due := reviews[i].due; reviews[i].known && !due.IsZero() && now.Before(due) {
			maxAge = min(maxAge, due.Sub(now))
		}
	}
	return maxAge
}

// newSearchEntry reads the review state of a search result's hits.
func (s *Server) newSearchEntry(ctx context.Context, res client.SearchResult) (*searchEntry, int64, error) {
	keys := make([]store.VersionKey, len(res.Hits))
	for i, h := range res.Hits {
		keys[i] = store.VersionKey{ArticleID: h.ID, Version: h.Version}
	}
	reviews, err := s.readReviewStates(ctx, keys)
	if err != nil {
		return nil, 0, err
	}
	e := &searchEntry{result: res, reviews: reviews}
	return e, searchResultSize(&res) + reviewsSize(reviews), nil
}

// newLookupEntry reads the review state of a lookup result's hits.
func (s *Server) newLookupEntry(ctx context.Context, res client.LookupResult) (*lookupEntry, int64, error) {
	keys := make([]store.VersionKey, len(res.Hits))
	for i, h := range res.Hits {
		keys[i] = store.VersionKey{ArticleID: h.ID, Version: h.Version}
	}
	reviews, err := s.readReviewStates(ctx, keys)
	if err != nil {
		return nil, 0, err
	}
	e := &lookupEntry{result: res, reviews: reviews}
	return e, lookupResultSize(&res) + reviewsSize(reviews), nil
}

func reviewsSize(reviews []reviewState) int64 {
	n := int64(0)
	for _, r := range reviews {
		n += 48 + int64(len(r.owner))
	}
	return n
}
