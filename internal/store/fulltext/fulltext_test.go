package fulltext

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode"
)

func TestIndexText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Café crème, Straße!", "cafe creme strasse"},
		{"payments-api v2_beta", "payments api v2 beta"},
		{"KubePodCrashLooping fired", "kubepodcrashlooping fired kube pod crash looping"},
		{"HTTPServer", "httpserver http server"},
		{"数据库故障", "数据 据库 库故 故障 障"},
		{"数 a 据库", "数 a 据库 库"},
		{"ディスク容量", "ディ ィス スク ク容 容量 量"},
		{"東京のサーバー", "東京 京の のサ サー ーバ バー ー"},
		{"🚨 disk 👩‍💻full", "disk full"},
		{"ÉCOLE Ørsted ǅemal", "ecole orsted dzemal"},
		{"हिन्दी", "हिन्दी"},
		{"", ""},
	}
	for _, tc := range cases {
		if got := IndexText(tc.in); got != tc.want {
			t.Errorf("IndexText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIndexTextTokensAreWordRunes(t *testing.T) {
	in := "Mixed «text» with 数据, émoji 🚨, tabs\tand NUL-free symbols ©®™ $5 5€ a_b-c.d/e"
	for _, tok := range strings.Fields(IndexText(in)) {
		for _, r := range tok {
			if !isWordRune(r) {
				t.Errorf("token %q holds %q, which the back-ends' tokenizers split at", tok, r)
			}
		}
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		in         string
		fts5, tsq  string
		matchTexts []string
	}{
		{"rotate keys", `"rotate" AND "keys"`, `rotate & keys`, []string{"rotate", "keys"}},
		{`"disk full" node`, `"disk full" AND "node"`, `(disk <-> full) & node`, []string{"disk full", "node"}},
		{"rotat*", `"rotat"*`, `rotat:*`, []string{"rotat"}},
		{"ro*", `"ro"`, `ro`, []string{"ro"}},
		{`"certificate rot"*`, `"certificate rot"*`, `(certificate <-> rot:*)`, []string{"certificate rot"}},
		{"payments-api", `"payments api"`, `(payments <-> api)`, []string{"payments-api"}},
		{"NOT rotate OR -x", `"not" AND "rotate" AND "or" AND "x"`, `not & rotate & or & x`, nil},
		{`rotate" OR "1"="1`, `"rotate" AND "or" AND "1"`, `rotate & or & 1`, nil},
		{"数据库", `"数据 据库"`, `(数据 <-> 据库)`, nil},
		{"障", `"障"*`, `障:*`, nil},
		{"据a", `"据"* AND "a"`, `据:* & a`, nil},
		{"Café", `"cafe"`, `cafe`, nil},
		{"🚨 * \" -- ;", ``, ``, nil},
		{"a a A", `"a"`, `a`, nil},
		{`"unterminated phrase`, `"unterminated phrase"`, `(unterminated <-> phrase)`, nil},
	}
	for _, tc := range cases {
		q := Parse(tc.in)
		if got := q.FTS5(false); got != tc.fts5 {
			t.Errorf("Parse(%q).FTS5 = %s, want %s", tc.in, got, tc.fts5)
		}
		if got := q.TSQuery(false); got != tc.tsq {
			t.Errorf("Parse(%q).TSQuery = %s, want %s", tc.in, got, tc.tsq)
		}
		if tc.matchTexts != nil {
			var texts []string
			for _, term := range q.Terms {
				texts = append(texts, term.Text)
			}
			if !slices.Equal(texts, tc.matchTexts) {
				t.Errorf("Parse(%q) term texts = %q, want %q", tc.in, texts, tc.matchTexts)
			}
		}
	}
	if got := Parse("a b").FTS5(true); got != `"a" OR "b"` {
		t.Errorf("FTS5(any) = %s, want \"a\" OR \"b\"", got)
	}
	if got := Parse("a b").TSQuery(true); got != `a | b` {
		t.Errorf("TSQuery(any) = %s, want a | b", got)
	}
	long := strings.Repeat("w ", 10) + strings.Repeat("x", 1)
	for i := range 100 {
		long += fmt.Sprintf(" t%d", i)
	}
	if n := len(Parse(long).Terms); n != MaxTerms {
		t.Errorf("a query of 102 words has %d terms, want MaxTerms (%d)", n, MaxTerms)
	}
}

// FuzzParse checks that any text renders to FTS5 and to_tsquery input made
// of quoted token strings and operators only.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"rotate keys", `"a b"*`, `"`, "数据库 障", "🚨", "NEAR(a b)", "a:b", `\"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := Parse(s)
		for _, term := range q.Terms {
			if len(term.Tokens) == 0 {
				t.Fatalf("Parse(%q) has a term without tokens", s)
			}
			for _, tok := range term.Tokens {
				if tok == "" || strings.ContainsFunc(tok, func(r rune) bool { return !isWordRune(r) }) {
					t.Fatalf("Parse(%q) has token %q with a character that is not a letter, digit or mark", s, tok)
				}
			}
		}
		_ = q.FTS5(false)
		_ = q.Highlight(s, nil, s)
	})
}

func TestHighlight(t *testing.T) {
	body := "Intro words. The quick brown fox jumps over the lazy dog near the Café. " + strings.Repeat("filler ", 40) + "The end."
	h := Parse("fox cafe").Highlight("Animals", nil, body)
	if !strings.Contains(h.Text, "[fox]") || !strings.Contains(h.Text, "[Café]") {
		t.Errorf("snippet = %q, want [fox] and [Café] marked", h.Text)
	}
	if !strings.HasPrefix(h.Text, Ellipsis) || !strings.HasSuffix(h.Text, Ellipsis) {
		t.Errorf("snippet = %q, want ellipses at both ends of a window inside the body", h.Text)
	}
	if n := len(strings.Fields(strings.ReplaceAll(h.Text, Ellipsis, " "))); n > SnippetWords {
		t.Errorf("snippet has %d words, want at most %d", n, SnippetWords)
	}
	if !slices.Equal(h.Matched, []string{"fox", "cafe"}) {
		t.Errorf("matched = %q, want [fox cafe]", h.Matched)
	}

	h = Parse("db").Highlight("Runbook", []string{"db"}, "Nothing here.")
	if h.Text != "Runbook" || !slices.Equal(h.Matched, []string{"db"}) {
		t.Errorf("tag-only highlight = %+v, want the plain title and db matched", h)
	}

	h = Parse("x").Highlight("t", nil, "a\n\n  [x]\tb <i>")
	if h.Text != "a [[x]] b <i>" || h.HTML != "a [<mark>x</mark>] b &lt;i&gt;" {
		t.Errorf("highlight = %q / %q, want white space collapsed and the HTML escaped", h.Text, h.HTML)
	}
}

func TestFold(t *testing.T) {
	for in, want := range map[string]string{
		"Ærø": "aero", "İstanbul": "istanbul", "ŁÓDŹ": "lodz", "Ελληνικά": "ελληνικα", "Пётр": "петр", "ǅ": "dz",
	} {
		if got := fold(in); got != want {
			t.Errorf("fold(%q) = %q, want %q", in, got, want)
		}
	}
	for _, r := range "abcXYZ09" {
		if !isWordRune(r) || isCJK(r) || !unicode.IsPrint(r) {
			t.Errorf("%q misclassified", r)
		}
	}
}

func ranked(ids ...string) []Ranked {
	out := make([]Ranked, len(ids))
	for i, id := range ids {
		out[i] = Ranked{Seq: int64(i), ID: id, Score: float64(100 - i)}
	}
	return out
}

func ids(rs []Ranked) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func TestNextPage(t *testing.T) {
	all := ranked("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l")
	page, next := NextPage(all, nil, 4, 7, false)
	if !slices.Equal(ids(page), []string{"a", "b", "c", "d"}) || next == nil {
		t.Fatalf("first page = %v, next %v", ids(page), next)
	}
	c, err := DecodeCursor(next.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if c.Offset != 4 || c.Key != 7 || c.ID != "d" || len(c.Tail) != 4 {
		t.Fatalf("decoded cursor = %+v", c)
	}

	// Unchanged ranking: the page continues.
	page, _ = NextPage(all, c, 4, 7, false)
	if got := ids(page); !slices.Equal(got, []string{"e", "f", "g", "h"}) {
		t.Errorf("second page = %v", got)
	}

	// d and e swapped across the boundary: the tail repairs it.
	swapped := ranked("a", "b", "c", "e", "d", "f", "g", "h", "i", "j", "k", "l")
	page, _ = NextPage(swapped, c, 4, 7, false)
	if got := ids(page); !slices.Equal(got, []string{"e", "f", "g", "h"}) {
		t.Errorf("second page after a swap = %v, want [e f g h]", got)
	}

	// A returned hit fell far: still not repeated.
	fell := ranked("a", "c", "d", "e", "f", "g", "h", "b", "i", "j", "k", "l")
	page, _ = NextPage(fell, c, 4, 7, false)
	if got := ids(page); !slices.Equal(got, []string{"e", "f", "g", "h"}) {
		t.Errorf("second page after b fell = %v, want [e f g h]", got)
	}

	// A new hit above the boundary while the tail covers every returned
	// hit: the new hit comes next, and nothing repeats.
	added := ranked("a", "n", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k")
	page, _ = NextPage(added, c, 4, 7, false)
	if got := ids(page); !slices.Equal(got, []string{"n", "e", "f", "g"}) {
		t.Errorf("second page after an insert above = %v, want [n e f g]", got)
	}

	// The last page has no next cursor.
	page, next = NextPage(all[:6], c, 4, 7, false)
	if got := ids(page); !slices.Equal(got, []string{"e", "f"}) || next != nil {
		t.Errorf("last page = %v, next %v", got, next)
	}
}

// TestNeedIsEnough checks that a ranking cut after Need hits gives the
// page and the cursor that the whole ranking gives, on the first page
// and on later ones, with and without the swap that the tail repairs.
func TestNeedIsEnough(t *testing.T) {
	names := make([]string, 40)
	for i := range names {
		names[i] = fmt.Sprintf("h%02d", i)
	}
	all := ranked(names...)
	for limit := 1; limit <= 12; limit++ {
		for change := range 4 {
			checkNeed(t, all, limit, change)
		}
	}
}

// checkNeed pages through all with limit hits a page and compares each
// page of a ranking cut after Need hits with that of the whole ranking.
// Before each later page, a change moves hits as writes between pages
// can: 1 swaps the hits on either side of the boundary, 2 moves the last
// returned hit to the end, and 3 moves the last three behind the next
// page.
func checkNeed(t *testing.T, all []Ranked, limit, change int) {
	t.Helper()
	var c *Cursor
	for range 4 {
		ranking := slices.Clone(all)
		if c != nil {
			switch change {
			case 1:
				ranking[c.Offset-1], ranking[c.Offset] = ranking[c.Offset], ranking[c.Offset-1]
			case 2:
				last := ranking[c.Offset-1]
				ranking = append(slices.Delete(ranking, c.Offset-1, c.Offset), last)
			case 3:
				// The last three returned fall behind the next page.
				n := min(3, c.Offset)
				fell := slices.Clone(ranking[c.Offset-n : c.Offset])
				ranking = slices.Delete(ranking, c.Offset-n, c.Offset)
				at := min(len(ranking), c.Offset-n+limit)
				ranking = slices.Insert(ranking, at, fell...)
			}
		}
		full, fullNext := NextPage(ranking, c, limit, 7, false)
		cut, cutNext := NextPage(ranking[:min(len(ranking), Need(c, limit))], c, limit, 7, false)
		if !slices.Equal(ids(cut), ids(full)) || (cutNext == nil) != (fullNext == nil) ||
			cutNext != nil && cutNext.Encode() != fullNext.Encode() {
			t.Fatalf("limit %d, offset %d, change %d: a ranking of Need hits gives page %v, the whole ranking %v",
				limit, offsetOf(c), change, ids(cut), ids(full))
		}
		if fullNext == nil {
			return
		}
		var err error
		if c, err = DecodeCursor(fullNext.Encode()); err != nil {
			t.Fatal(err)
		}
	}
}

func offsetOf(c *Cursor) int {
	if c == nil {
		return 0
	}
	return c.Offset
}

func TestNextPageFallsBackToKeyset(t *testing.T) {
	var names []string
	for i := range 30 {
		names = append(names, fmt.Sprintf("id%02d", i))
	}
	all := ranked(names...)
	var c *Cursor
	for range 3 {
		_, c = NextPage(all, c, 4, 1, false)
	}
	// Twelve hits returned; a new hit ranks second, above the tail of
	// eight, so neither check passes and the page continues after id11.
	moved := append([]Ranked{all[0], {ID: "new", Score: 99.5}}, all[1:]...)
	page, _ := NextPage(moved, c, 4, 1, false)
	if got := ids(page); !slices.Equal(got, []string{"id12", "id13", "id14", "id15"}) {
		t.Errorf("page after an insert above the tail = %v, want [id12 id13 id14 id15]", got)
	}
}

func TestNextPageStopsAtMaxDepth(t *testing.T) {
	var names []string
	for i := range MaxDepth + 50 {
		names = append(names, fmt.Sprintf("id%04d", i))
	}
	all := ranked(names...)
	var c *Cursor
	total := 0
	for range 100 {
		page, next := NextPage(all, c, 100, 1, false)
		total += len(page)
		if next == nil {
			break
		}
		c = next
	}
	if total != MaxDepth {
		t.Errorf("paged %d hits, want MaxDepth (%d)", total, MaxDepth)
	}
}

func TestDecodeCursorRejects(t *testing.T) {
	good := (&Cursor{Key: 1, Offset: 3, ID: "x", Tail: []uint64{1, 2}}).Encode()
	for _, s := range []string{"", "!!", "AAAA", good[:10], good + "=="} {
		if _, err := DecodeCursor(s); err == nil {
			t.Errorf("DecodeCursor(%q) succeeded, want an error", s)
		}
	}
	if c, err := DecodeCursor(good); err != nil || c.ID != "x" || c.Offset != 3 {
		t.Errorf("DecodeCursor(good) = %+v, %v", c, err)
	}
}

func TestTSQueryWeights(t *testing.T) {
	cases := []struct {
		in, want string
	}{
		{"node", "node:AB"},
		{"rotat*", "rotat:AB*"},
		{`"disk full" node`, "(disk:AB <-> full:AB) | node:AB"},
		{`"certificate rot"*`, "(certificate:AB <-> rot:AB*)"},
	}
	for _, tc := range cases {
		if got := Parse(tc.in).TSQueryWeights(true, "AB"); got != tc.want {
			t.Errorf("Parse(%q).TSQueryWeights(any, AB) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := Parse("rotat* node").TSQueryWeights(false, ""); got != "rotat:* & node" {
		t.Errorf("TSQueryWeights without weights = %s, want the TSQuery form rotat:* & node", got)
	}
}

// highlightBoth returns the highlight of a body found around the places
// that match and the one found by tokenizing the whole body.
func highlightBoth(q Query, title, body string) (parts, whole Highlight) {
	return q.Highlight(title, nil, body), q.HighlightWhole(title, nil, body)
}

func TestHighlightLongBodyMatchesWholeBody(t *testing.T) {
	filler := strings.Repeat("Unrelated words fill this runbook paragraph about nothing much. ", 30)
	body := filler + "When the KubePodCrashLooping alert fires, the pod is crash looping; check `kubectl logs`. " +
		filler + "A pod that keeps restarting is crash-looping again. " + filler
	cases := []struct {
		query, mark string
	}{
		{"pod crash looping", "[crash looping]"},
		{"crash", "[KubePodCrashLooping]"},
		{`"crash looping"`, "[crash looping]"},
		{"restart*", "[restarting]"},
		{"kubectl logs", "[kubectl logs]"},
		{"missing", ""},
	}
	for _, c := range cases {
		q := Parse(c.query)
		parts, whole := highlightBoth(q, "Pods", body)
		if !slices.Equal(parts.Matched, whole.Matched) {
			t.Errorf("%q: matched %q, tokenizing the whole body gives %q", c.query, parts.Matched, whole.Matched)
		}
		if !strings.Contains(parts.Text, c.mark) || !strings.Contains(whole.Text, c.mark) {
			t.Errorf("%q: snippets %q and %q, want both to contain %q", c.query, parts.Text, whole.Text, c.mark)
		}
		if c.mark != "" && !strings.HasPrefix(parts.Text, Ellipsis) {
			t.Errorf("%q: snippet %q from the middle of the body does not start with %q", c.query, parts.Text, Ellipsis)
		}
	}
}

// A body that names one term many times before the terms meet must
// still show the place where they meet.
func TestHighlightFindsLateCluster(t *testing.T) {
	body := strings.Repeat("alpha is mentioned in this sentence with some filler words around it. ", 20) +
		strings.Repeat("filler ", 300) + "here alpha beta appear together at last."
	q := Parse("alpha beta")
	parts, whole := highlightBoth(q, "t", body)
	for _, h := range []Highlight{parts, whole} {
		if !strings.Contains(h.Text, "[alpha beta]") {
			t.Errorf("snippet %q, want the place where [alpha beta] meet", h.Text)
		}
	}
}

// A phrase whose words stand far apart, as in a Markdown table, is still
// found in a long body.
func TestHighlightPhraseAcrossWideGap(t *testing.T) {
	pad := strings.Repeat("lorem ipsum ", 100)
	body := pad + "rotate" + strings.Repeat(" ", 40) + "|" + strings.Repeat(" ", 40) + "looping " + pad
	parts, whole := highlightBoth(Parse(`"rotate looping"`), "title", body)
	if !slices.Equal(parts.Matched, whole.Matched) || len(parts.Matched) != 1 {
		t.Errorf("matched %q, tokenizing the whole body gives %q; want the phrase", parts.Matched, whole.Matched)
	}
	if !strings.Contains(parts.Text, "[rotate") {
		t.Errorf("snippet %q does not mark the phrase", parts.Text)
	}
}

// A phrase's first word elsewhere in the body, without the phrase, does
// not draw the snippet there.
func TestHighlightPhrasePlacesConfirmed(t *testing.T) {
	filler := strings.Repeat("filler ", 300)
	body := "crash looping " + filler + strings.Repeat("crash node ", 200) + filler + "node crash looping " + filler
	parts, whole := highlightBoth(Parse(`"crash looping" node`), "t", body)
	for _, h := range []Highlight{parts, whole} {
		if !strings.Contains(h.Text, "[node crash looping]") {
			t.Errorf("snippet %q, want the place where [node crash looping] meet", h.Text)
		}
	}
}

// FuzzHighlight checks that cutting a snippet from part of a long body
// never panics and finds the same terms as tokenizing the whole body.
func FuzzHighlight(f *testing.F) {
	f.Add("pod crash", "KubePodCrashLooping: the pod — «crash» looping")
	f.Add("sql injection*", "Ünïcode SQL Injection-prevention ✓ sql-INJECTIONS")
	f.Add(`"a b" c*`, "x\xffa b\xe2\x80\x94c ab cd")
	f.Fuzz(func(t *testing.T, query, text string) {
		body := strings.Repeat(text+" ", max(1, 2*partsFrom/(len(text)+1)))
		q := Parse(query)
		parts, whole := highlightBoth(q, "t", body)
		if !slices.Equal(parts.Matched, whole.Matched) {
			t.Errorf("matched %q, tokenizing the whole body gives %q", parts.Matched, whole.Matched)
		}
	})
}

// A hint that does not fit the body, as one for another version would,
// is ignored rather than trusted.
func TestHighlightHintIgnoresMisfit(t *testing.T) {
	q := Parse("replica")
	body := strings.Repeat("filler words here ", 100) + "promote the replica now"
	want := q.HighlightWhole("t", nil, body)
	_, l := IndexTextLayout(body)
	for name, h := range map[string]*Hint{
		"nil":            nil,
		"no layout":      {Found: []bool{true}},
		"word past end":  {Layout: &l, Found: []bool{true}, Matches: []HintMatch{{First: l.Tokens, Last: l.Tokens, Term: 0}}},
		"unknown term":   {Layout: &l, Found: []bool{true}, Matches: []HintMatch{{First: 1, Last: 1, Term: 3}}},
		"wrong word":     {Layout: &l, Found: []bool{true}, Matches: []HintMatch{{First: 0, Last: 0, Term: 0}}},
		"too few marks":  {Layout: &Layout{Tokens: l.Tokens, Marks: l.Marks[:1]}, Found: []bool{true}, Matches: []HintMatch{{First: l.Tokens - 2, Last: l.Tokens - 2, Term: 0}}},
		"found mismatch": {Layout: &l, Found: []bool{true, false}},
	} {
		got := q.HighlightHint("t", nil, body, h)
		if got.Text != want.Text || !slices.Equal(got.Matched, want.Matched) {
			t.Errorf("%s: snippet %q matched %q, want %q matched %q", name, got.Text, got.Matched, want.Text, want.Matched)
		}
	}
}

// TestTokenizeNStopsEarly checks that tokenizeN returns the first n tokens
// of tokenize, camel-case parts included, and all of them for n < 0.
func TestTokenizeNStopsEarly(t *testing.T) {
	text := "KubePodCrashLooping: the pod's café — restarts (x42) again 日本語 end"
	all := tokenize(text, true)
	for n := -1; n <= len(all)+1; n++ {
		got := tokenizeN(text, true, n)
		want := all
		if n >= 0 && n < len(all) {
			want = all[:n]
		}
		if len(got) != len(want) {
			t.Fatalf("tokenizeN(%d) gives %d tokens, want %d", n, len(got), len(want))
		}
		for i := range got {
			if got[i].norm != want[i].norm || got[i].start != want[i].start || got[i].end != want[i].end || !slices.Equal(got[i].wordParts(), want[i].wordParts()) {
				t.Errorf("tokenizeN(%d) token %d = %+v, want %+v", n, i, got[i], want[i])
			}
		}
	}
}

// TestCamelPartsASCII checks that the ASCII path of camelParts cuts as
// the path for any word does.
func TestCamelPartsASCII(t *testing.T) {
	words := []string{"KubePodCrashLooping", "HTTPServer", "v2Beta", "NodeNotReady", "ABC", "aB", "Ab", "iPhone",
		"ETCDNoLeader", "x509CertExpiry", "getHTTP2Response", "already", "KubeAPIErrorBudgetBurn", "AbC", "A1B2c3D"}
	r := rand.New(rand.NewPCG(1, 2))
	const letters = "aAbB0zZ9"
	for range 2000 {
		b := make([]byte, 1+r.IntN(10))
		for i := range b {
			b[i] = letters[r.IntN(len(letters))]
		}
		words = append(words, string(b))
	}
	for _, w := range words {
		if got, want := camelPartsASCII(w), camelPartsRunes(w); !slices.Equal(got, want) {
			t.Errorf("camelPartsASCII(%q) = %q, want %q", w, got, want)
		}
	}
}

// TestSnippetClipsLongWords checks that a run of text without white space,
// such as a pasted blob, is cut in snippets, marked or not, and in the
// leading words of a listing.
func TestSnippetClipsLongWords(t *testing.T) {
	blob := strings.Repeat("x", 200000)
	for _, c := range []struct {
		name string
		h    Highlight
	}{
		{"beside a match", Parse("wallaby").Highlight("t", nil, "wallaby "+blob+" wallaby end")},
		{"in a match", Parse("xxx*").Highlight("t", nil, "see "+blob+" end")},
		{"leading words", Leading(blob+" end", SnippetWords)},
		{"whole body", Parse("wallaby").HighlightWhole("t", nil, "wallaby "+blob)},
	} {
		if len(c.h.Text) > 400 || len(c.h.HTML) > 500 {
			t.Errorf("%s: snippet of %d bytes, HTML of %d; want a few lines", c.name, len(c.h.Text), len(c.h.HTML))
		}
		if !strings.Contains(c.h.Text, strings.Repeat("x", MaxSnippetWord)+Ellipsis) {
			t.Errorf("%s: snippet %.120q does not show the blob's start cut with an ellipsis", c.name, c.h.Text)
		}
	}
	if h := Parse("xxx*").Highlight("t", nil, "see "+blob); !strings.Contains(h.HTML, "<mark>x") || !strings.Contains(h.HTML, Ellipsis+"</mark>") {
		t.Errorf("a cut match keeps its mark: HTML %.200q", h.HTML)
	}
}

// TestHasSpaceRun checks the byte scan of collapseSpace against its
// definition: white space other than single spaces.
func TestHasSpaceRun(t *testing.T) {
	pieces := []string{"a", " ", "  ", "\t", "\n", "\r", "\v", "\f", "é", "\u00a0", "\u0085", "\u2028", "\u3000", "日", "\xff"}
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		s := ""
		for range r.IntN(6) {
			s += pieces[r.IntN(len(pieces))]
		}
		want := strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) && r != ' ' }) || strings.Contains(s, "  ")
		if got := hasSpaceRun(s); got != want {
			t.Fatalf("hasSpaceRun(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestSnippetPicksLeadingOrHighlight checks that Snippet shows a body's
// first words for a listing and a query without terms, and the matches
// otherwise.
func TestSnippetPicksLeadingOrHighlight(t *testing.T) {
	body := "First words here. " + strings.Repeat("filler ", 30) + "the failover step."
	empty := Parse("🚨")
	for name, q := range map[string]*Query{"listing": nil, "no terms": &empty} {
		if got, want := Snippet(q, "Title", nil, body), Leading(body, SnippetWords); got.Text != want.Text {
			t.Errorf("%s: snippet %q, want the leading words %q", name, got.Text, want.Text)
		}
	}
	q := Parse("failover")
	if got := Snippet(&q, "Title", nil, body); !strings.Contains(got.Text, "[failover]") {
		t.Errorf("query: snippet %q, want [failover] marked", got.Text)
	}
}

// TestNextPageAnchorsOnLastHit checks the pages after writes that move
// every score: the last returned hit, unchanged, anchors the next page,
// where the cursor's score would rule out every hit.
func TestNextPageAnchorsOnLastHit(t *testing.T) {
	// Three strong hits and twenty tied ones, in pages of five.
	var names []string
	for i := range 20 {
		names = append(names, fmt.Sprintf("tie%02d", i))
	}
	all := append(ranked("top0", "top1", "top2"), ranked(names...)...)
	for i := range all {
		all[i].Seq = int64(100 + i)
		if i >= 3 {
			all[i].Score = 1
		}
	}

	var c *Cursor
	for range 2 {
		_, c = NextPage(all, c, 5, 7, false)
	}
	if c.ID != "tie06" || c.Seq != all[9].Seq {
		t.Fatalf("cursor after two pages = %+v, want tie06 with its row", c)
	}

	// top0 was rewritten: it falls to the end, and the longer article
	// lifts every other score above the cursor's.
	moved := slices.Clone(all[1:])
	for i := range moved {
		moved[i].Score += 0.01
	}
	moved = append(moved, Ranked{Seq: 200, ID: "top0", Score: 0.5})
	page, next := NextPage(moved, c, 5, 7, false)
	if got := ids(page); !slices.Equal(got, []string{"tie07", "tie08", "tie09", "tie10", "tie11"}) {
		t.Errorf("page after the scores moved = %v, want tie07 to tie11", got)
	}
	if next == nil {
		t.Error("the page after the scores moved is the last, want more")
	}

	// Without the row, as in cursors written before it was kept, the
	// score decides, and only the changed hit follows.
	old := *c
	old.Seq = 0
	if page, _ := NextPage(moved, &old, 5, 7, false); !slices.Equal(ids(page), []string{"top0"}) {
		t.Errorf("page of a cursor without the row = %v, want [top0]", ids(page))
	}

	// In a ranking of Need hits the anchor fell next to the end: the
	// short page after it is not the last.
	at := slices.IndexFunc(moved, func(r Ranked) bool { return r.ID == "tie06" })
	fell := slices.Delete(slices.Clone(moved), at, at+1)
	fell = append(fell, moved[at], Ranked{Seq: 201, ID: "extra", Score: 0.4})
	if len(fell) != Need(c, 5) {
		t.Fatalf("the cut ranking has %d hits, want Need's %d", len(fell), Need(c, 5))
	}
	if page, next := NextPage(fell, c, 5, 7, false); !slices.Equal(ids(page), []string{"extra"}) || next == nil {
		t.Errorf("page of a cut ranking = %v, next %v; want [extra] and more", ids(page), next)
	}
}

// simpleRanking returns n hits h00, h01... with rows from 1 and falling
// scores.
func simpleRanking(n int) []Ranked {
	out := make([]Ranked, n)
	for i := range out {
		out[i] = Ranked{Seq: int64(i + 1), ID: fmt.Sprintf("h%02d", i), Score: float64(100 - i)}
	}
	return out
}

// TestNextPageLastHitFell lifts every score and moves the unchanged last
// hit eleven places down, so that a ranking of Need hits shows only a
// few hits after it: the pages go on.
func TestNextPageLastHitFell(t *testing.T) {
	all := simpleRanking(40)
	_, c := NextPage(all, nil, 10, 1, false)
	var moved []Ranked
	for _, r := range all[1:] {
		if r.ID != "h09" {
			r.Score += 50
			moved = append(moved, r)
		}
	}
	last := all[9]
	last.Score = 129.5
	at := slices.IndexFunc(moved, func(r Ranked) bool { return r.ID == "h21" })
	moved = slices.Insert(moved, at, last)[:Need(c, 10)]
	page, next := NextPage(moved, c, 10, 1, false)
	if len(page) == 0 || next == nil {
		t.Errorf("page 2 = %v, next %v; want hits and more", ids(page), next)
	}
}

// TestNextPageLastHitEdited lifts every score and edits the last hit: the
// hit before it in the tail anchors the page.
func TestNextPageLastHitEdited(t *testing.T) {
	all := simpleRanking(40)
	_, c := NextPage(all, nil, 10, 1, false)
	var moved []Ranked
	for _, r := range all[1:] {
		r.Score += 50
		if r.ID == "h09" {
			r.Seq = 1000
		}
		moved = append(moved, r)
	}
	page, next := NextPage(moved[:Need(c, 10)], c, 10, 1, false)
	if got := ids(page); !slices.Equal(got, []string{"h10", "h11", "h12", "h13", "h14", "h15", "h16", "h17", "h18", "h19"}) || next == nil {
		t.Errorf("page 2 = %v, next %v; want h10 to h19 and more", got, next)
	}
}

// TestCursorKeepsRow checks that a cursor's row survives encoding and
// that a version 1 cursor, written without one, still decodes.
func TestCursorKeepsRow(t *testing.T) {
	// Version 1: key 7, offset 10, seen 3, no tail, score 1.5, updated
	// 0, id "tie06".
	v1 := []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 7, 10, 0, 0, 0, 0, 0, 0, 0, 3, 0}
	v1 = binary.BigEndian.AppendUint64(v1, math.Float64bits(1.5))
	v1 = append(binary.AppendVarint(v1, 0), "tie06"...)
	if got, err := DecodeCursor(base64.RawURLEncoding.EncodeToString(v1)); err != nil || got.ID != "tie06" || got.Seq != 0 || got.Offset != 10 || got.Score != 1.5 {
		t.Errorf("version 1 cursor decoded as %+v, %v", got, err)
	}
	for _, c := range []Cursor{
		{Key: 7, Offset: 10, Seen: 3, Tail: []uint64{1, 2}, Score: 1.5, ID: "tie06", Seq: 109},
		{Key: 7, Offset: 10, Seen: 3, Tail: []uint64{1, 2}, Score: 1.5, ID: "tie06"},
		{Key: 7, List: true, Updated: -5, ID: "x", Seq: -3},
	} {
		got, err := DecodeCursor(c.Encode())
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if got.Seq != c.Seq || got.ID != c.ID || got.Updated != c.Updated || got.Offset != c.Offset {
			t.Errorf("decoded %+v, want %+v", got, c)
		}
	}
}

// TestNextPageAfterInsertsAbove inserts ten hits above the pages read,
// in rankings of Need hits as the stores pass them: every earlier hit
// still comes once.
func TestNextPageAfterInsertsAbove(t *testing.T) {
	all := simpleRanking(60)
	ranking := all
	var c *Cursor
	seen := map[string]int{}
	for page := range 100 {
		if page == 2 {
			var fresh []Ranked
			for i := range 10 {
				fresh = append(fresh, Ranked{Seq: int64(1000 + i), ID: fmt.Sprintf("new%02d", i), Score: 200 - float64(i)})
			}
			ranking = append(fresh, all...)
		}
		var hits []Ranked
		hits, c = NextPage(ranking[:min(len(ranking), Need(c, 5))], c, 5, 1, false)
		for _, r := range hits {
			seen[r.ID]++
		}
		if c == nil {
			break
		}
	}
	for _, r := range all {
		if seen[r.ID] != 1 {
			t.Errorf("%s came %d times, want once", r.ID, seen[r.ID])
		}
	}
}
