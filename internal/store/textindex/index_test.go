package textindex

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store/fulltext"
)

// words is the vocabulary of the generated articles: some share prefixes,
// one is camel case, and "node" is common.
var words = []string{"node", "nodes", "notready", "disk", "diskpressure", "full", "pod", "crash", "looping",
	"etcd", "leader", "certificate", "rotate", "rotation", "rotated", "KubePodCrashLooping", "memory", "alert",
	"runbook", "restart", "network", "ovn", "database", "stale", "café"}

// model is the articles the index should hold, by id, with the version
// that holds them.
type model struct {
	articles map[string]*knowledge.Article
	seqs     map[string]int64
	analyzed map[string]*analyzed // filled by checkAll
}

func randomText(r *rand.Rand, n int) string {
	parts := make([]string, n)
	for i := range parts {
		// Node is three times as common as any other word.
		if r.IntN(8) == 0 {
			parts[i] = "node"
		} else {
			parts[i] = words[r.IntN(len(words))]
		}
	}
	return strings.Join(parts, " ")
}

func randomArticle(r *rand.Rand, id string) *knowledge.Article {
	a := &knowledge.Article{
		ID:         id,
		Title:      randomText(r, 1+r.IntN(3)),
		Body:       randomText(r, 5+r.IntN(60)),
		Collection: []string{"ops", "sec"}[r.IntN(2)],
		Class:      []knowledge.Class{knowledge.ClassRunbook, knowledge.ClassPolicy}[r.IntN(2)],
		Status:     knowledge.StatusPublished,
		Version:    1,
	}
	if r.IntN(2) == 0 {
		a.Tags = []string{words[r.IntN(len(words))]}
	}
	return a
}

// reference scores every article of the model for one query the slow
// way: each term's weighted count from the article's analyzed positions,
// with the index's own average length and document count.
func (ix *Index) reference(m *model, q Query) []Hit {
	last := colBody
	if q.Head {
		last = colTags
	}
	type scored struct {
		id    string
		w     []float64 // weighted count per term
		len   uint32
		score float64
	}
	var all []scored
	df := make([]int, len(q.Terms))
	for id := range m.articles {
		an := m.analyzed[id]
		keysOf := func(pred func(string) bool) []uint32 {
			var keys []uint32
			for _, t := range an.terms {
				if pred(t.term) {
					keys = append(keys, t.keys...)
				}
			}
			slices.Sort(keys)
			return keys
		}
		s := scored{id: id, w: make([]float64, len(q.Terms)), len: an.length}
		for ti, t := range q.Terms {
			keys := make([][]uint32, len(t.Tokens))
			for j, tok := range t.Tokens {
				prefix := t.Prefix && j == len(t.Tokens)-1
				keys[j] = keysOf(func(term string) bool {
					return term == tok || prefix && strings.HasPrefix(term, tok)
				})
			}
			s.w[ti] = phraseWeight(keys, last)
			if s.w[ti] > 0 {
				df[ti]++
			}
		}
		all = append(all, s)
	}
	var out []Hit
	for _, s := range all {
		a := m.articles[s.id]
		if !acceptAll(q.Filters, a) {
			continue
		}
		matched, score := 0, 0.0
		for ti := range q.Terms {
			if s.w[ti] > 0 {
				matched++
				score += idf(len(m.articles), df[ti]) * weight(s.w[ti], s.len, ix.avgLen())
			}
		}
		if matched == 0 || !q.Any && matched < len(q.Terms) {
			continue
		}
		out = append(out, Hit{Ranked: fulltext.Ranked{Seq: m.seqs[s.id], ID: s.id, Score: score}})
	}
	slices.SortFunc(out, func(a, b Hit) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func acceptAll(filters []knowledge.Scope, a *knowledge.Article) bool {
	for _, f := range filters {
		if !f.Matches(a) {
			return false
		}
	}
	return true
}

// near reports whether two scores are equal but for the order in which
// their terms were added.
func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// checkRank compares the index's n best with the reference's.
func checkRank(t *testing.T, ix *Index, m *model, q Query, n int) {
	t.Helper()
	got := ix.Rank(q, n)
	want := ix.reference(m, q)
	if len(got) != min(n, len(want)) {
		t.Fatalf("%s: %d hits, want %d", describe(q), len(got), min(n, len(want)))
	}
	byID := map[string]float64{}
	for _, w := range want {
		byID[w.ID] = w.Score
	}
	for i, h := range got {
		ref, ok := byID[h.ID]
		if !ok {
			t.Fatalf("%s: hit %q does not match", describe(q), h.ID)
		}
		if !near(h.Score, ref) {
			t.Fatalf("%s: %q scores %v, want %v", describe(q), h.ID, h.Score, ref)
		}
		if !near(h.Score, want[i].Score) {
			t.Fatalf("%s: hit %d is %q with %v, want %q with %v", describe(q), i, h.ID, h.Score, want[i].ID, want[i].Score)
		}
		if h.Seq != m.seqs[h.ID] || h.Article.ID != h.ID {
			t.Fatalf("%s: hit %q has version %d and article %q, want %d", describe(q), h.ID, h.Seq, h.Article.ID, m.seqs[h.ID])
		}
	}
	var visited []string
	ix.Each(q, func(a *knowledge.Article) { visited = append(visited, a.ID) })
	slices.Sort(visited)
	var ids []string
	for _, w := range want {
		ids = append(ids, w.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(visited, ids) {
		t.Fatalf("%s: Each visits %d articles, want %d", describe(q), len(visited), len(ids))
	}
}

func describe(q Query) string {
	var terms []string
	for _, t := range q.Terms {
		s := strings.Join(t.Tokens, " ")
		if len(t.Tokens) > 1 {
			s = `"` + s + `"`
		}
		if t.Prefix {
			s += "*"
		}
		terms = append(terms, s)
	}
	return fmt.Sprintf("query %v any=%v head=%v filters=%d", terms, q.Any, q.Head, len(q.Filters))
}

var queries = []string{
	"node", "disk full", `"disk full"`, "rot*", "pod crash looping", "crash", `"crash looping"`,
	"etcd leader network", "cafe", "node*", "kubepodcrashlooping", "memory alert runbook restart",
	"nothing", "ovn database stale", "certificate rotat*", `"node disk*"`,
}

// checkAll runs every query in every mode against the reference.
func checkAll(t *testing.T, ix *Index, m *model) {
	t.Helper()
	m.analyzed = map[string]*analyzed{}
	for id, a := range m.articles {
		an := analyze(a)
		m.analyzed[id] = &an
	}
	scopes := [][]knowledge.Scope{nil, {{Collections: []string{"ops"}}}, {{Tags: []string{"node", "disk"}}}}
	for _, text := range queries {
		terms := fulltext.Parse(text).Terms
		for _, any := range []bool{false, true} {
			for _, head := range []bool{false, true} {
				for _, f := range scopes {
					for _, n := range []int{3, 40} {
						checkRank(t, ix, m, Query{Terms: terms, Any: any, Head: head, Filters: f}, n)
					}
				}
			}
		}
	}
}

func TestRankMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ix := New()
	m := &model{articles: map[string]*knowledge.Article{}, seqs: map[string]int64{}}
	var docs []Doc
	for i := range 300 {
		a := randomArticle(r, fmt.Sprintf("a%03d", i))
		seq := int64(i + 1)
		m.articles[a.ID], m.seqs[a.ID] = a, seq
		docs = append(docs, Doc{Seq: seq, Article: a})
	}
	ix.Load(docs, 2)
	checkAll(t, ix, m)
}

// TestUpdatesMatchReference changes, archives and adds articles one at a
// time, enough for compactions, and checks the ranking after each round.
func TestUpdatesMatchReference(t *testing.T) {
	defer func(n int) { minCompact = n }(minCompact)
	minCompact = 1000
	r := rand.New(rand.NewPCG(3, 4))
	ix := New()
	m := &model{articles: map[string]*knowledge.Article{}, seqs: map[string]int64{}}
	seq := int64(0)
	ids := []string{}
	for round := range 6 {
		for range 700 {
			seq++
			switch k := r.IntN(10); {
			case k < 3 || len(ids) == 0:
				a := randomArticle(r, fmt.Sprintf("a%04d", seq))
				ix.Update(0, nil, seq, a)
				m.articles[a.ID], m.seqs[a.ID] = a, seq
				ids = append(ids, a.ID)
			case k < 9:
				id := ids[r.IntN(len(ids))]
				prev, ok := m.articles[id]
				next := randomArticle(r, id)
				if !ok {
					ix.Update(0, nil, seq, next)
				} else {
					next.Version = prev.Version + 1
					ix.Update(m.seqs[id], prev, seq, next)
				}
				m.articles[id], m.seqs[id] = next, seq
			default:
				id := ids[r.IntN(len(ids))]
				if prev, ok := m.articles[id]; ok {
					archived := *prev
					archived.Status = knowledge.StatusArchived
					ix.Update(m.seqs[id], prev, seq, &archived)
					delete(m.articles, id)
					delete(m.seqs, id)
				}
			}
		}
		if ix.Len() != len(m.articles) {
			t.Fatalf("round %d: index holds %d articles, want %d", round, ix.Len(), len(m.articles))
		}
		checkAll(t, ix, m)
	}
	if created := int(seq); len(ix.docs) >= created/2 {
		t.Errorf("the index numbers %d documents after %d writes: compaction never ran", len(ix.docs), created)
	}
}

// TestDeadPostingsStayBounded updates one large article many times: the
// postings of its old versions must not pile up.
func TestDeadPostingsStayBounded(t *testing.T) {
	words := make([]string, 20000)
	for i := range words {
		words[i] = fmt.Sprintf("w%d", i)
	}
	body := strings.Join(words, " ")
	ix := New()
	small := &knowledge.Article{ID: "small", Title: "small", Body: "a few words", Status: knowledge.StatusPublished}
	ix.Update(0, nil, 1, small)
	var prev *knowledge.Article
	for i := range 40 {
		a := &knowledge.Article{ID: "big", Title: "big", Body: body + fmt.Sprintf(" edit%d", i), Status: knowledge.StatusPublished, Version: int64(i + 1)}
		ix.Update(int64(i+1), prev, int64(i+2), a)
		prev = a
		if limit := max(minCompact, ix.livePostings/2); ix.deadPostings > limit {
			t.Fatalf("after %d updates, %d dead postings beside %d live ones, want at most %d", i+1, ix.deadPostings, ix.livePostings, limit)
		}
	}
	if got, want := countPostings(ix), ix.livePostings+ix.deadPostings; got != want {
		t.Errorf("the lists hold %d postings, the counts say %d", got, want)
	}
}

func countPostings(ix *Index) int {
	n := 0
	for _, f := range []*field{&ix.full, &ix.head} {
		for _, p := range f.terms {
			n += len(p.docs)
		}
	}
	return n
}

// TestUpdateReplayChangesNothing applies updates that the index already
// reflects, as a store does after building from a snapshot.
func TestUpdateReplayChangesNothing(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	ix := New()
	a := randomArticle(r, "a")
	b := randomArticle(r, "a")
	b.Version = 2
	ix.Update(0, nil, 1, a)
	ix.Update(1, a, 2, b)
	ix.Update(0, nil, 1, a) // replayed: version 1 comes back
	ix.Update(1, a, 2, b)   // and goes again
	ix.Update(1, a, 2, b)
	if ix.Len() != 1 {
		t.Fatalf("index holds %d articles, want 1", ix.Len())
	}
	if got, ok := ix.Current("a"); !ok || got.Version != 2 || got.Body != "" {
		t.Errorf("Current = %+v, %v; want version 2 without the body", got, ok)
	}
	m := &model{articles: map[string]*knowledge.Article{"a": b}, seqs: map[string]int64{"a": 2}}
	checkAll(t, ix, m)
}

// TestRemoveAllEmptiesIndex archives every article: the postings go.
func TestRemoveAllEmptiesIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	ix := New()
	var arts []*knowledge.Article
	for i := range 50 {
		a := randomArticle(r, fmt.Sprintf("a%d", i))
		arts = append(arts, a)
		ix.Update(0, nil, int64(i+1), a)
	}
	for i, a := range arts {
		ix.Update(int64(i+1), a, int64(100+i), nil)
	}
	if ix.Len() != 0 || len(ix.docs) != 0 || len(ix.full.terms) != 0 {
		t.Errorf("after removing all: %d articles, %d documents, %d terms; want none", ix.Len(), len(ix.docs), len(ix.full.terms))
	}
	if hits := ix.Rank(Query{Terms: fulltext.Parse("node").Terms, Any: true}, 5); len(hits) != 0 {
		t.Errorf("Rank found %d hits in an empty index", len(hits))
	}
}

// TestSeekFindsFirstAtOrAfter checks list.seek against a linear scan, for
// short and long skips from every starting posting.
func TestSeekFindsFirstAtOrAfter(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	docs := []uint32{}
	for d := uint32(0); len(docs) < 300; d += 1 + uint32(r.IntN(5)) {
		docs = append(docs, d)
	}
	last := docs[len(docs)-1]
	for start := range docs {
		for range 20 {
			d := docs[start] + uint32(r.IntN(int(last)+3)) - uint32(r.IntN(3))
			l := &list{docs: docs, i: start}
			l.seek(d)
			want := start
			for want < len(docs) && docs[want] < d {
				want++
			}
			if l.i != want {
				t.Fatalf("seek(%d) from posting %d stops at %d, want %d", d, start, l.i, want)
			}
		}
	}
}

// TestSharedTitlesRankLikeDocuments gives many articles a few titles and
// tags, so that the head field's classes hold many documents each, of
// equal and of different lengths. Rankings must not change when a
// class's documents leave and join it, when it empties and fills again,
// and across compactions.
func TestSharedTitlesRankLikeDocuments(t *testing.T) {
	defer func(n int) { minCompact = n }(minCompact)
	minCompact = 500
	r := rand.New(rand.NewPCG(9, 10))
	titles := []string{"node disk full", "pod crash looping", "etcd leader", "certificate rotation",
		"node", "disk", "pod crash", "etcd network leader", "memory alert", "node memory alert"}
	article := func(id string, version int64) *knowledge.Article {
		a := randomArticle(r, id)
		a.Title = titles[r.IntN(len(titles))]
		a.Tags = [][]string{nil, {"node"}}[r.IntN(2)]
		// Bodies of few lengths, so that some documents of a class tie.
		a.Body = randomText(r, 5*(1+r.IntN(4)))
		a.Version = version
		return a
	}

	ix := New()
	m := &model{articles: map[string]*knowledge.Article{}, seqs: map[string]int64{}}
	seq := int64(0)
	for i := range 200 {
		seq++
		a := article(fmt.Sprintf("a%03d", i), 1)
		ix.Update(0, nil, seq, a)
		m.articles[a.ID], m.seqs[a.ID] = a, seq
	}
	if got := len(ix.classes); got != 2*len(titles) {
		t.Fatalf("200 articles with %d titles and 2 sets of tags make %d classes, want %d", len(titles), got, 2*len(titles))
	}
	checkAll(t, ix, m)
	// Small n, so that the best classes hold more documents than n and
	// the order in which they expand decides. Both ways of ranking
	// classes run: every class scored, and MaxScore.
	defer func(n int) { maxClassScan = n }(maxClassScan)
	for _, scan := range []int{maxClassScan, 0} {
		maxClassScan = scan
		for _, text := range queries {
			for n := 1; n <= 12; n++ {
				checkRank(t, ix, m, Query{Terms: fulltext.Parse(text).Terms, Any: true, Head: true}, n)
			}
		}
	}

	for round := range 3 {
		// Archive every article with the first title, so that its
		// classes empty, and change others, so that they move.
		for id, a := range m.articles {
			seq++
			if a.Title == titles[0] {
				archived := *a
				archived.Status = knowledge.StatusArchived
				ix.Update(m.seqs[id], a, seq, &archived)
				delete(m.articles, id)
				delete(m.seqs, id)
				continue
			}
			if r.IntN(2) == 0 {
				next := article(id, a.Version+1)
				ix.Update(m.seqs[id], a, seq, next)
				m.articles[id], m.seqs[id] = next, seq
			}
		}
		checkAll(t, ix, m)

		for i := range 60 {
			seq++
			a := article(fmt.Sprintf("r%d-%02d", round, i), 1)
			ix.Update(0, nil, seq, a)
			m.articles[a.ID], m.seqs[a.ID] = a, seq
		}
		checkAll(t, ix, m)
	}

	if got, want := countPostings(ix), ix.livePostings+ix.deadPostings; got != want {
		t.Errorf("the lists hold %d postings, the counts say %d", got, want)
	}
	if len(ix.docs) >= int(seq) {
		t.Errorf("the index numbers %d documents after %d writes: compaction never ran", len(ix.docs), seq)
	}
}

// TestCompactNumbersByClass builds an index whose classes interleave, as
// a build adds the variants of runbooks, and checks that Compact numbers
// each class's documents side by side in the class's order, keeps every
// list sorted, and changes neither rankings nor hints.
func TestCompactNumbersByClass(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	titles := []string{"node disk full", "pod crash looping", "etcd leader", "certificate rotation"}
	ix := New()
	m := &model{articles: map[string]*knowledge.Article{}, seqs: map[string]int64{}}
	var docs []Doc
	for i := range 240 {
		a := randomArticle(r, fmt.Sprintf("a%03d", i))
		a.Title, a.Tags = titles[i%len(titles)], nil
		seq := int64(i + 1)
		m.articles[a.ID], m.seqs[a.ID] = a, seq
		docs = append(docs, Doc{Seq: seq, Article: a})
	}
	ix.Load(docs, 2)
	hints := func() map[string][]*fulltext.Hint {
		seqs := slices.Sorted(maps.Values(m.seqs))
		out := map[string][]*fulltext.Hint{}
		for _, text := range queries {
			out[text] = ix.Hints(seqs, fulltext.Parse(text).Terms)
		}
		return out
	}
	before := hints()

	ix.Compact()

	if len(ix.docs) != ix.live || len(ix.docs) != len(docs) {
		t.Fatalf("after Compact the index numbers %d documents and counts %d current, want %d", len(ix.docs), ix.live, len(docs))
	}
	next := uint32(0)
	for c, cl := range ix.classes {
		for i, d := range cl.docs {
			if d != next {
				t.Fatalf("document %d of class %d is number %d, want %d", i, c, d, next)
			}
			if ix.docs[d].class != uint32(c) {
				t.Errorf("document %d names class %d, want %d", d, ix.docs[d].class, c)
			}
			if i > 0 && ix.classOrder(cl.docs[i-1], d) >= 0 {
				t.Errorf("class %d lists document %d before %d, out of its order", c, cl.docs[i-1], d)
			}
			next++
		}
	}
	for seq, d := range ix.bySeq {
		if ix.docs[d].seq != seq {
			t.Errorf("version %d maps to document %d of version %d", seq, d, ix.docs[d].seq)
		}
	}
	for id, d := range ix.byID {
		if ix.docs[d].id != id {
			t.Errorf("article %s maps to document %d of article %s", id, d, ix.docs[d].id)
		}
	}
	for _, f := range []*field{&ix.full, &ix.head} {
		for term, p := range f.terms {
			if !slices.IsSorted(p.docs) || len(slices.Compact(slices.Clone(p.docs))) != len(p.docs) {
				t.Errorf("the list of %q is not in ascending order after Compact", term)
			}
		}
	}
	checkAll(t, ix, m)
	after := hints()
	for _, text := range queries {
		for i := range before[text] {
			if !reflect.DeepEqual(before[text][i], after[text][i]) {
				t.Errorf("query %q, hit %d: hint %+v after Compact, want %+v", text, i, after[text][i], before[text][i])
			}
		}
	}
}

// TestHintsOfPageMatchSingle checks that the hints of a page, whose hits
// come in any order and may repeat or be missing, equal those of each
// hit requested alone.
func TestHintsOfPageMatchSingle(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	ix := New()
	var docs []Doc
	for i := range 200 {
		docs = append(docs, Doc{Seq: int64(i + 1), Article: randomArticle(r, fmt.Sprintf("a%03d", i))})
	}
	ix.Load(docs, 2)
	ix.Compact()
	for _, text := range queries {
		terms := fulltext.Parse(text).Terms
		page := []int64{999} // no such version
		for range 12 {
			page = append(page, int64(1+r.IntN(len(docs))))
		}
		page = append(page, page[3])
		// A term without tokens, which Parse never returns, matches
		// nothing.
		terms = append(terms, fulltext.Term{})
		got := ix.Hints(page, terms)
		for i, seq := range page {
			want := ix.Hints([]int64{seq}, terms)[0]
			if !reflect.DeepEqual(got[i], want) {
				t.Errorf("query %q, hit %d (version %d): hint %+v in a page, %+v alone", text, i, seq, got[i], want)
			}
		}
	}
}

// TestExcludesFollowsTagsAndMetadata checks that Excludes rules out
// exactly the filters that name tags or a metadata pair that no current
// article carries, as articles gain, change and lose them.
func TestExcludesFollowsTagsAndMetadata(t *testing.T) {
	ix := New()
	a := &knowledge.Article{ID: "a", Title: "a", Tags: []string{"etcd"}, Metadata: map[string]string{"service": "etcd"}, Status: knowledge.StatusPublished, Version: 1}
	b := &knowledge.Article{ID: "b", Title: "b", Tags: []string{"etcd", "ovn"}, Status: knowledge.StatusPublished, Version: 1}
	ix.Update(0, nil, 1, a)
	ix.Update(0, nil, 2, b)
	check := func(step string, sc []knowledge.Scope, want bool) {
		t.Helper()
		if got := ix.Excludes(sc); got != want {
			t.Errorf("%s: Excludes(%+v) = %v, want %v", step, sc, got, want)
		}
	}
	meta := func(k, v string) []knowledge.Scope { return []knowledge.Scope{{Metadata: map[string]string{k: v}}} }
	tags := func(t ...string) []knowledge.Scope { return []knowledge.Scope{{Tags: t}} }
	check("start", nil, false)
	check("start", tags("etcd"), false)
	check("start", tags("missing", "ovn"), false)
	check("start", tags("missing"), true)
	check("start", meta("service", "etcd"), false)
	check("start", meta("service", "ovn"), true)
	check("start", []knowledge.Scope{{Collections: []string{"ops"}}, {Tags: []string{"missing"}}}, true)

	// b loses ovn, a changes service, then a is archived.
	b2 := *b
	b2.Tags, b2.Version = []string{"etcd"}, 2
	ix.Update(2, b, 3, &b2)
	check("after b lost ovn", tags("ovn"), true)
	a2 := *a
	a2.Metadata, a2.Version = map[string]string{"service": "ovn"}, 2
	ix.Update(1, a, 4, &a2)
	check("after a changed service", meta("service", "etcd"), true)
	check("after a changed service", meta("service", "ovn"), false)
	check("after a changed service", tags("etcd"), false)
	archived := a2
	archived.Status, archived.Version = knowledge.StatusArchived, 3
	ix.Update(4, &a2, 5, &archived)
	check("after a was archived", meta("service", "ovn"), true)
	check("after a was archived", tags("etcd"), false)
}

// TestReplayedBuildKeepsLiveVersion loads two versions of one article
// with the same title, tags and length, as a store's build does when a
// write lands between its batches, and then applies the write. The class
// must keep the new version and drop the old one.
func TestReplayedBuildKeepsLiveVersion(t *testing.T) {
	ix := New()
	v1 := &knowledge.Article{ID: "a", Title: "etcd leader", Body: "one two three", Status: knowledge.StatusPublished, Version: 1}
	v2 := *v1
	v2.Body, v2.Version = "four five six", 2
	ix.Load([]Doc{{Seq: 5, Article: v1}}, 1)
	ix.Load([]Doc{{Seq: 9, Article: &v2}}, 1)
	ix.Update(5, v1, 9, &v2)

	hits := ix.Rank(Query{Terms: fulltext.Parse("etcd").Terms, Head: true}, 5)
	if len(hits) != 1 {
		t.Fatalf("Rank found %d hits, want 1", len(hits))
	}
	if hits[0].Seq != 9 || hits[0].Article == nil {
		t.Errorf("Rank found version %d with article %v, want version 9", hits[0].Seq, hits[0].Article)
	}
}

// TestFindMatchesBinarySearch compares find with a bisection on lists of
// even and of clustered document numbers, for present and absent ones.
func TestFindMatchesBinarySearch(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for trial := range 300 {
		n := r.IntN(200)
		seen := map[uint32]bool{}
		var docs []uint32
		for len(docs) < n {
			d := uint32(r.IntN(1000))
			if trial%2 == 1 {
				// Clustered: most numbers near the start.
				d = uint32(r.IntN(1+r.IntN(1000)) * r.IntN(3))
			}
			if !seen[d] {
				seen[d] = true
				docs = append(docs, d)
			}
		}
		slices.Sort(docs)
		for d := range uint32(2100) {
			i, ok := find(docs, d)
			wi, wok := slices.BinarySearch(docs, d)
			if ok != wok || ok && i != wi {
				t.Fatalf("find(%v, %d) = %d, %v; want %d, %v", docs, d, i, ok, wi, wok)
			}
		}
	}
}

// TestMetadataPairsIgnoreCase checks that MetadataPairs names the pairs
// that current articles write, in any case, as they gain and lose them.
func TestMetadataPairsIgnoreCase(t *testing.T) {
	ix := New()
	a := &knowledge.Article{ID: "a", Title: "a", Metadata: map[string]string{"Team": "Platform"}, Status: knowledge.StatusPublished, Version: 1}
	b := &knowledge.Article{ID: "b", Title: "b", Metadata: map[string]string{"team": "platform"}, Status: knowledge.StatusPublished, Version: 1}
	ix.Update(0, nil, 1, a)
	ix.Update(0, nil, 2, b)
	want := []MetadataPair{{"Team", "Platform"}, {"team", "platform"}}
	if got := ix.MetadataPairs(" TEAM", "platform "); !slices.Equal(got, want) {
		t.Errorf("MetadataPairs = %v, want %v", got, want)
	}

	b2 := *b
	b2.Metadata, b2.Version = map[string]string{"team": "payments"}, 2
	ix.Update(2, b, 3, &b2)
	if got := ix.MetadataPairs("team", "platform"); !slices.Equal(got, want[:1]) {
		t.Errorf("after b changed team: MetadataPairs = %v, want %v", got, want[:1])
	}
	ix.Update(1, a, 4, nil)
	if got := ix.MetadataPairs("team", "platform"); len(got) != 0 {
		t.Errorf("after a left: MetadataPairs = %v, want none", got)
	}
}

// TestMetadataFoldsFollowVersions checks that the metadata hashes that
// hits and MetadataFolds give are those of the current version.
func TestMetadataFoldsFollowVersions(t *testing.T) {
	ix := New()
	a := &knowledge.Article{ID: "a", Title: "etcd quorum", Metadata: map[string]string{"Team": "Platform"}, Status: knowledge.StatusPublished, Version: 1}
	ix.Update(0, nil, 1, a)
	want := knowledge.MetadataFoldHashes(map[string]string{"team": "platform"})
	if got, ok := ix.MetadataFolds("a", 1); !ok || !slices.Equal(got, want) {
		t.Errorf("MetadataFolds(a, 1) = %v, %v; want %v", got, ok, want)
	}
	a2 := *a
	a2.Metadata, a2.Version = nil, 2
	ix.Update(1, a, 2, &a2)
	if _, ok := ix.MetadataFolds("a", 1); ok {
		t.Error("MetadataFolds(a, 1) found a version that is no longer current")
	}
	if got, ok := ix.MetadataFolds("a", 2); !ok || got == nil || len(got) != 0 {
		t.Errorf("MetadataFolds(a, 2) = %#v, %v; want an empty, non-nil list", got, ok)
	}
	hits := ix.Rank(Query{Terms: fulltext.Parse("quorum").Terms}, 5)
	if len(hits) != 1 || hits[0].MetadataFolds == nil || len(hits[0].MetadataFolds) != 0 {
		t.Errorf("hits = %+v, want a with no metadata hashes", hits)
	}
}
