package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/changelog"
	"github.com/khub-dev/khub/internal/hub"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/resultcache"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/sqlite"
)

const testAdminToken = "admin-token-for-result-cache-tests"

// cacheFixture is a server over a SQLite store with a few articles.
type cacheFixture struct {
	srv *Server
	hub *hub.Hub
}

func newCacheFixture(t *testing.T, cfg resultcache.Config) *cacheFixture {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "khub.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &hub.Hub{Store: st, Wake: &changelog.Broadcaster{}}
	f := &cacheFixture{hub: h, srv: New(h, Config{AdminToken: testAdminToken, ResultCache: cfg})}
	f.save(t, "etcd-backup", "runbook", "Back up etcd", "Take an etcd snapshot before the upgrade.")
	f.save(t, "etcd-policy", "policy", "Etcd retention policy", "Keep etcd snapshots for thirty days.")
	return f
}

func (f *cacheFixture) save(t *testing.T, id, class, title, body string) {
	t.Helper()
	a := knowledge.Article{ID: id, Title: title, Body: body, Collection: "ops", Class: knowledge.Class(class), Owner: "ops-team"}
	if _, err := f.hub.SaveArticle(context.Background(), a, store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
}

// pullToken creates a pull integration limited to one class and returns
// its token.
func (f *cacheFixture) pullToken(t *testing.T, name, class string) string {
	t.Helper()
	c, err := f.hub.CreateIntegration(context.Background(), hub.IntegrationInput{
		Name: name, Freshness: "1h", Pattern: "pull", Lookups: true,
		Scope: knowledge.Scope{Classes: []knowledge.Class{knowledge.Class(class)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c.Token
}

func (f *cacheFixture) do(t *testing.T, token, method, target, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, r)
	return w
}

func (f *cacheFixture) search(t *testing.T, token, q string) []string {
	t.Helper()
	w := f.do(t, token, http.MethodGet, "/v1/search?q="+q, "")
	if w.Code != http.StatusOK {
		t.Fatalf("search %q: status %d: %s", q, w.Code, w.Body)
	}
	var res client.SearchResult
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.ID
	}
	slices.Sort(ids)
	return ids
}

func (f *cacheFixture) lookup(t *testing.T, token, text string) []string {
	t.Helper()
	body, _ := json.Marshal(client.LookupRequest{Text: text})
	w := f.do(t, token, http.MethodPost, "/v1/lookup", string(body))
	if w.Code != http.StatusOK {
		t.Fatalf("lookup %q: status %d: %s", text, w.Code, w.Body)
	}
	var res client.LookupResult
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.ID
	}
	slices.Sort(ids)
	return ids
}

// count returns khub_result_cache_hits_total or, for result "miss",
// khub_result_cache_misses_total of kind from the server's registry.
func (f *cacheFixture) count(t *testing.T, kind, result string) float64 {
	t.Helper()
	name := "khub_result_cache_hits_total"
	if result == "miss" {
		name = "khub_result_cache_misses_total"
	}
	families, err := f.srv.cfg.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{kind=%q} is not registered", name, kind)
	return 0
}

func TestResultCacheHitsRepeatedSearch(t *testing.T) {
	f := newCacheFixture(t, resultcache.Config{})
	first := f.search(t, testAdminToken, "etcd")
	second := f.search(t, testAdminToken, "etcd")
	if !slices.Equal(first, second) {
		t.Errorf("repeated search = %v, want %v", second, first)
	}
	if got := f.count(t, kindSearch, "miss"); got != 1 {
		t.Errorf("search misses = %v, want 1", got)
	}
	if got := f.count(t, kindSearch, "hit"); got != 1 {
		t.Errorf("search hits = %v, want 1", got)
	}
}

func TestResultCacheCommitInvalidatesSearch(t *testing.T) {
	f := newCacheFixture(t, resultcache.Config{})
	if got := f.search(t, testAdminToken, "etcd"); len(got) != 2 {
		t.Fatalf("search before the commit = %v, want 2 hits", got)
	}
	f.save(t, "etcd-restore", "runbook", "Restore etcd", "Restore the etcd snapshot.")
	got := f.search(t, testAdminToken, "etcd")
	if !slices.Contains(got, "etcd-restore") {
		t.Errorf("search after the commit = %v, want the new article etcd-restore", got)
	}
	if n := f.count(t, kindSearch, "hit"); n != 0 {
		t.Errorf("search hits = %v, want 0 after a commit", n)
	}
}

func TestResultCacheCommitInvalidatesLookup(t *testing.T) {
	f := newCacheFixture(t, resultcache.Config{})
	const text = "etcd snapshot failed\n\nThe etcd snapshot job failed during the upgrade."
	before := f.lookup(t, testAdminToken, text)
	if slices.Contains(before, "etcd-restore") {
		t.Fatalf("lookup before the commit = %v, found an article not yet written", before)
	}
	f.lookup(t, testAdminToken, text)
	if n := f.count(t, kindLookup, "hit"); n != 1 {
		t.Errorf("lookup hits before the commit = %v, want 1", n)
	}
	f.save(t, "etcd-restore", "runbook", "Restore etcd snapshot", "Restore the etcd snapshot after a failed upgrade.")
	if got := f.lookup(t, testAdminToken, text); !slices.Contains(got, "etcd-restore") {
		t.Errorf("lookup after the commit = %v, want the new article etcd-restore", got)
	}
	if n := f.count(t, kindLookup, "miss"); n != 2 {
		t.Errorf("lookup misses = %v, want 2: the first lookup and the one after the commit", n)
	}
}

func TestResultCacheScopesShareNoEntry(t *testing.T) {
	f := newCacheFixture(t, resultcache.Config{})
	runbooks := f.pullToken(t, "runbooks", "runbook")
	policies := f.pullToken(t, "policies", "policy")
	// Two integrations with equal scopes must not share entries either.
	runbooks2 := f.pullToken(t, "runbooks-2", "runbook")

	if got := f.search(t, runbooks, "etcd"); !slices.Equal(got, []string{"etcd-backup"}) {
		t.Errorf("runbook integration search = %v, want [etcd-backup]", got)
	}
	if got := f.search(t, policies, "etcd"); !slices.Equal(got, []string{"etcd-policy"}) {
		t.Errorf("policy integration search = %v, want [etcd-policy]", got)
	}
	if got := f.search(t, testAdminToken, "etcd"); len(got) != 2 {
		t.Errorf("admin search = %v, want both articles", got)
	}
	f.search(t, runbooks2, "etcd")
	if got := f.lookup(t, policies, "etcd snapshot"); !slices.Equal(got, []string{"etcd-policy"}) {
		t.Errorf("policy integration lookup = %v, want [etcd-policy]", got)
	}
	if got := f.lookup(t, runbooks, "etcd snapshot"); !slices.Equal(got, []string{"etcd-backup"}) {
		t.Errorf("runbook integration lookup = %v, want [etcd-backup]", got)
	}
	if n := f.count(t, kindSearch, "hit") + f.count(t, kindLookup, "hit"); n != 0 {
		t.Errorf("cache hits = %v, want 0 across callers", n)
	}
}

func TestResultCacheRevalidationSkipsSearch(t *testing.T) {
	f := newCacheFixture(t, resultcache.Config{})
	w := f.do(t, testAdminToken, http.MethodGet, "/v1/search?q=etcd", "")
	tag := w.Header().Get("ETag")
	if w.Code != http.StatusOK || tag == "" {
		t.Fatalf("search: status %d, ETag %q", w.Code, tag)
	}
	w = f.do(t, testAdminToken, http.MethodGet, "/v1/search?q=etcd", "", "If-None-Match", tag)
	if w.Code != http.StatusNotModified {
		t.Errorf("revalidation status = %d, want 304", w.Code)
	}
	if n := f.count(t, kindSearch, "hit"); n != 1 {
		t.Errorf("search hits = %v, want 1 for the revalidation", n)
	}
}

func TestResultCacheReviewFollowsClock(t *testing.T) {
	f := newCacheFixture(t, resultcache.Config{})
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.hub.Now = func() time.Time { return now }
	a := knowledge.Article{ID: "etcd-review", Title: "Etcd review", Body: "Reviewed daily.", Collection: "ops",
		Class: knowledge.ClassRunbook, Owner: "db-team", ReviewEvery: 24 * time.Hour}
	if _, err := f.hub.SaveArticle(context.Background(), a, store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}

	overdue := func() client.SearchHit {
		t.Helper()
		w := f.do(t, testAdminToken, http.MethodGet, "/v1/search?q=review", "")
		var res client.SearchResult
		if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || len(res.Hits) != 1 {
			t.Fatalf("search for review: status %d, %v: %s", w.Code, err, w.Body)
		}
		return res.Hits[0]
	}
	if h := overdue(); h.ReviewOverdue || h.Owner != "db-team" {
		t.Errorf("hit before the due time: overdue %v, owner %q; want false, db-team", h.ReviewOverdue, h.Owner)
	}
	// No commit, so the cached result serves, but the review falls due.
	now = now.Add(25 * time.Hour)
	if h := overdue(); !h.ReviewOverdue || h.Owner != "db-team" {
		t.Errorf("hit after the due time: overdue %v, owner %q; want true, db-team", h.ReviewOverdue, h.Owner)
	}
	if n := f.count(t, kindSearch, "hit"); n != 1 {
		t.Errorf("search hits = %v, want 1: the second search was served from the cache", n)
	}
}

func TestResultCacheOff(t *testing.T) {
	f := newCacheFixture(t, resultcache.Config{MaxEntries: -1})
	f.search(t, testAdminToken, "etcd")
	f.search(t, testAdminToken, "etcd")
	if n := f.count(t, kindSearch, "miss"); n != 2 {
		t.Errorf("search misses with the cache off = %v, want 2", n)
	}
}

func TestResultCacheEntryBound(t *testing.T) {
	f := newCacheFixture(t, resultcache.Config{MaxEntries: 2})
	for _, q := range []string{"etcd", "snapshot", "upgrade", "retention"} {
		f.search(t, testAdminToken, q)
	}
	if st := f.srv.results.cache.Stats(); st.Entries != 2 {
		t.Errorf("entries = %d, want the bound 2", st.Entries)
	}
}

// TestCachedResultsFollowWrites checks that a search or lookup after a
// write shows the written version while other requests fill the cache
// during the write. The SQLite store commits a change before its text
// index holds it, and a result computed in between must not be cached
// under the new log position. Large bodies make that moment long.
func TestCachedResultsFollowWrites(t *testing.T) {
	f := newCacheFixture(t, resultcache.Config{})
	filler := strings.Repeat("filler words of a long runbook ", 20000)
	save := func(v int) {
		a := knowledge.Article{ID: "big", Title: "Big runbook", Body: fmt.Sprintf("quoll version%d %s", v, filler),
			Collection: "ops", Class: knowledge.ClassRunbook}
		if _, err := f.hub.SaveArticle(context.Background(), a, store.SaveOptions{}); err != nil {
			t.Error(err)
		}
	}
	version := func(target, body string) int64 {
		method := http.MethodGet
		if body != "" {
			method = http.MethodPost
		}
		w := f.do(t, testAdminToken, method, target, body)
		var res struct {
			Hits []struct {
				ID      string `json:"id"`
				Version int64  `json:"version"`
			} `json:"hits"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil || w.Code != http.StatusOK {
			t.Fatalf("%s: status %d, %v", target, w.Code, err)
		}
		for _, h := range res.Hits {
			if h.ID == "big" {
				return h.Version
			}
		}
		return 0
	}

	save(1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				f.do(t, testAdminToken, http.MethodGet, "/v1/search?q=quoll", "")
				f.do(t, testAdminToken, http.MethodPost, "/v1/lookup", `{"text":"quoll"}`)
			}
		}
	}()

	for v := 2; v <= 6; v++ {
		save(v)
		if got := version("/v1/search?q=quoll", ""); got != int64(v) {
			t.Errorf("search after writing version %d shows version %d", v, got)
		}
		if got := version("/v1/lookup", `{"text":"quoll"}`); got != int64(v) {
			t.Errorf("lookup after writing version %d shows version %d", v, got)
		}
	}
	close(stop)
	wg.Wait()
}
