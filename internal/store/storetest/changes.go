package storetest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

func runChanges(t *testing.T, open opener) {
	subtest(t, "EmptyLog", open, testEmptyLog)
	subtest(t, "OrderAndSnapshots", open, testOrderAndSnapshots)
	subtest(t, "Paging", open, testPaging)
	subtest(t, "Filters", open, testChangeFilters)
	subtest(t, "FilterUsesVersion", open, testFilterUsesVersion)
	subtest(t, "ScannedToSkipsOutOfScope", open, testScannedToSkipsOutOfScope)
	subtest(t, "EntriesWithoutArticles", open, testChangeEntries)
	subtest(t, "ConcurrentWriters", open, testConcurrentWriters)
	subtest(t, "OldestChangeAfterPush", open, testOldestPush)
	subtest(t, "OldestChangeAfterHybrid", open, testOldestHybrid)
	subtest(t, "OldestChangeAfterPull", open, testOldestPull)
	subtest(t, "OldestChangeAfterScope", open, testOldestScope)
	subtest(t, "OldestChangeAfterLeaving", open, testOldestLeaving)
	subtest(t, "OldestChangeAfterOperations", open, testOldestOperations)
}

func testEmptyLog(t *testing.T, s store.Store) {
	if got := head(t, s); got != 0 {
		t.Errorf("HeadCursor of an empty store = %d, want 0", got)
	}
	page, err := s.ReadChanges(context.Background(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 0 || page.ScannedTo != 0 {
		t.Errorf("ReadChanges of an empty store = %d entries, ScannedTo %d; want none, 0", len(page.Changes), page.ScannedTo)
	}
}

func testOrderAndSnapshots(t *testing.T, s store.Store) {
	a := newArticle("a")
	a.Body = "First body of a."
	saveAt(t, s, a, 0)
	saveAt(t, s, newArticle("b"), 1)
	a.Body = "Second body of a."
	a.Tags = []string{"edited"}
	saveAt(t, s, a, 2)

	changes, scanned := readAll(t, s, 0, 10)
	if got, want := changeKeys(changes), []string{"a@1", "b@1", "a@2"}; !slices.Equal(got, want) {
		t.Fatalf("change log = %v, want %v", got, want)
	}
	for i := 1; i < len(changes); i++ {
		if changes[i].Cursor <= changes[i-1].Cursor {
			t.Errorf("cursor %d follows %d, want increasing cursors", changes[i].Cursor, changes[i-1].Cursor)
		}
	}
	if h := head(t, s); h != changes[2].Cursor || scanned != h {
		t.Errorf("head = %d, ScannedTo = %d, want both %d", h, scanned, changes[2].Cursor)
	}

	// Each entry carries the version it created, not the current one.
	if got := changes[0].Article; got.Body != "First body of a." || got.Version != 1 || len(got.Tags) != 0 {
		t.Errorf("first entry's article = version %d %q %q, want version 1 with the first body", got.Version, got.Body, got.Tags)
	}
	if got := changes[2].Article; got.Body != "Second body of a." || got.Version != 2 || !slices.Equal(got.Tags, []string{"edited"}) {
		t.Errorf("third entry's article = version %d %q %q, want version 2 with the second body", got.Version, got.Body, got.Tags)
	}
	for i, c := range changes {
		wantTime(t, fmt.Sprintf("entry %d Time", i), c.Time, at(i))
		wantTime(t, fmt.Sprintf("entry %d UpdatedAt", i), c.Article.UpdatedAt, at(i))
		if c.Article.ID != c.ArticleID || c.Article.Version != c.Version {
			t.Errorf("entry %d is %s@%d but carries %s@%d", i, c.ArticleID, c.Version, c.Article.ID, c.Article.Version)
		}
	}
	wantTime(t, "third entry CreatedAt", changes[2].Article.CreatedAt, at(0))

	after, _ := readAll(t, s, changes[0].Cursor, 10)
	if got, want := changeKeys(after), []string{"b@1", "a@2"}; !slices.Equal(got, want) {
		t.Errorf("changes after the first cursor = %v, want %v", got, want)
	}
}

func testPaging(t *testing.T, s store.Store) {
	ctx := context.Background()
	var cursors []int64
	for i := range 5 {
		res := saveAt(t, s, newArticle(fmt.Sprintf("a%d", i)), i)
		cursors = append(cursors, res.Change.Cursor)
	}

	page, err := s.ReadChanges(ctx, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 2 {
		t.Fatalf("first page has %d entries, want 2", len(page.Changes))
	}
	if page.ScannedTo != cursors[1] {
		t.Errorf("full page: ScannedTo = %d, want the last entry's cursor %d", page.ScannedTo, cursors[1])
	}

	var got []int64
	after := int64(0)
	for range 10 {
		page, err := s.ReadChanges(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Changes {
			got = append(got, c.Cursor)
		}
		if len(page.Changes) == 0 {
			if page.ScannedTo != cursors[4] {
				t.Errorf("empty page at the end: ScannedTo = %d, want head %d", page.ScannedTo, cursors[4])
			}
			break
		}
		after = page.ScannedTo
	}
	if !slices.Equal(got, cursors) {
		t.Errorf("paged cursors = %v, want %v", got, cursors)
	}

	page, err = s.ReadChanges(ctx, cursors[4], 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 0 || page.ScannedTo != cursors[4] {
		t.Errorf("read after head = %d entries, ScannedTo %d; want none, %d", len(page.Changes), page.ScannedTo, cursors[4])
	}
}

// seedScoped stores articles that differ in every scope dimension.
func seedScoped(t *testing.T, s store.Store) {
	articles := []knowledge.Article{
		{ID: "ops-runbook", Collection: "ops", Class: knowledge.ClassRunbook, Tags: []string{"dns"},
			Metadata: map[string]string{"team": "sre", "region": "eu"}},
		{ID: "ops-policy", Collection: "ops", Class: knowledge.ClassPolicy, Tags: []string{"access"},
			Metadata: map[string]string{"team": "security", "region": "eu"}},
		{ID: "hr-policy", Collection: "hr", Class: knowledge.ClassPolicy, Tags: []string{"leave", "dns"},
			Metadata: map[string]string{"team": "people"}},
		{ID: "hr-reference", Collection: "hr", Class: knowledge.ClassReference, Tags: nil,
			Metadata: map[string]string{"team": "people", "region": "us"}},
	}
	for i, a := range articles {
		a.Title = "Title of " + a.ID
		a.Body = "Body of " + a.ID + "."
		saveAt(t, s, a, i)
	}
}

// scopeCases are filters over seedScoped's articles, with the ids each
// selects in the order they were stored.
var scopeCases = []struct {
	name    string
	filters []knowledge.Scope
	want    []string
}{
	{"none", nil, []string{"ops-runbook", "ops-policy", "hr-policy", "hr-reference"}},
	{"empty scope", []knowledge.Scope{{}}, []string{"ops-runbook", "ops-policy", "hr-policy", "hr-reference"}},
	{"collection", []knowledge.Scope{{Collections: []string{"hr"}}}, []string{"hr-policy", "hr-reference"}},
	{"collections any of", []knowledge.Scope{{Collections: []string{"hr", "ops"}}}, []string{"ops-runbook", "ops-policy", "hr-policy", "hr-reference"}},
	{"class", []knowledge.Scope{{Classes: []knowledge.Class{knowledge.ClassPolicy}}}, []string{"ops-policy", "hr-policy"}},
	{"classes any of", []knowledge.Scope{{Classes: []knowledge.Class{knowledge.ClassRunbook, knowledge.ClassReference}}}, []string{"ops-runbook", "hr-reference"}},
	{"tag", []knowledge.Scope{{Tags: []string{"dns"}}}, []string{"ops-runbook", "hr-policy"}},
	{"tags any of", []knowledge.Scope{{Tags: []string{"access", "leave"}}}, []string{"ops-policy", "hr-policy"}},
	{"metadata", []knowledge.Scope{{Metadata: map[string]string{"team": "people"}}}, []string{"hr-policy", "hr-reference"}},
	{"metadata every key", []knowledge.Scope{{Metadata: map[string]string{"team": "people", "region": "us"}}}, []string{"hr-reference"}},
	{"metadata missing key", []knowledge.Scope{{Metadata: map[string]string{"region": "eu"}}}, []string{"ops-runbook", "ops-policy"}},
	{"dimensions combined", []knowledge.Scope{{Collections: []string{"ops"}, Classes: []knowledge.Class{knowledge.ClassPolicy}}}, []string{"ops-policy"}},
	{"two scopes", []knowledge.Scope{{Classes: []knowledge.Class{knowledge.ClassPolicy}}, {Tags: []string{"dns"}}}, []string{"hr-policy"}},
	{"disjoint scopes", []knowledge.Scope{{Collections: []string{"ops"}}, {Collections: []string{"hr"}}}, nil},
	{"no match", []knowledge.Scope{{Tags: []string{"unknown"}}}, nil},
}

func testChangeFilters(t *testing.T, s store.Store) {
	seedScoped(t, s)
	h := head(t, s)
	for _, tc := range scopeCases {
		t.Run(tc.name, func(t *testing.T) {
			changes, scanned := readAll(t, s, 0, 100, tc.filters...)
			var got []string
			for _, c := range changes {
				got = append(got, c.ArticleID)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("ReadChanges ids = %v, want %v", got, tc.want)
			}
			if scanned != h {
				t.Errorf("ScannedTo = %d, want head %d", scanned, h)
			}
		})
	}
}

// testFilterUsesVersion checks that a filter matches a change by the
// version it created, or by the version before when the change leaves the
// filter's scope, so that readers of the scope learn that the article left.
func testFilterUsesVersion(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newArticle("moved")
	a.Collection = "hr"
	a.Tags = []string{"onboarding"}
	a.Metadata = map[string]string{"team": "people"}
	saveAt(t, s, a, 0)
	a.Collection = "ops"
	saveAt(t, s, a, 1)
	a.Body = "Still in ops."
	a.Tags = nil
	a.Metadata = map[string]string{"team": "infra"}
	saveAt(t, s, a, 2)
	a.Collection = "hr"
	a.Body = "Moved back."
	saveAt(t, s, a, 3)

	for _, c := range []struct {
		name  string
		scope knowledge.Scope
		want  []string
	}{
		// "left" marks a change that moves the article out of the scope.
		{"collection ops", knowledge.Scope{Collections: []string{"ops"}}, []string{"moved@2", "moved@3", "moved@4 left"}},
		{"collection hr", knowledge.Scope{Collections: []string{"hr"}}, []string{"moved@1", "moved@2 left", "moved@4"}},
		{"tag onboarding", knowledge.Scope{Tags: []string{"onboarding"}}, []string{"moved@1", "moved@2", "moved@3 left"}},
		{"team people", knowledge.Scope{Metadata: map[string]string{"team": "people"}}, []string{"moved@1", "moved@2", "moved@3 left"}},
		{"hr and tag onboarding", knowledge.Scope{Collections: []string{"hr"}, Tags: []string{"onboarding"}}, []string{"moved@1", "moved@2 left"}},
	} {
		keys := func(changes []knowledge.Change) []string {
			out := changeKeys(changes)
			for i := range changes {
				if changes[i].Left {
					out[i] += " left"
				}
			}
			return out
		}
		changes, _ := readAll(t, s, 0, 100, c.scope)
		if got := keys(changes); !slices.Equal(got, c.want) {
			t.Errorf("changes in %s = %v, want %v (the new version or the one before decides)", c.name, got, c.want)
		}
		page, err := s.ReadChangeEntries(ctx, 0, 100, c.scope)
		if err != nil {
			t.Fatal(err)
		}
		if got := keys(page.Changes); !slices.Equal(got, c.want) {
			t.Errorf("entries in %s = %v, want %v", c.name, got, c.want)
		}
	}

	// Every change read with articles carries the scope fields of the
	// version before, and a first version none.
	changes, _ := readAll(t, s, 0, 100)
	if len(changes) != 4 {
		t.Fatalf("read %v, want 4 changes", changeKeys(changes))
	}
	if changes[0].Previous != nil {
		t.Errorf("moved@1 has a previous version %+v, want none", changes[0].Previous)
	}
	for i, want := range []knowledge.Article{
		{ID: "moved", Version: 1, Collection: "hr", Class: knowledge.ClassRunbook, Tags: []string{"onboarding"}, Metadata: map[string]string{"team": "people"}, Status: knowledge.StatusPublished},
		{ID: "moved", Version: 2, Collection: "ops", Class: knowledge.ClassRunbook, Tags: []string{"onboarding"}, Metadata: map[string]string{"team": "people"}, Status: knowledge.StatusPublished},
		{ID: "moved", Version: 3, Collection: "ops", Class: knowledge.ClassRunbook, Tags: []string{}, Metadata: map[string]string{"team": "infra"}, Status: knowledge.StatusPublished},
	} {
		p := changes[i+1].Previous
		if p == nil {
			t.Errorf("moved@%d has no previous version", i+2)
			continue
		}
		if p.ID != want.ID || p.Version != want.Version || p.Collection != want.Collection || p.Class != want.Class ||
			!slices.Equal(p.Tags, want.Tags) || !maps.Equal(p.Metadata, want.Metadata) || p.Status != want.Status {
			t.Errorf("moved@%d: previous = %+v, want %+v", i+2, *p, want)
		}
	}
}

func testScannedToSkipsOutOfScope(t *testing.T, s store.Store) {
	ctx := context.Background()
	in := newArticle("in")
	in.Collection = "ops"
	first := saveAt(t, s, in, 0)
	for i := range 5 {
		out := newArticle(fmt.Sprintf("out%d", i))
		out.Collection = "hr"
		saveAt(t, s, out, i+1)
	}
	h := head(t, s)
	ops := knowledge.Scope{Collections: []string{"ops"}}

	page, err := s.ReadChanges(ctx, 0, 10, ops)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 1 || page.Changes[0].Cursor != first.Change.Cursor {
		t.Errorf("ReadChanges = %v, want the one ops entry", changeKeys(page.Changes))
	}
	if page.ScannedTo != h {
		t.Errorf("ScannedTo = %d, want head %d past the out-of-scope entries", page.ScannedTo, h)
	}

	page, err = s.ReadChanges(ctx, first.Change.Cursor, 10, ops)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 0 || page.ScannedTo != h {
		t.Errorf("read with only out-of-scope entries = %d entries, ScannedTo %d; want none, %d", len(page.Changes), page.ScannedTo, h)
	}

	// A new in-scope entry is found from the ScannedTo of the empty read.
	in.Body = "Edited."
	second := saveAt(t, s, in, 10)
	page, err = s.ReadChanges(ctx, h, 10, ops)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 1 || page.Changes[0].Cursor != second.Change.Cursor {
		t.Errorf("ReadChanges after ScannedTo = %v, want in@2", changeKeys(page.Changes))
	}
}

// testConcurrentWriters runs writers and a reader that follows the change
// log from ScannedTo at the same time. Every committed cursor must reach the
// reader exactly once, in increasing order, with its own version.
func testConcurrentWriters(t *testing.T, s store.Store) {
	const (
		writers  = 8
		perWrite = 50
		articles = 5 // writers share articles, so versions interleave
	)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// committed maps each cursor a writer got back to "id@version".
	var (
		mu        sync.Mutex
		committed = map[int64]string{}
		wg        sync.WaitGroup
		errs      = make(chan error, writers)
	)
	// wake is signalled after each commit, so the reader waits instead of
	// spinning when it has caught up.
	wake := make(chan struct{}, 1)
	writersDone := make(chan struct{})

	for g := range writers {
		wg.Go(func() {
			for i := range perWrite {
				a := newArticle(fmt.Sprintf("shared%d", (g+i)%articles))
				a.Body = fmt.Sprintf("Written by writer %d, write %d.", g, i)
				a.Normalize()
				res, err := s.SaveArticle(ctx, a, store.SaveOptions{})
				if err != nil {
					errs <- fmt.Errorf("writer %d write %d: %w", g, i, err)
					return
				}
				if !res.Changed {
					errs <- fmt.Errorf("writer %d write %d: Changed = false for new content", g, i)
					return
				}
				mu.Lock()
				committed[res.Change.Cursor] = fmt.Sprintf("%s@%d", res.Change.ArticleID, res.Change.Version)
				mu.Unlock()
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(writersDone)
	}()

	var (
		seen    []knowledge.Change
		after   int64
		done    bool
		pageErr error
	)
	for {
		page, err := s.ReadChanges(ctx, after, 16)
		if err != nil {
			pageErr = err
			break
		}
		if page.ScannedTo < after {
			t.Fatalf("ScannedTo moved back from %d to %d", after, page.ScannedTo)
		}
		seen = append(seen, page.Changes...)
		after = page.ScannedTo
		if len(page.Changes) > 0 {
			continue
		}
		if done {
			// The writers had finished before this read, so it saw them all.
			break
		}
		select {
		case <-wake:
		case <-writersDone:
			done = true
		case <-ctx.Done():
			t.Fatalf("reader timed out after %d entries", len(seen))
		}
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if pageErr != nil {
		t.Fatalf("ReadChanges: %v", pageErr)
	}

	if len(committed) != writers*perWrite {
		t.Errorf("writers got %d distinct cursors, want %d", len(committed), writers*perWrite)
	}
	if len(seen) != len(committed) {
		t.Errorf("reader saw %d entries, want %d", len(seen), len(committed))
	}
	delivered := map[int64]bool{}
	for i, c := range seen {
		if i > 0 && c.Cursor <= seen[i-1].Cursor {
			t.Errorf("entry %d: cursor %d after %d, want increasing", i, c.Cursor, seen[i-1].Cursor)
		}
		if delivered[c.Cursor] {
			t.Errorf("cursor %d arrived twice", c.Cursor)
		}
		delivered[c.Cursor] = true
		want, ok := committed[c.Cursor]
		if !ok {
			t.Errorf("cursor %d was never returned to a writer", c.Cursor)
			continue
		}
		if got := fmt.Sprintf("%s@%d", c.Article.ID, c.Article.Version); got != want {
			t.Errorf("cursor %d carries %s, want %s", c.Cursor, got, want)
		}
	}
	for cursor, key := range committed {
		if !delivered[cursor] {
			t.Errorf("committed cursor %d (%s) never reached the reader", cursor, key)
		}
	}
}

// seedOldest stores, in order: a runbook created (1), a policy created (2),
// the runbook updated (3), the runbook deprecated (4), a reference in
// collection hr created (5) and the reference archived (6). It returns the
// six cursors.
func seedOldest(t *testing.T, s store.Store) []int64 {
	var cursors []int64
	add := func(res store.SaveResult) { cursors = append(cursors, res.Change.Cursor) }

	rb := newArticle("rb")
	add(saveAt(t, s, rb, 0))
	policy := newArticle("policy")
	policy.Class = knowledge.ClassPolicy
	add(saveAt(t, s, policy, 1))
	rb.Body = "Updated runbook."
	add(saveAt(t, s, rb, 2))
	rb.Status = knowledge.StatusDeprecated
	add(saveAt(t, s, rb, 3))
	ref := newArticle("ref")
	ref.Class = knowledge.ClassReference
	ref.Collection = "hr"
	add(saveAt(t, s, ref, 4))
	ref.Status = knowledge.StatusArchived
	add(saveAt(t, s, ref, 5))
	return cursors
}

// wantOldest checks OldestChangeAfter: want is the expected cursor, or 0 for
// store.ErrNotFound.
func wantOldest(t *testing.T, s store.Store, in *knowledge.Integration, after int64, pushedOnly bool, want int64) {
	t.Helper()
	c, err := s.OldestChangeAfter(context.Background(), in, after, pushedOnly)
	name := fmt.Sprintf("OldestChangeAfter(%s, %d, pushedOnly %v)", in.Pattern, after, pushedOnly)
	if want == 0 {
		if err == nil {
			t.Errorf("%s = cursor %d (%s@%d), want ErrNotFound", name, c.Cursor, c.ArticleID, c.Version)
		} else {
			wantErr(t, name, err, store.ErrNotFound)
		}
		return
	}
	if err != nil {
		t.Errorf("%s: %v, want cursor %d", name, err, want)
		return
	}
	if c.Cursor != want {
		t.Errorf("%s = cursor %d (%s@%d), want %d", name, c.Cursor, c.ArticleID, c.Version, want)
	}
	if c.Article.ID != c.ArticleID || c.Article.Version != c.Version {
		t.Errorf("%s: change %s@%d carries article %s@%d", name, c.ArticleID, c.Version, c.Article.ID, c.Article.Version)
	}
}

func testOldestPush(t *testing.T, s store.Store) {
	c := seedOldest(t, s)
	in := &knowledge.Integration{ID: "wh", Pattern: knowledge.PatternPush}
	wantOldest(t, s, in, 0, true, c[0])
	wantOldest(t, s, in, c[0], true, c[1])
	wantOldest(t, s, in, c[1], true, c[2])
	wantOldest(t, s, in, c[4], true, c[5])
	wantOldest(t, s, in, c[5], true, 0)
	wantOldest(t, s, in, 0, false, c[0])
}

func testOldestHybrid(t *testing.T, s store.Store) {
	c := seedOldest(t, s)
	in := &knowledge.Integration{ID: "hy", Pattern: knowledge.PatternHybrid}
	// The runbook's creation is not time-sensitive, so the policy is first.
	wantOldest(t, s, in, 0, true, c[1])
	// The runbook update is skipped, and its deprecation is pushed.
	wantOldest(t, s, in, c[1], true, c[3])
	// The reference's creation is skipped, and its archival is pushed.
	wantOldest(t, s, in, c[3], true, c[5])
	wantOldest(t, s, in, c[5], true, 0)
	// Without pushedOnly every change counts.
	wantOldest(t, s, in, 0, false, c[0])
	wantOldest(t, s, in, c[1], false, c[2])
}

func testOldestPull(t *testing.T, s store.Store) {
	c := seedOldest(t, s)
	in := &knowledge.Integration{ID: "pl", Pattern: knowledge.PatternPull}
	wantOldest(t, s, in, 0, true, 0)
	wantOldest(t, s, in, 0, false, c[0])
	wantOldest(t, s, in, c[5], false, 0)
}

func testOldestScope(t *testing.T, s store.Store) {
	c := seedOldest(t, s)
	hr := &knowledge.Integration{ID: "hr", Pattern: knowledge.PatternPush,
		Scope: knowledge.Scope{Collections: []string{"hr"}}}
	wantOldest(t, s, hr, 0, true, c[4])
	wantOldest(t, s, hr, 0, false, c[4])
	wantOldest(t, s, hr, c[5], false, 0)

	policies := &knowledge.Integration{ID: "pol", Pattern: knowledge.PatternHybrid,
		Scope: knowledge.Scope{Classes: []knowledge.Class{knowledge.ClassPolicy}}}
	wantOldest(t, s, policies, 0, true, c[1])
	wantOldest(t, s, policies, c[1], true, 0)

	runbooks := &knowledge.Integration{ID: "rb", Pattern: knowledge.PatternHybrid,
		Scope: knowledge.Scope{Classes: []knowledge.Class{knowledge.ClassRunbook}}}
	wantOldest(t, s, runbooks, 0, true, c[3])
	wantOldest(t, s, runbooks, 0, false, c[0])
}

// testOldestLeaving checks that a change that moves a runbook out of a
// scope counts for that scope, also for hybrid, which pushes it although
// runbooks are not time-sensitive.
func testOldestLeaving(t *testing.T, s store.Store) {
	a := newArticle("moved")
	a.Collection = "hr"
	first := saveAt(t, s, a, 0)
	a.Collection = "ops"
	left := saveAt(t, s, a, 1)
	a.Body = "Edited outside."
	saveAt(t, s, a, 2)

	for _, pattern := range []knowledge.Pattern{knowledge.PatternPush, knowledge.PatternHybrid} {
		in := &knowledge.Integration{ID: "hr", Pattern: pattern, Scope: knowledge.Scope{Collections: []string{"hr"}}}
		wantOldest(t, s, in, first.Change.Cursor, true, left.Change.Cursor)
		wantOldest(t, s, in, first.Change.Cursor, false, left.Change.Cursor)
		wantOldest(t, s, in, left.Change.Cursor, false, 0)
	}
}

// testOldestOperations checks that an operations event counts as pushed
// only for a scope that names operations, as Integration.PushesChange
// decides, for push and for hybrid.
func testOldestOperations(t *testing.T, s store.Store) {
	ops := newArticle("outage")
	ops.Class = knowledge.ClassOperations
	ops.Collection = knowledge.OpsCollection
	event := saveAt(t, s, ops, 0)

	for _, pattern := range []knowledge.Pattern{knowledge.PatternPush, knowledge.PatternHybrid} {
		everything := &knowledge.Integration{ID: "all", Pattern: pattern}
		wantOldest(t, s, everything, 0, true, 0)
		wantOldest(t, s, everything, 0, false, event.Change.Cursor)
		channel := &knowledge.Integration{ID: "ops", Pattern: pattern,
			Scope: knowledge.Scope{Collections: []string{knowledge.OpsCollection}}}
		wantOldest(t, s, channel, 0, true, event.Change.Cursor)
	}
}
