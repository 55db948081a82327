package lookup

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/sqlite"
)

func TestSalientTerms(t *testing.T) {
	text := "Pods keep restarting in prod\n\nHi team, since 10:30 the pods are restarting with CrashLoopBackOff and HTTP 500 errors. " +
		"Ticket #48213. Please help, thanks! Regards, Jane"
	terms, originals := SalientTerms(text, 8)
	want := []string{"pod*", "restart*", "prod", "crashloopbackoff", `"crash loop back off"`, "http", "500", "error*"}
	if !slices.Equal(terms, want) {
		t.Errorf("terms = %q, want %q", terms, want)
	}
	// Originals keep the text's case and accents; a phrase of camel-case
	// parts maps to the word it comes from, a CJK pair to itself.
	if originals["restart"] != "restarting" || originals["pod"] != "Pods" || originals["crash loop back off"] != "CrashLoopBackOff" {
		t.Errorf("originals = %q, want restart → restarting, pod → Pods, crash loop back off → CrashLoopBackOff", originals)
	}
	if _, originals := SalientTerms("Zürich 数据库故障", 5); originals["zurich"] != "Zürich" || originals["据库"] != "据库" {
		t.Errorf("originals = %q, want zurich → Zürich and each pair to itself", originals)
	}
	for _, stop := range []string{"hi", "team", "since", "please", "thanks", "regards", "48213", "10", "30"} {
		if slices.Contains(terms, stop) {
			t.Errorf("terms %q hold the stop word or number %q", terms, stop)
		}
	}
	// A camel-case identifier counts twice, so it outranks prose words
	// that come before it.
	if terms, _ := SalientTerms("Checkout down\n\nwe see errors in logs after deploy OOMKilled", 2); !slices.Equal(terms, []string{"checkout", "oomkill*"}) {
		t.Errorf("terms = %q, want checkout and the identifier OOMKilled", terms)
	}
	// Hexadecimal ids of pods and commits name one instance; words
	// with digits that are not hexadecimal stay.
	if terms, _ := SalientTerms("checkout-7f9c4d pod 3fa2 deadbeef1 k8s ipv6 e2e", 10); !slices.Equal(terms, []string{"checkout", "pod", "k8s", "ipv6", "e2e"}) {
		t.Errorf("terms = %q, want the hexadecimal ids left out", terms)
	}
	if terms, _ := SalientTerms("the and of 🚨", 5); len(terms) != 0 {
		t.Errorf("terms of stop words and emoji = %q, want none", terms)
	}
	if terms, _ := SalientTerms("数据库故障 access", 5); !slices.Equal(terms, []string{"数据", "据库", "库故", "故障", "access"}) {
		t.Errorf("terms = %q, want the pairs of the CJK run and access without a stem", terms)
	}
	// Pairs are written as the index writes them: a combining dakuten
	// belongs to its kana, and a run may start with the prolonged sound
	// mark.
	if terms, _ := SalientTerms("テ\u3099ータ ーバー障害", 10); !slices.Equal(terms, []string{"テー", "ータ", "ーバ", "バー", "ー障", "障害"}) {
		t.Errorf("terms = %q, want the pairs the index holds", terms)
	}
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("a", MaxTextLen+1)
	many := map[string]string{}
	for i := range MaxAttributes + 1 {
		many[string(rune('a'+i))] = "x"
	}
	cases := []struct {
		req   Request
		field string
	}{
		{Request{}, "text"},
		{Request{Text: long}, "text"},
		{Request{Text: "x", Limit: MaxLimit + 1}, "limit"},
		{Request{Text: "x", Limit: -1}, "limit"},
		{Request{Text: "x", Attributes: many}, "attributes"},
		{Request{Text: "x", Attributes: map[string]string{"service": " "}}, "attributes.service"},
		{Request{Text: "x", Attributes: map[string]string{"": "v"}}, "attributes"},
		{Request{Text: "x", Attributes: map[string]string{"k": strings.Repeat("v", knowledge.MaxMetadataValue+1)}}, "attributes.k"},
		{Request{Text: "x", Attributes: map[string]string{"Service": "a", "service": "b"}}, "attributes.service"},
		{Request{Text: "x", Attributes: map[string]string{" service ": "a", "service": "b"}}, "attributes.service"},
		{Request{Text: "x", Attributes: map[string]string{" ": "a"}}, "attributes"},
		{Request{Attributes: map[string]string{"severity": "high", "Priority": "p1"}}, "attributes"},
		{Request{Text: "🚨 !!!", Attributes: map[string]string{"severity": "high"}}, "attributes"},
		{Request{Text: "🚨 !!!"}, "text"},
	}
	for _, tc := range cases {
		err := tc.req.Validate()
		var fe *knowledge.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("Validate(%.60v) = %v, want a field error on %s", tc.req, err, tc.field)
		}
	}
	if err := (&Request{Attributes: map[string]string{"service": "etcd"}}).Validate(); err != nil {
		t.Errorf("attributes without text: %v", err)
	}
}

// TestAttributeKeysIgnoreCase checks that an attribute key counts in any
// case, and that a topic attribute's value found in a hit is named among
// its matched terms.
func TestAttributeKeysIgnoreCase(t *testing.T) {
	ctx := context.Background()
	s := openStore(t,
		art("pay", "High error rate on payments-api", "Roll back the last deploy.", knowledge.StatusPublished, map[string]string{"service": "payments-api"}),
		art("other", "Error budget policy", "Errors count against the budget.", knowledge.StatusPublished, nil))
	res, err := Run(ctx, s, nil, Request{Text: "errors at checkout", Attributes: map[string]string{" Service ": " payments-api"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) == 0 || res.Hits[0].ID != "pay" {
		t.Fatalf("hits = %v, want pay first", ids(res.Hits))
	}
	h := res.Hits[0]
	if !slices.Contains(h.MatchedAttributes, "service=payments-api (metadata)") {
		t.Errorf("matched attributes = %q, want service=payments-api (metadata)", h.MatchedAttributes)
	}
	if !slices.Contains(h.MatchedTerms, "payments-api") || !strings.Contains(h.Reason, "payments-api") {
		t.Errorf("matched terms = %q, reason %q; want the attribute value payments-api named", h.MatchedTerms, h.Reason)
	}
}

// TestMetadataInAnotherCase looks up an attribute whose key and value an
// article writes in another case, with no word of the text to find it.
// With its text index the store names the pairs as articles write them.
// Without it the listing is by the key and value as sent.
func TestMetadataInAnotherCase(t *testing.T) {
	ctx := context.Background()
	quorum := art("quorum", "Restoring quorum", "Steps to restore quorum.", knowledge.StatusPublished, map[string]string{"Team": "Platform"})
	other := art("other", "Error budget policy", "Errors count against the budget.", knowledge.StatusPublished, map[string]string{"team": "payments"})
	cherokee := art("quorum", "Restoring quorum", "Steps to restore quorum.", knowledge.StatusPublished, map[string]string{"Ꭰ": "x"})
	cases := []struct {
		name    string
		s       store.Store
		attrs   map[string]string
		matched string
	}{
		{"indexed, other case", openStore(t, quorum, other), map[string]string{"TEAM": " platform "}, "team=platform (metadata)"},
		{"FTS5, as written", openStoreWith(t, sqlite.Options{NoTextIndex: true}, quorum, other), map[string]string{"Team": "Platform"}, "team=Platform (metadata)"},
		// cases.Fold maps some Cherokee letters back and forth, so a key
		// folded twice no longer equals itself folded once.
		{"indexed, Cherokee key", openStore(t, cherokee, other), map[string]string{"Ꭰ": "x"}, "ꭰ=x (metadata)"},
		{"FTS5, Cherokee key", openStoreWith(t, sqlite.Options{NoTextIndex: true}, cherokee, other), map[string]string{"Ꭰ": "x"}, "ꭰ=x (metadata)"},
	}
	for _, tc := range cases {
		res, err := Run(ctx, tc.s, nil, Request{Attributes: tc.attrs})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := ids(res.Hits); !slices.Equal(got, []string{"quorum"}) {
			t.Errorf("%s: hits = %v, want [quorum]", tc.name, got)
			continue
		}
		if !slices.Contains(res.Hits[0].MatchedAttributes, tc.matched) {
			t.Errorf("%s: matched attributes = %q, want %s", tc.name, res.Hits[0].MatchedAttributes, tc.matched)
		}
	}
}

// TestMetadataPairAsSentFirst gives one metadata pair more case variants
// than a lookup lists: the article that writes it as the request sends it
// is still found, as is one written with another fold such as ß.
func TestMetadataPairAsSentFirst(t *testing.T) {
	var arts []knowledge.Article
	// Upper-case variants sort before the lower-case pair that the
	// request sends.
	for i := range maxPairs + 4 {
		v := []byte("payments")
		for j := range v {
			if i&(1<<j) != 0 {
				v[j] -= 'a' - 'A'
			}
		}
		if string(v) == "payments" {
			continue
		}
		arts = append(arts, art(fmt.Sprintf("variant-%02d", i), "Variant", "A variant.", knowledge.StatusPublished, map[string]string{"Service": string(v)}))
	}
	arts = append(arts,
		art("exact", "Exact", "The exact pair.", knowledge.StatusPublished, map[string]string{"service": "payments"}),
		art("street", "Street", "A street.", knowledge.StatusPublished, map[string]string{"road": "Straße"}))
	s := openStore(t, arts...)
	for _, c := range []struct {
		attrs map[string]string
		want  string
	}{
		{map[string]string{"service": "payments"}, "exact"},
		{map[string]string{"road": "STRASSE"}, "street"},
	} {
		res, err := Run(context.Background(), s, nil, Request{Attributes: c.attrs, Limit: MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(res.Hits); !slices.Contains(got, c.want) {
			t.Errorf("lookup %v: hits = %v, want %s among them", c.attrs, got, c.want)
		}
	}
}

// respellStore saves article id with metadata meta when a lookup requests
// the metadata pairs that articles write. A write between the lookup's
// search and its comparison of the candidates does the same.
type respellStore struct {
	*sqlite.Store
	t    *testing.T
	id   string
	meta map[string]string
}

func (r respellStore) MetadataPairs(key, value string) ([][2]string, bool) {
	a, err := r.GetArticle(context.Background(), r.id)
	if err != nil {
		r.t.Fatal(err)
	}
	a.Metadata = r.meta
	if _, err := r.SaveArticle(context.Background(), a, store.SaveOptions{}); err != nil {
		r.t.Fatal(err)
	}
	return r.Store.MetadataPairs(key, value)
}

// TestMetadataMatchSurvivesRespelling checks that a candidate whose
// metadata matches an attribute keeps the bonus when a write changes how
// the article spells the pair while the lookup runs, both spellings
// being equal to the attribute after fold.
func TestMetadataMatchSurvivesRespelling(t *testing.T) {
	s := openStore(t, art("x", "Etcd leader election", "How etcd elects a leader.", knowledge.StatusPublished, map[string]string{"Service": "ETCD"}),
		art("y", "Etcd backup", "Back up etcd.", knowledge.StatusPublished, nil))
	st := respellStore{Store: s.(*sqlite.Store), t: t, id: "x", meta: map[string]string{"service": "etcd"}}
	res, err := Run(context.Background(), st, nil, Request{Text: "etcd leader", Attributes: map[string]string{"service": "etcd"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) == 0 || res.Hits[0].ID != "x" || !slices.Contains(res.Hits[0].MatchedAttributes, "service=etcd (metadata)") {
		t.Fatalf("hits = %+v, want x first with its metadata matched", res.Hits)
	}
}

func openStore(t *testing.T, arts ...knowledge.Article) store.Store {
	t.Helper()
	return openStoreWith(t, sqlite.Options{}, arts...)
}

func openStoreWith(t *testing.T, opts sqlite.Options, arts ...knowledge.Article) store.Store {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "khub.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, a := range arts {
		a.Normalize()
		if _, err := s.SaveArticle(context.Background(), a, store.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func art(id, title, body string, status knowledge.Status, meta map[string]string) knowledge.Article {
	return knowledge.Article{ID: id, Title: title, Body: body, Collection: "kb", Class: knowledge.ClassPolicy, Status: status, Metadata: meta}
}

func ids(hits []Hit) []string {
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.ID
	}
	return out
}

func TestDeprecatedNeverFirstUnmarked(t *testing.T) {
	old := art("old", "Laptop encryption policy", "Laptop disks use BitLocker. Laptop laptop laptop encryption.",
		knowledge.StatusDeprecated, map[string]string{ReplacedByKey: "new"})
	cur := art("new", "Device security policy", "All devices are managed and encrypted.", knowledge.StatusPublished, nil)
	other := art("other", "Laptop loan", "Borrow a laptop from the service desk.", knowledge.StatusPublished, nil)
	ctx := context.Background()

	// The replacement goes first although the text does not match it.
	s := openStore(t, old, cur, other)
	res, err := Run(ctx, s, nil, Request{Text: "laptop encryption"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res.Hits); len(got) < 2 || got[0] != "new" || got[1] != "old" {
		t.Fatalf("hits = %v, want the replacement new, then old", got)
	}
	if res.Hits[1].ReplacedBy != "new" || !res.Hits[1].Deprecated || res.Hits[0].Deprecated {
		t.Errorf("hits = %+v, want old marked deprecated and replaced by new", res.Hits)
	}

	// A replacement outside the scope is not shown: the best current hit
	// goes first instead.
	scope := []knowledge.Scope{{Metadata: map[string]string{}, Collections: []string{"kb"}, Classes: []knowledge.Class{knowledge.ClassPolicy}}}
	cur.Collection = "secret"
	s = openStore(t, old, cur, other)
	res, err = Run(ctx, s, scope, Request{Text: "laptop encryption"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res.Hits); !slices.Equal(got, []string{"other", "old"}) {
		t.Errorf("hits = %v, want [other old]: the replacement is out of scope", got)
	}
	if h := res.Hits[len(res.Hits)-1]; h.ReplacedBy != "" || strings.Contains(h.Reason, "use new") {
		t.Errorf("old = %+v, want its replacement out of scope left unnamed", h)
	}

	// When every hit is deprecated, the first is marked deprecated. A
	// replacement that does not exist or is archived is not named.
	for _, c := range []struct {
		name string
		arts []knowledge.Article
	}{
		{"missing", []knowledge.Article{old}},
		{"archived", []knowledge.Article{old, art("new", "Device security policy", "Managed.", knowledge.StatusArchived, nil)}},
	} {
		res, err = Run(ctx, openStore(t, c.arts...), nil, Request{Text: "laptop encryption"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Hits) != 1 || !res.Hits[0].Deprecated || res.Hits[0].ReplacedBy != "" || strings.Contains(res.Hits[0].Reason, "instead") {
			t.Errorf("%s replacement: hits = %+v, want one deprecated hit with no replacement named", c.name, res.Hits)
		}
	}
}

// TestReplacementChains checks that a deprecated article's replacement
// is followed through deprecated articles to a published one, and that a
// cycle of deprecated articles names none.
func TestReplacementChains(t *testing.T) {
	ctx := context.Background()
	dep := func(id, next string) knowledge.Article {
		return art(id, "Zebra runbook "+id, "zebra steps", knowledge.StatusDeprecated, map[string]string{ReplacedByKey: next})
	}
	cur := art("h", "Fleet handbook", "Managed devices.", knowledge.StatusPublished, nil)
	res, err := Run(ctx, openStore(t, dep("f", "g"), dep("g", "h"), cur), nil, Request{Text: "zebra steps"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res.Hits); len(got) == 0 || got[0] != "h" || !strings.Contains(res.Hits[0].Reason, "replaces deprecated") {
		t.Errorf("chain: hits = %v, first reason %q; want h first, replacing the deprecated hit", got, res.Hits[0].Reason)
	}
	for _, h := range res.Hits[1:] {
		if h.ReplacedBy != "h" {
			t.Errorf("chain: %s has replaced_by %q, want the end of the chain, h", h.ID, h.ReplacedBy)
		}
	}

	res, err = Run(ctx, openStore(t, dep("x", "y"), dep("y", "x")), nil, Request{Text: "zebra steps"})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range res.Hits {
		if !h.Deprecated || h.ReplacedBy != "" || strings.Contains(h.Reason, "instead") {
			t.Errorf("cycle: hit %+v, want deprecated with no replacement named", h)
		}
	}
}

func TestAttributesRank(t *testing.T) {
	// Equal text, so the metadata decides; fillers give BM25 a corpus.
	arts := []knowledge.Article{
		art("generic", "Checkout errors", "Checkout errors and timeouts.", knowledge.StatusPublished, nil),
		art("svc", "Checkout errors", "Checkout errors and timeouts.", knowledge.StatusPublished, map[string]string{"service": "payments-api"}),
		art("meta-only", "Contract of acme", "Obligations.", knowledge.StatusPublished, map[string]string{"account": "acme"}),
	}
	for _, w := range strings.Fields("coffee ladder badge visitor leave holiday parking printer") {
		arts = append(arts, art("filler-"+w, "About the "+w, "The "+w+" rules.", knowledge.StatusPublished, nil))
	}
	s := openStore(t, arts...)
	res, err := Run(context.Background(), s, nil, Request{Text: "checkout errors", Attributes: map[string]string{"service": "payments-api", "account": "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	got := ids(res.Hits)
	if len(got) != 3 || got[0] != "svc" {
		t.Fatalf("hits = %v, want svc first and all three", got)
	}
	for _, h := range res.Hits {
		switch h.ID {
		case "svc":
			if !slices.Contains(h.MatchedAttributes, "service=payments-api (metadata)") || !strings.Contains(h.Reason, "matches checkout, errors") {
				t.Errorf("svc = %+v, want the metadata match and the words in the reason", h)
			}
		case "meta-only":
			if !slices.Contains(h.MatchedAttributes, "account=acme (metadata)") {
				t.Errorf("meta-only = %+v, want account=acme (metadata)", h)
			}
		}
	}
}

// TestMetadataOutranksTitleMention looks up a service alone: the article
// whose metadata names it goes before those that only mention it.
func TestMetadataOutranksTitleMention(t *testing.T) {
	arts := []knowledge.Article{
		art("quorum", "Restoring quorum", "Steps to restore quorum.", knowledge.StatusPublished, map[string]string{"service": "etcd"}),
		art("leader", "etcd leader election", "How etcd elects a leader.", knowledge.StatusPublished, nil),
		art("backup", "etcd backup", "Back up etcd daily.", knowledge.StatusPublished, nil),
	}
	for _, w := range strings.Fields("coffee ladder badge visitor leave holiday parking printer") {
		arts = append(arts, art("filler-"+w, "About the "+w, "The "+w+" rules.", knowledge.StatusPublished, nil))
	}
	res, err := Run(context.Background(), openStore(t, arts...), nil, Request{Attributes: map[string]string{"Service": "ETCD"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res.Hits); len(got) != 3 || got[0] != "quorum" {
		t.Errorf("hits = %v, want quorum first and the two etcd articles", got)
	}
}

// Ticket text in Chinese or Japanese often has no punctuation for long
// stretches; the lookup still finds the article whose words it contains.
func TestLookupCJKRun(t *testing.T) {
	s := openStore(t,
		art("db", "数据库", "数据库故障处理流程。先确认主库状态。", knowledge.StatusPublished, nil),
		art("net", "网络", "网络中断时检查交换机。", knowledge.StatusPublished, nil))
	for _, text := range []string{strings.Repeat("数据库故障处理流程", 3), strings.Repeat("数据库故障", 20)} {
		res, err := Run(context.Background(), s, nil, Request{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(res.Hits); len(got) == 0 || got[0] != "db" {
			t.Errorf("lookup of %d characters of CJK text = %v, want db first", len([]rune(text)), got)
		}
	}
}

// movedStore moves every article it reads to collection to, as a write
// between a lookup's search and its read of the hits would.
type movedStore struct {
	store.Store
	to string
}

func (m movedStore) GetArticle(ctx context.Context, id string) (knowledge.Article, error) {
	a, err := m.Store.GetArticle(ctx, id)
	a.Collection = m.to
	return a, err
}

// TestLookupDropsHitsThatLeftTheScope checks that a hit whose article
// moved out of the caller's scope after the search is left out, not shown
// with its new collection and text.
func TestLookupDropsHitsThatLeftTheScope(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "khub.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := knowledge.Article{ID: "note", Title: "Platypus note", Body: "platypus venom public note", Collection: "inscope", Class: knowledge.ClassReference}
	if _, err := st.SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	scope := []knowledge.Scope{{Collections: []string{"inscope"}}}
	req := Request{Text: "platypus venom"}
	if res, err := Run(ctx, movedStore{st, "inscope"}, scope, req); err != nil || len(res.Hits) != 1 {
		t.Fatalf("lookup in scope: %d hits, %v; want the note", len(res.Hits), err)
	}
	res, err := Run(ctx, movedStore{st, "secret"}, scope, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range res.Hits {
		t.Errorf("hit %s of collection %q is outside the scope", h.ID, h.Collection)
	}
}
