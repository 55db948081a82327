package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/fulltext"
)

// runSearchMore runs the cases of phrase and prefix queries, facets,
// highlighting, cursor pagination and non-ASCII text.
func runSearchMore(t *testing.T, open opener) {
	subtest(t, "Phrase", open, testPhrase)
	subtest(t, "Prefix", open, testPrefix)
	subtest(t, "AnyTerm", open, testAnyTerm)
	subtest(t, "TitleFirst", open, testTitleFirst)
	subtest(t, "TextAndMetadataFilter", open, testTextAndMetadataFilter)
	subtest(t, "Facets", open, testFacets)
	subtest(t, "SnippetHTMLSafe", open, testSnippetHTMLSafe)
	subtest(t, "TiesByID", open, testTiesByID)
	subtest(t, "CursorStable", open, testCursorStable)
	subtest(t, "CursorListStable", open, testCursorListStable)
	subtest(t, "CursorListPastSearchDepth", open, testCursorListPastSearchDepth)
	subtest(t, "CursorRejected", open, testCursorRejected)
	subtest(t, "Accents", open, testAccents)
	subtest(t, "CJK", open, testCJK)
	subtest(t, "Emoji", open, testEmoji)
	subtest(t, "CamelCase", open, testCamelCase)
}

// searchPage runs a query and fails the test on error.
func searchPage(t *testing.T, s store.Store, q store.SearchQuery) store.SearchResult {
	t.Helper()
	res, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("Search(%q, cursor %q): %v", q.Text, q.Cursor, err)
	}
	return res
}

// wantIDs fails the test unless a search for text finds exactly the ids,
// in any order.
func wantIDs(t *testing.T, s store.Store, text string, want ...string) {
	t.Helper()
	got := hitIDs(search(t, s, store.SearchQuery{Text: text}))
	slices.Sort(got)
	want = slices.Clone(want)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("Search(%q) = %v, want %v", text, got, want)
	}
}

func saveBody(t *testing.T, s store.Store, id, title, body string, minute int) {
	t.Helper()
	a := newArticle(id)
	a.Title = title
	a.Body = body
	saveAt(t, s, a, minute)
}

func testPhrase(t *testing.T, s store.Store) {
	saveBody(t, s, "apart", "Node alerts", "Alert fires when the disk is full of logs.", 0)
	saveBody(t, s, "together", "Node alerts", "Disk full alert on a node.", 1)
	saveBody(t, s, "punct", "Node alerts", "Check the disk: full, again.", 2)

	wantIDs(t, s, `"disk full"`, "together", "punct")
	wantIDs(t, s, `"DISK FULL"`, "together", "punct")
	wantIDs(t, s, `disk full`, "apart", "together", "punct")
	wantIDs(t, s, `"full disk"`)
	// A phrase and a word must both match.
	wantIDs(t, s, `"disk full" alert`, "together")
	// An unmatched quote runs to the end of the text.
	wantIDs(t, s, `logs "disk is full`, "apart")

	hits := search(t, s, store.SearchQuery{Text: `"disk full"`})
	for _, h := range hits {
		if h.ID == "together" && !strings.Contains(h.Snippet, "[Disk full]") {
			t.Errorf("phrase snippet = %q, want the phrase marked as one, [Disk full]", h.Snippet)
		}
	}
}

func testPrefix(t *testing.T, s store.Store) {
	saveBody(t, s, "rotate", "Keys", "Rotate the signing keys.", 0)
	saveBody(t, s, "rotation", "Certificates", "Certificate rotation is monthly.", 1)
	saveBody(t, s, "rotating", "Logs", "Rotating logs keeps disks free.", 2)
	saveBody(t, s, "rotary", "Phones", "The rotary phone is retired.", 3)

	wantIDs(t, s, "rotat*", "rotate", "rotation", "rotating")
	wantIDs(t, s, "ROTAT*", "rotate", "rotation", "rotating")
	wantIDs(t, s, "rota*", "rotate", "rotation", "rotating", "rotary")
	wantIDs(t, s, "rotat* keys", "rotate")
	// A prefix shorter than fulltext.MinPrefixRunes is searched as a word.
	wantIDs(t, s, "ro*")
	// A quoted phrase may end in a prefix.
	wantIDs(t, s, `"certificate rot"*`, "rotation")

	hits := search(t, s, store.SearchQuery{Text: "rotat*"})
	for _, h := range hits {
		if h.ID == "rotating" && !strings.Contains(h.Snippet, "[Rotating]") {
			t.Errorf("prefix snippet = %q, want the whole word marked, [Rotating]", h.Snippet)
		}
		if !slices.Equal(h.Matched, []string{"rotat"}) {
			t.Errorf("hit %s matched = %q, want [rotat]", h.ID, h.Matched)
		}
	}
}

func testAnyTerm(t *testing.T, s store.Store) {
	saveBody(t, s, "both", "Database failover", "Promote the replica.", 0)
	saveBody(t, s, "one", "Network failover", "Switch the uplink.", 1)
	saveBody(t, s, "none", "Coffee", "Descale monthly.", 2)

	// All terms match only "both", but Any ranks every article with one.
	hits := search(t, s, store.SearchQuery{Text: "failover replica", Any: true})
	if got := hitIDs(hits); !slices.Equal(got, []string{"both", "one"}) {
		t.Errorf("any-term hits = %v, want [both one], the article with both terms first", got)
	}
	if got := hitIDs(search(t, s, store.SearchQuery{Text: "failover replica"})); !slices.Equal(got, []string{"both"}) {
		t.Errorf("all-terms hits = %v, want [both]", got)
	}
}

func testTextAndMetadataFilter(t *testing.T, s store.Store) {
	for i, region := range []string{"eu", "us", "eu"} {
		a := newArticle(fmt.Sprintf("r%d", i))
		a.Body = "Failover steps."
		a.Metadata = map[string]string{"region": region, "team.name": "sre"}
		a.Tags = []string{"Database"}
		saveAt(t, s, a, i)
	}
	hits := search(t, s, store.SearchQuery{Text: "failover", Filters: []knowledge.Scope{
		{Metadata: map[string]string{"region": "eu", "team.name": "sre"}, Tags: []string{"database"}},
	}})
	got := hitIDs(hits)
	slices.Sort(got)
	if !slices.Equal(got, []string{"r0", "r2"}) {
		t.Errorf("filtered hits = %v, want [r0 r2]", got)
	}
	for _, h := range hits {
		if h.Metadata["region"] != "eu" || !slices.Equal(h.Tags, []string{"database"}) || h.Collection != "ops" {
			t.Errorf("hit %s = metadata %v, tags %v, collection %q; want region eu, [database], ops", h.ID, h.Metadata, h.Tags, h.Collection)
		}
	}
}

func testFacets(t *testing.T, s store.Store) {
	seed := []struct {
		id         string
		collection string
		class      knowledge.Class
		tags       []string
		body       string
	}{
		{"a", "ops", knowledge.ClassRunbook, []string{"db", "linux"}, "Failover of the primary."},
		{"b", "ops", knowledge.ClassRunbook, []string{"db"}, "Failover drill."},
		{"c", "hr", knowledge.ClassPolicy, []string{"linux"}, "Failover of payroll."},
		{"d", "ops", knowledge.ClassReference, []string{"db"}, "Glossary."},
	}
	for i, a := range seed {
		art := newArticle(a.id)
		art.Collection, art.Class, art.Tags, art.Body = a.collection, a.class, a.tags, a.body
		saveAt(t, s, art, i)
	}
	fc := func(pairs ...any) []store.FacetCount {
		out := []store.FacetCount{}
		for i := 0; i < len(pairs); i += 2 {
			out = append(out, store.FacetCount{Value: pairs[i].(string), Count: int64(pairs[i+1].(int))})
		}
		return out
	}
	check := func(name string, got *store.Facets, want store.Facets) {
		t.Helper()
		if got == nil {
			t.Errorf("%s: facets are nil, want %+v", name, want)
			return
		}
		if !slices.Equal(got.Classes, want.Classes) || !slices.Equal(got.Collections, want.Collections) || !slices.Equal(got.Tags, want.Tags) {
			t.Errorf("%s: facets = %+v, want %+v", name, *got, want)
		}
	}

	// Facets count every match, not only the page of one hit.
	res := searchPage(t, s, store.SearchQuery{Text: "failover", Facets: true, Limit: 1})
	check("text", res.Facets, store.Facets{
		Classes:     fc("runbook", 2, "policy", 1),
		Collections: fc("ops", 2, "hr", 1),
		Tags:        fc("db", 2, "linux", 2),
	})
	res = searchPage(t, s, store.SearchQuery{Text: "failover", Facets: true, Filters: []knowledge.Scope{{Collections: []string{"ops"}}}})
	check("text in scope", res.Facets, store.Facets{
		Classes:     fc("runbook", 2),
		Collections: fc("ops", 2),
		Tags:        fc("db", 2, "linux", 1),
	})
	res = searchPage(t, s, store.SearchQuery{Facets: true})
	check("no text", res.Facets, store.Facets{
		Classes:     fc("runbook", 2, "policy", 1, "reference", 1),
		Collections: fc("ops", 3, "hr", 1),
		Tags:        fc("db", 3, "linux", 2),
	})
	if res := searchPage(t, s, store.SearchQuery{Text: "failover"}); res.Facets != nil {
		t.Errorf("facets without asking = %+v, want nil", res.Facets)
	}
	res = searchPage(t, s, store.SearchQuery{Text: "🚨", Facets: true})
	check("no terms", res.Facets, store.Facets{})
}

func testSnippetHTMLSafe(t *testing.T, s store.Store) {
	saveBody(t, s, "xss", "Gateway <b>timeouts</b>",
		`Never paste <script>alert("x")</script> & restart the fox service.`, 0)

	hits := search(t, s, store.SearchQuery{Text: "fox"})
	if len(hits) != 1 {
		t.Fatalf("hits = %v, want [xss]", hitIDs(hits))
	}
	h := hits[0]
	for _, want := range []string{"<mark>fox</mark>", "&lt;script&gt;", "&amp;"} {
		if !strings.Contains(h.SnippetHTML, want) {
			t.Errorf("snippet_html = %q, want it to contain %q", h.SnippetHTML, want)
		}
	}
	if strings.Contains(h.SnippetHTML, "<script") || strings.Contains(h.SnippetHTML, `"x"`) {
		t.Errorf("snippet_html = %q holds unescaped article markup", h.SnippetHTML)
	}
	if !strings.Contains(h.Snippet, "[fox]") || !strings.Contains(h.Snippet, "<script>") {
		t.Errorf("snippet = %q, want plain text with [fox] and the text as written", h.Snippet)
	}

	hits = search(t, s, store.SearchQuery{Text: "gateway"})
	if len(hits) != 1 {
		t.Fatalf("title search hits = %v, want [xss]", hitIDs(hits))
	}
	if want := "<mark>Gateway</mark> &lt;b&gt;timeouts&lt;/b&gt;"; hits[0].SnippetHTML != want {
		t.Errorf("title snippet_html = %q, want %q", hits[0].SnippetHTML, want)
	}

	hits = search(t, s, store.SearchQuery{Text: "", Limit: 1})
	if len(hits) != 1 || strings.Contains(hits[0].SnippetHTML, "<script") || !strings.Contains(hits[0].SnippetHTML, "&lt;script&gt;") {
		t.Errorf("listing snippet_html = %+v, want the body start escaped", hits)
	}
}

// pageAll pages through a query with the given page size. Between pages
// it calls between with the page number, so the test can write articles.
func pageAll(t *testing.T, s store.Store, q store.SearchQuery, between func(page int)) []string {
	t.Helper()
	var ids []string
	for page := 0; ; page++ {
		if page > 100 {
			t.Fatal("paging did not end after 100 pages")
		}
		res := searchPage(t, s, q)
		if len(res.Hits) > q.Limit {
			t.Fatalf("page %d has %d hits, want at most %d", page, len(res.Hits), q.Limit)
		}
		ids = append(ids, hitIDs(res.Hits)...)
		if res.Next == "" {
			return ids
		}
		if len(res.Hits) == 0 {
			t.Fatalf("page %d is empty but has a next cursor", page)
		}
		between(page)
		q.Cursor = res.Next
	}
}

// wantSameHits fails the test unless got holds every id of want once.
func wantSameHits(t *testing.T, name string, got, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("%s: %s returned %d times", name, id, n)
		}
	}
	for _, id := range want {
		if seen[id] == 0 {
			t.Errorf("%s: %s skipped", name, id)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d hits, want %d: %v", name, len(got), len(want), got)
	}
}

func testCursorStable(t *testing.T, s store.Store) {
	// Matches of different strength and length, and some exact ties.
	for i := range 23 {
		body := strings.Repeat("checklist ", i%4+1) + strings.Repeat("filler words here ", i%7)
		saveBody(t, s, fmt.Sprintf("c%02d", i), "Checks", body, i)
	}
	q := store.SearchQuery{Text: "checklist", Limit: 5}
	want := hitIDs(search(t, s, store.SearchQuery{Text: "checklist", Limit: 100}))
	if len(want) != 23 {
		t.Fatalf("one page of all hits has %d, want 23", len(want))
	}

	// Without writes, the pages are the single ranking cut in pieces.
	got := pageAll(t, s, q, func(int) {})
	if !slices.Equal(got, want) {
		t.Errorf("pages without writes = %v, want %v", got, want)
	}

	// Unrelated writes between pages: a new article, an edit, an archive,
	// and a long article that changes the average length BM25 uses.
	minute := 100
	got = pageAll(t, s, q, func(page int) {
		minute++
		switch page % 4 {
		case 0:
			saveBody(t, s, fmt.Sprintf("new%d", page), "Coffee", "Descale the machine.", minute)
		case 1:
			saveBody(t, s, "new0", "Coffee", "Descale the machine twice.", minute)
		case 2:
			a := newArticle("new0")
			a.Title, a.Body, a.Status = "Coffee", "Descale the machine twice.", knowledge.StatusArchived
			saveAt(t, s, a, minute)
		default:
			saveBody(t, s, fmt.Sprintf("long%d", page), "Essay", strings.Repeat("unrelated prose ", 500), minute)
		}
	})
	wantSameHits(t, "pages with unrelated writes", got, want)

	// A cursor also pages a query whose first page fell back to any term.
	q = store.SearchQuery{Text: "checklist nonexistentword", Limit: 4}
	got = pageAll(t, s, q, func(int) {})
	wantSameHits(t, "any-term pages", got, want)
}

func testTiesByID(t *testing.T, s store.Store) {
	var want []string
	for _, i := range []int{7, 3, 11, 0, 9, 1, 5, 10, 2, 8, 4, 6} {
		id := fmt.Sprintf("tie%02d", i)
		saveBody(t, s, id, "Same", "Identical body about tides.", i)
	}
	for i := range 12 {
		want = append(want, fmt.Sprintf("tie%02d", i))
	}
	got := pageAll(t, s, store.SearchQuery{Text: "tides", Limit: 5}, func(int) {})
	if !slices.Equal(got, want) {
		t.Errorf("equal scores paged = %v, want ids in ascending order %v", got, want)
	}
}

func testCursorListStable(t *testing.T, s store.Store) {
	var want []string
	for i := range 10 {
		id := fmt.Sprintf("l%02d", i)
		saveBody(t, s, id, "Listed", "Listed article.", i)
		want = append(want, id)
	}
	minute := 100
	got := pageAll(t, s, store.SearchQuery{Limit: 3}, func(page int) {
		minute++
		saveBody(t, s, fmt.Sprintf("later%d", page), "Later", "Written between pages.", minute)
	})
	wantSameHits(t, "listing pages with writes", got, want)
}

// testCursorListPastSearchDepth pages through a listing without text of
// more articles than a search with text pages through. A listing pages
// by update time and id, so it has no depth limit, and a client that
// reloads a whole scope relies on that.
func testCursorListPastSearchDepth(t *testing.T, s store.Store) {
	var want []string
	for i := range fulltext.MaxDepth + 50 {
		id := fmt.Sprintf("deep%04d", i)
		saveBody(t, s, id, "Listed", "Listed article.", i%7)
		want = append(want, id)
	}
	got := pageAll(t, s, store.SearchQuery{Limit: 100}, func(int) {})
	wantSameHits(t, "listing past the search depth", got, want)
}

func testCursorRejected(t *testing.T, s store.Store) {
	for i := range 3 {
		saveBody(t, s, fmt.Sprintf("p%d", i), "Paged", "Paged article.", i)
	}
	res := searchPage(t, s, store.SearchQuery{Text: "paged", Limit: 1})
	if res.Next == "" {
		t.Fatal("first page of 3 hits with limit 1 has no next cursor")
	}
	list := searchPage(t, s, store.SearchQuery{Limit: 1})
	cases := []struct {
		name string
		q    store.SearchQuery
	}{
		{"garbage", store.SearchQuery{Text: "paged", Cursor: "not a cursor"}},
		{"truncated", store.SearchQuery{Text: "paged", Cursor: res.Next[:len(res.Next)/2]}},
		{"other text", store.SearchQuery{Text: "article", Cursor: res.Next}},
		{"other filters", store.SearchQuery{Text: "paged", Cursor: res.Next, Filters: []knowledge.Scope{{Collections: []string{"hr"}}}}},
		{"search cursor for a listing", store.SearchQuery{Cursor: res.Next}},
		{"listing cursor for a search", store.SearchQuery{Text: "paged", Cursor: list.Next}},
	}
	for _, tc := range cases {
		_, err := s.Search(context.Background(), tc.q)
		if !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("%s: error = %v, want store.ErrBadCursor", tc.name, err)
		}
	}
	// Another limit is fine.
	if res := searchPage(t, s, store.SearchQuery{Text: "paged", Cursor: res.Next, Limit: 5}); len(res.Hits) != 2 || res.Next != "" {
		t.Errorf("second page with a larger limit = %v, next %q; want 2 hits and no next", hitIDs(res.Hits), res.Next)
	}
}

func testAccents(t *testing.T, s store.Store) {
	saveBody(t, s, "cafe", "Café crème procedure", "Clean the Straße-side terrace of the café before opening. Ørsted Łódź.", 0)
	saveBody(t, s, "plain", "Cafe rules", "No accents here.", 1)

	for _, q := range []string{"cafe", "CAFÉ", "café", "Cafe"} {
		wantIDs(t, s, q, "cafe", "plain")
	}
	wantIDs(t, s, "creme", "cafe")
	wantIDs(t, s, "strasse", "cafe")
	wantIDs(t, s, "orsted lodz", "cafe")
	wantIDs(t, s, "crème procedure", "cafe")

	hits := search(t, s, store.SearchQuery{Text: "creme"})
	if len(hits) == 1 && !strings.Contains(hits[0].Snippet, "[crème]") {
		t.Errorf("snippet = %q, want the accented word marked as written, [crème]", hits[0].Snippet)
	}
}

func testCJK(t *testing.T, s store.Store) {
	saveBody(t, s, "zh", "数据库故障切换", "数据库故障切换步骤：先确认主库状态，然后提升副本。", 0)
	saveBody(t, s, "ja", "ディスク容量", "ディスク容量が不足しています。ログを削除してください。", 1)
	saveBody(t, s, "ko", "데이터베이스 장애 조치", "데이터베이스 장애가 발생하면 복제본을 승격합니다.", 2)
	saveBody(t, s, "en", "Database failover", "Promote the replica of the 数据 store.", 3)
	// The prolonged sound mark ー belongs to the katakana word around it:
	// サーバー must not fall apart into サ, ー and バ, which バスでサッカー has.
	saveBody(t, s, "server", "サーバー", "東京のサーバーが停止しました。", 4)
	saveBody(t, s, "bus", "バス", "バスでサッカーを見に行く。", 5)

	wantIDs(t, s, "故障", "zh")
	wantIDs(t, s, "数据库", "zh")
	wantIDs(t, s, "故障切换", "zh")
	wantIDs(t, s, "库故", "zh")
	wantIDs(t, s, "数据", "zh", "en")
	wantIDs(t, s, "障", "zh")
	wantIDs(t, s, "副本", "zh")
	wantIDs(t, s, "切数")
	wantIDs(t, s, "容量", "ja")
	wantIDs(t, s, "ディスク", "ja")
	wantIDs(t, s, "不足", "ja")
	wantIDs(t, s, "장애", "ko")
	wantIDs(t, s, "데이터", "ko")
	wantIDs(t, s, "数据 replica", "en")
	wantIDs(t, s, `"切换步骤"`, "zh")
	wantIDs(t, s, "サーバー", "server")
	wantIDs(t, s, "サッカー", "bus")
	wantIDs(t, s, "データ")

	hits := search(t, s, store.SearchQuery{Text: "提升副本"})
	if len(hits) != 1 || !strings.Contains(hits[0].Snippet, "[提升副本]") {
		t.Errorf("CJK snippet = %+v, want [提升副本] marked", hits)
	}
}

func testEmoji(t *testing.T, s store.Store) {
	saveBody(t, s, "bridge", "🚨 Incident bridge", "Open the bridge 👩‍💻 and page the owner🔥now.", 0)
	for _, q := range []string{"🚨", "🔥🔥🔥", "👩‍💻", "🚨 incident", "incident🚨", "🇪🇺", "\u200d", "\ufe0f", "🚨*", `"🚨"`} {
		if _, err := s.Search(context.Background(), store.SearchQuery{Text: q, Facets: true}); err != nil {
			t.Errorf("Search(%q): %v", q, err)
		}
	}
	wantIDs(t, s, "🚨")
	wantIDs(t, s, "🚨 incident", "bridge")
	wantIDs(t, s, "incident🚨", "bridge")
	wantIDs(t, s, "owner", "bridge")
	wantIDs(t, s, "now", "bridge")
}

func testCamelCase(t *testing.T, s store.Store) {
	saveBody(t, s, "crash", "KubePodCrashLooping", "A pod restarts again and again.", 0)
	saveBody(t, s, "http", "HTTPServerErrors", "The etcdGRPCRequestsSlow alert fires too.", 1)

	wantIDs(t, s, "KubePodCrashLooping", "crash")
	wantIDs(t, s, "crash looping", "crash")
	wantIDs(t, s, "pod crash", "crash")
	wantIDs(t, s, "server errors", "http")
	wantIDs(t, s, "grpc requests", "http")

	hits := search(t, s, store.SearchQuery{Text: "looping"})
	if len(hits) != 1 || hits[0].Snippet != "["+"KubePodCrashLooping"+"]" {
		t.Errorf("camel-case snippet = %+v, want the title with the word marked", hits)
	}
}
