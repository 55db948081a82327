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

func runArticles(t *testing.T, open opener) {
	subtest(t, "VersionsCountUp", open, testVersionsCountUp)
	subtest(t, "UnchangedContent", open, testUnchangedContent)
	subtest(t, "IfVersion", open, testIfVersion)
	subtest(t, "CreateOnly", open, testCreateOnly)
	subtest(t, "MustExist", open, testMustExist)
	subtest(t, "Archive", open, testArchive)
	subtest(t, "ArchiveDuringWrites", open, testArchiveDuringWrites)
	subtest(t, "ChangeTypes", open, testChangeTypes)
	subtest(t, "NewArticleStatusTypes", open, testNewArticleStatusTypes)
	subtest(t, "DefaultCommitTime", open, testDefaultCommitTime)
	subtest(t, "FieldsRoundTrip", open, testFieldsRoundTrip)
	subtest(t, "NonASCIIRoundTrip", open, testNonASCIIRoundTrip)
	subtest(t, "EmptyListsReadEmpty", open, testEmptyListsReadEmpty)
	subtest(t, "CountArticles", open, testCountArticles)
	subtest(t, "UnknownArticle", open, testUnknownArticle)
	subtest(t, "ArticleMeta", open, testArticleMeta)
}

func testVersionsCountUp(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newArticle("rb")
	var results []store.SaveResult
	for i := range 3 {
		a.Body = "Body number " + string(rune('A'+i)) + "."
		results = append(results, saveAt(t, s, a, i))
	}

	for i, res := range results {
		want := int64(i + 1)
		if res.Article.Version != want {
			t.Errorf("save %d: version = %d, want %d", i, res.Article.Version, want)
		}
		if !res.Changed {
			t.Errorf("save %d: Changed = false, want true", i)
		}
		if res.Created != (i == 0) {
			t.Errorf("save %d: Created = %v, want %v", i, res.Created, i == 0)
		}
		if res.Change.Version != want || res.Change.ArticleID != "rb" {
			t.Errorf("save %d: change is for %s@%d, want rb@%d", i, res.Change.ArticleID, res.Change.Version, want)
		}
		if res.Change.Article.Version != want || res.Change.Article.Body != res.Article.Body {
			t.Errorf("save %d: change carries version %d %q, want the saved version", i, res.Change.Article.Version, res.Change.Article.Body)
		}
		wantTime(t, "Change.Time", res.Change.Time, at(i))
		wantTime(t, "CreatedAt", res.Article.CreatedAt, at(0))
		wantTime(t, "UpdatedAt", res.Article.UpdatedAt, at(i))
		if i > 0 && res.Change.Cursor <= results[i-1].Change.Cursor {
			t.Errorf("save %d: cursor %d is not after %d", i, res.Change.Cursor, results[i-1].Change.Cursor)
		}
	}
	if results[0].Change.Cursor < 1 {
		t.Errorf("first cursor = %d, want at least 1", results[0].Change.Cursor)
	}

	cur, err := s.GetArticle(ctx, "rb")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version != 3 || cur.Body != "Body number C." {
		t.Errorf("GetArticle = version %d %q, want version 3", cur.Version, cur.Body)
	}

	versions, err := s.ListVersions(ctx, "rb")
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 3 {
		t.Fatalf("ListVersions returned %d versions, want 3", len(versions))
	}
	for i, v := range versions {
		if v.Version != int64(i+1) {
			t.Errorf("ListVersions[%d].Version = %d, want %d", i, v.Version, i+1)
		}
		if v.Body != results[i].Article.Body {
			t.Errorf("ListVersions[%d].Body = %q, want %q", i, v.Body, results[i].Article.Body)
		}
		wantTime(t, "ListVersions CreatedAt", v.CreatedAt, at(0))
		wantTime(t, "ListVersions UpdatedAt", v.UpdatedAt, at(i))
	}

	v1, err := s.GetArticleVersion(ctx, "rb", 1)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != 1 || v1.Body != "Body number A." {
		t.Errorf("GetArticleVersion(1) = version %d %q, want version 1 %q", v1.Version, v1.Body, "Body number A.")
	}
}

func testUnchangedContent(t *testing.T, s store.Store) {
	a := newArticle("rb")
	a.Tags = []string{"dns", "edge"}
	first := saveAt(t, s, a, 0)
	headBefore := head(t, s)

	// The same content with its tags in another order and case is equal
	// after normalization.
	a.Tags = []string{"Edge", "dns", "edge"}
	res := saveAt(t, s, a, 1)

	if res.Changed {
		t.Error("Changed = true for unchanged content, want false")
	}
	if res.Created {
		t.Error("Created = true for an existing article, want false")
	}
	if res.Article.Version != 1 {
		t.Errorf("Article.Version = %d, want 1", res.Article.Version)
	}
	wantTime(t, "UpdatedAt", res.Article.UpdatedAt, first.Article.UpdatedAt)
	if res.Change.Cursor != 0 {
		t.Errorf("Change.Cursor = %d for no change, want 0", res.Change.Cursor)
	}
	if got := versionCount(t, s, "rb"); got != 1 {
		t.Errorf("version count = %d, want 1", got)
	}
	if got := head(t, s); got != headBefore {
		t.Errorf("head cursor moved from %d to %d", headBefore, got)
	}
}

func testIfVersion(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newArticle("rb")
	saveAt(t, s, a, 0)
	headBefore := head(t, s)

	a.Body = "A concurrent edit."
	a.Normalize()
	_, err := s.SaveArticle(ctx, a, store.SaveOptions{IfVersion: 2, Now: at(1)})
	wantErr(t, "IfVersion 2 on version 1", err, store.ErrConflict)
	if got := versionCount(t, s, "rb"); got != 1 {
		t.Errorf("version count after conflict = %d, want 1", got)
	}
	if got := head(t, s); got != headBefore {
		t.Errorf("head cursor moved from %d to %d after a conflict", headBefore, got)
	}

	res, err := s.SaveArticle(ctx, a, store.SaveOptions{IfVersion: 1, Now: at(2)})
	if err != nil {
		t.Fatalf("IfVersion 1 on version 1: %v", err)
	}
	if res.Article.Version != 2 {
		t.Errorf("version after a matching IfVersion = %d, want 2", res.Article.Version)
	}

	// An article that does not exist has no version to match.
	missing := newArticle("missing")
	missing.Normalize()
	_, err = s.SaveArticle(ctx, missing, store.SaveOptions{IfVersion: 1})
	wantErr(t, "IfVersion on a missing article", err, store.ErrConflict)
	if got := versionCount(t, s, "missing"); got != 0 {
		t.Errorf("missing article has %d versions after a conflict, want 0", got)
	}
}

func testArchive(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newArticle("rb")
	a.Owner = "sre"
	a.Metadata = map[string]string{"team": "ops"}
	saveAt(t, s, a, 0)

	// Only the id is given; the content is the current version's.
	res, err := s.SaveArticle(ctx, knowledge.Article{ID: "rb"}, store.SaveOptions{Archive: true, IfVersion: 1, Now: at(1)})
	if err != nil {
		t.Fatalf("archive: %v", err)
	}
	got := res.Article
	if !res.Changed || got.Version != 2 || got.Status != knowledge.StatusArchived || res.Change.Type != knowledge.ChangeArchived {
		t.Errorf("archive: changed %v, version %d, status %q, change %q; want a version 2 archived by an archive change", res.Changed, got.Version, got.Status, res.Change.Type)
	}
	if got.Title != a.Title || got.Body != a.Body || got.Owner != "sre" || got.Metadata["team"] != "ops" {
		t.Errorf("archived content %+v, want the content of version 1", got)
	}

	// Archiving again changes nothing; a stale version conflicts, and a
	// missing article is not found.
	if res, err := s.SaveArticle(ctx, knowledge.Article{ID: "rb"}, store.SaveOptions{Archive: true, Now: at(2)}); err != nil || res.Changed {
		t.Errorf("second archive: changed %v, %v; want unchanged", res.Changed, err)
	}
	_, err = s.SaveArticle(ctx, knowledge.Article{ID: "rb"}, store.SaveOptions{Archive: true, IfVersion: 1, Now: at(3)})
	wantErr(t, "archive at a stale version", err, store.ErrConflict)
	_, err = s.SaveArticle(ctx, knowledge.Article{ID: "missing"}, store.SaveOptions{Archive: true})
	wantErr(t, "archive of a missing article", err, store.ErrNotFound)
	if got := versionCount(t, s, "rb"); got != 2 {
		t.Errorf("version count = %d, want 2", got)
	}
}

// testArchiveDuringWrites archives an article while other writers keep
// changing it. Each archive must succeed, because it reads the content it
// archives in its own transaction.
func testArchiveDuringWrites(t *testing.T, s store.Store) {
	ctx := context.Background()
	saveAt(t, s, newArticle("rb"), 0)
	const writers, archives = 3, 10
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				a := newArticle("rb")
				a.Body = fmt.Sprintf("Edit %d of writer %d.", i, w)
				a.Normalize()
				if _, err := s.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	for i := range archives {
		if _, err := s.SaveArticle(ctx, knowledge.Article{ID: "rb"}, store.SaveOptions{Archive: true}); err != nil {
			t.Errorf("archive %d during writes: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
}

func testCreateOnly(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newArticle("rb")
	res := save(t, s, a, store.SaveOptions{CreateOnly: true, Now: at(0)})
	if !res.Created {
		t.Error("CreateOnly on a new article: Created = false, want true")
	}
	headBefore := head(t, s)

	a.Body = "Different content."
	a.Normalize()
	_, err := s.SaveArticle(ctx, a, store.SaveOptions{CreateOnly: true, Now: at(1)})
	wantErr(t, "CreateOnly on an existing article", err, store.ErrConflict)
	if got := versionCount(t, s, "rb"); got != 1 {
		t.Errorf("version count after conflict = %d, want 1", got)
	}
	if got := head(t, s); got != headBefore {
		t.Errorf("head cursor moved from %d to %d after a conflict", headBefore, got)
	}
}

func testMustExist(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newArticle("rb")
	a.Normalize()
	_, err := s.SaveArticle(ctx, a, store.SaveOptions{MustExist: true})
	wantErr(t, "MustExist on a missing article", err, store.ErrNotFound)
	_, err = s.GetArticle(ctx, "rb")
	wantErr(t, "GetArticle after a rejected MustExist", err, store.ErrNotFound)
	if got := head(t, s); got != 0 {
		t.Errorf("head cursor = %d after a rejected write, want 0", got)
	}

	saveAt(t, s, a, 0)
	a.Body = "Edited."
	res := save(t, s, a, store.SaveOptions{MustExist: true, Now: at(1)})
	if res.Article.Version != 2 {
		t.Errorf("MustExist on an existing article: version = %d, want 2", res.Article.Version)
	}
}

func testChangeTypes(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newArticle("rb")
	steps := []struct {
		name   string
		edit   func(a *knowledge.Article)
		status knowledge.Status
		want   knowledge.ChangeType
	}{
		{"create", func(a *knowledge.Article) {}, knowledge.StatusPublished, knowledge.ChangeCreated},
		{"edit", func(a *knowledge.Article) { a.Body = "Edited." }, knowledge.StatusPublished, knowledge.ChangeUpdated},
		{"deprecate", func(a *knowledge.Article) {}, knowledge.StatusDeprecated, knowledge.ChangeDeprecated},
		{"edit deprecated", func(a *knowledge.Article) { a.Body = "Edited again." }, knowledge.StatusDeprecated, knowledge.ChangeUpdated},
		{"archive", func(a *knowledge.Article) {}, knowledge.StatusArchived, knowledge.ChangeArchived},
		{"republish", func(a *knowledge.Article) {}, knowledge.StatusPublished, knowledge.ChangeUpdated},
		{"archive again", func(a *knowledge.Article) {}, knowledge.StatusArchived, knowledge.ChangeArchived},
	}
	for i, step := range steps {
		step.edit(&a)
		a.Status = step.status
		res := saveAt(t, s, a, i)
		if res.Change.Type != step.want {
			t.Errorf("%s: change type = %q, want %q", step.name, res.Change.Type, step.want)
		}
		if res.Article.Status != step.status {
			t.Errorf("%s: status = %q, want %q", step.name, res.Article.Status, step.status)
		}
	}

	// GetArticle returns archived articles too.
	got, err := s.GetArticle(ctx, "rb")
	if err != nil {
		t.Fatalf("GetArticle of an archived article: %v", err)
	}
	if got.Status != knowledge.StatusArchived {
		t.Errorf("GetArticle status = %q, want archived", got.Status)
	}

	changes, _ := readAll(t, s, 0, 100)
	if len(changes) != len(steps) {
		t.Fatalf("change log has %d entries, want %d", len(changes), len(steps))
	}
	for i, c := range changes {
		if c.Type != steps[i].want {
			t.Errorf("change log entry %d (%s): type = %q, want %q", i, steps[i].name, c.Type, steps[i].want)
		}
	}
}

// testNewArticleStatusTypes checks that an article whose first version is
// already deprecated or archived enters the log as a deprecation or an
// archival, which hybrid integrations push, rather than as a creation.
func testNewArticleStatusTypes(t *testing.T, s store.Store) {
	for i, tc := range []struct {
		status knowledge.Status
		want   knowledge.ChangeType
	}{
		{knowledge.StatusPublished, knowledge.ChangeCreated},
		{knowledge.StatusDeprecated, knowledge.ChangeDeprecated},
		{knowledge.StatusArchived, knowledge.ChangeArchived},
	} {
		a := newArticle("new-" + string(tc.status))
		a.Status = tc.status
		res := saveAt(t, s, a, i)
		if !res.Created || res.Change.Type != tc.want {
			t.Errorf("new %s article: created %v, change type %q; want created with type %q", tc.status, res.Created, res.Change.Type, tc.want)
		}
	}
	changes, _ := readAll(t, s, 0, 100)
	got := make([]knowledge.ChangeType, len(changes))
	for i, c := range changes {
		got[i] = c.Type
	}
	want := []knowledge.ChangeType{knowledge.ChangeCreated, knowledge.ChangeDeprecated, knowledge.ChangeArchived}
	if !slices.Equal(got, want) {
		t.Errorf("change log types = %v, want %v", got, want)
	}
}

func testDefaultCommitTime(t *testing.T, s store.Store) {
	before := time.Now()
	res := save(t, s, newArticle("rb"), store.SaveOptions{})
	after := time.Now()

	// Databases may round to the microsecond, so allow that much slack.
	slack := time.Millisecond
	got := res.Article.UpdatedAt
	if got.Before(before.Add(-slack)) || got.After(after.Add(slack)) {
		t.Errorf("UpdatedAt = %v, want between %v and %v", got, before, after)
	}
	if got.Location() != time.UTC {
		t.Errorf("UpdatedAt has location %v, want UTC", got.Location())
	}
	stored, err := s.GetArticle(context.Background(), "rb")
	if err != nil {
		t.Fatal(err)
	}
	wantTime(t, "stored UpdatedAt", stored.UpdatedAt, got)
	wantTime(t, "stored CreatedAt", stored.CreatedAt, got)
}

func testFieldsRoundTrip(t *testing.T, s store.Store) {
	a := knowledge.Article{
		ID:         "Policy.Remote-Work_2",
		Title:      "Remote work",
		Body:       "Line one.\n\n\tLine two <b>&amp;</b> \"quoted\" 'single' \\ back-slash.\n",
		Collection: "people",
		Class:      knowledge.ClassPolicy,
		Tags:       []string{"hr", "remote", "a<b&c"},
		Metadata:   map[string]string{"owner": "people-team", "region": "emea", "key.with.dots": "v\"1"},
		Status:     knowledge.StatusDeprecated,
	}
	a.Normalize()
	res := saveAt(t, s, a, 0)
	got, err := s.GetArticle(context.Background(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	for name, article := range map[string]knowledge.Article{"SaveResult": res.Article, "GetArticle": got} {
		if article.ID != a.ID || article.Title != a.Title || article.Body != a.Body ||
			article.Collection != a.Collection || article.Class != a.Class || article.Status != a.Status {
			t.Errorf("%s = %+v, want %+v", name, article, a)
		}
		if !slices.Equal(article.Tags, a.Tags) {
			t.Errorf("%s tags = %q, want %q", name, article.Tags, a.Tags)
		}
		if !maps.Equal(article.Metadata, a.Metadata) {
			t.Errorf("%s metadata = %q, want %q", name, article.Metadata, a.Metadata)
		}
	}

	// Empty tags and metadata come back as empty, not nil, as Normalize
	// leaves them.
	saveAt(t, s, newArticle("plain"), 1)
	plain, err := s.GetArticle(context.Background(), "plain")
	if err != nil {
		t.Fatal(err)
	}
	if plain.Tags == nil || len(plain.Tags) != 0 {
		t.Errorf("tags = %#v, want an empty slice", plain.Tags)
	}
	if plain.Metadata == nil || len(plain.Metadata) != 0 {
		t.Errorf("metadata = %#v, want an empty map", plain.Metadata)
	}
}

func testNonASCIIRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newArticle("incident-cafe")
	a.Title = "Incident 🚨 playbook – naïve café"
	a.Body = "Page the owner 👩‍💻\u00a0at once.\u00a0Then brief the café staff.\u00a0"
	a.Metadata = map[string]string{"städte": "Zürich – Genève"}
	a.Tags = []string{"ünïcode", "🚨"}
	saveAt(t, s, a, 0)

	got, err := s.GetArticle(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Title != a.Title {
		t.Errorf("title = %q, want %q", got.Title, a.Title)
	}
	if got.Body != a.Body {
		t.Errorf("body = %q, want %q", got.Body, a.Body)
	}
	if got.Metadata["städte"] != "Zürich – Genève" {
		t.Errorf("metadata = %q, want städte: Zürich – Genève", got.Metadata)
	}
	if !slices.Equal(got.Tags, []string{"ünïcode", "🚨"}) {
		t.Errorf("tags = %q, want [ünïcode 🚨]", got.Tags)
	}

	for _, q := range []string{"naïve", "café", "playbook"} {
		res, err := s.Search(ctx, store.SearchQuery{Text: q})
		if err != nil {
			t.Fatalf("Search(%q): %v", q, err)
		}
		if hits := res.Hits; len(hits) != 1 || hits[0].Title != a.Title {
			t.Errorf("Search(%q) = %+v, want the article with its exact title", q, res.Hits)
		}
	}
}

func testCountArticles(t *testing.T, s store.Store) {
	ctx := context.Background()
	n, err := s.CountArticles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("empty store: CountArticles = %d, want 0", n)
	}

	for i, id := range []string{"a", "b", "c", "d"} {
		saveAt(t, s, newArticle(id), i)
	}
	deprecated := newArticle("c")
	deprecated.Status = knowledge.StatusDeprecated
	saveAt(t, s, deprecated, 10)
	archived := newArticle("d")
	archived.Status = knowledge.StatusArchived
	saveAt(t, s, archived, 11)

	n, err = s.CountArticles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("CountArticles = %d, want 3 (archived articles do not count)", n)
	}
}

func testUnknownArticle(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.GetArticle(ctx, "nope")
	wantErr(t, "GetArticle", err, store.ErrNotFound)
	_, err = s.GetArticleVersion(ctx, "nope", 1)
	wantErr(t, "GetArticleVersion of an unknown article", err, store.ErrNotFound)
	_, err = s.ListVersions(ctx, "nope")
	wantErr(t, "ListVersions", err, store.ErrNotFound)

	saveAt(t, s, newArticle("rb"), 0)
	_, err = s.GetArticleVersion(ctx, "rb", 2)
	wantErr(t, "GetArticleVersion of an unknown version", err, store.ErrNotFound)
}

// testEmptyListsReadEmpty saves an article without tags or metadata and
// checks that every read returns them empty rather than nil, so that the
// API writes [] and {} as its OpenAPI description requires.
func testEmptyListsReadEmpty(t *testing.T, s store.Store) {
	ctx := context.Background()
	save(t, s, newArticle("bare"), store.SaveOptions{})
	got, err := s.GetArticle(ctx, "bare")
	if err != nil {
		t.Fatal(err)
	}
	versions, err := s.ListVersions(ctx, "bare")
	if err != nil || len(versions) != 1 {
		t.Fatalf("ListVersions = %d versions, %v; want 1", len(versions), err)
	}
	for name, a := range map[string]knowledge.Article{"GetArticle": got, "ListVersions": versions[0]} {
		if a.Tags == nil || a.Metadata == nil {
			t.Errorf("%s: tags %#v, metadata %#v, want both empty and not nil", name, a.Tags, a.Metadata)
		}
	}
}
