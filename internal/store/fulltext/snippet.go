package fulltext

import (
	"bytes"
	"encoding/binary"
	"html"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// SnippetWords is the length of a snippet cut from a body, in tokens: words
// and CJK characters.
const SnippetWords = 16

// Snippet marks. Plain snippets put '[' and ']' around each match, which
// reads well but is ambiguous where the article itself has brackets, as
// Markdown links do. HTML snippets escape the article text, so they hold
// no markup of their own, and put each match in <mark> and </mark>.
const (
	MarkOpen      = "["
	MarkClose     = "]"
	HTMLMarkOpen  = "<mark>"
	HTMLMarkClose = "</mark>"
	// Ellipsis stands for the text left out before or after a snippet.
	Ellipsis = "…"
)

// Highlight is the snippet of one hit and the terms found in the article.
type Highlight struct {
	// Text is plain text with each match between MarkOpen and MarkClose.
	Text string
	// HTML is the same snippet with the article text HTML-escaped and each
	// match between HTMLMarkOpen and HTMLMarkClose, safe to insert into a
	// page as it is.
	HTML string
	// Matched lists the Text of each query term found in the title, tags
	// or body, in query order.
	Matched []string
}

// match is one occurrence of a term: tokens First to Last of a text. It is
// HintMatch, so that a hint's matches need no copy.
type match = HintMatch

// Highlight cuts the snippet of an article. It is SnippetWords tokens of
// the body around the place where the most distinct terms match. When only
// the title matches, it is the title, and when neither does, because only
// the tags matched, it is the plain title. Matches are found as the index
// finds them: without case and accents, phrases as consecutive words, and
// a camel-case word through any of its parts.
func (q Query) Highlight(title string, tags []string, body string) Highlight {
	return q.highlight(title, tags, body, nil)
}

// Hint is an index's record of a query's matches in one body: the body's
// layout and the words each term matches there, so that a snippet needs
// only the words around the best window tokenized.
type Hint struct {
	Layout *Layout
	// Matches are the places where a term matches, as word numbers of
	// the layout, ordered by First. A match in a camel-case part is the
	// whole word.
	Matches []HintMatch
	// Found[i] reports whether term i matches anywhere in the body.
	Found []bool
}

// HintMatch is a match of term Term on words First to Last.
type HintMatch struct {
	First, Last, Term int
}

// HighlightWhole is Highlight with the whole body tokenized, whatever its
// length: the reference that Highlight and HighlightHint approximate, for
// tests that compare them.
func (q Query) HighlightWhole(title string, tags []string, body string) Highlight {
	found := make([]bool, len(q.Terms))
	toks := tokenize(body, true)
	part := textPart{toks: toks, matches: q.matches(toks, found), hi: len(body)}
	return q.finish(title, tags, body, part, found)
}

// HighlightHint is Highlight for a body whose matches the hint gives. It
// picks the window from the hint as HighlightWhole picks it from all
// tokens, so the snippets are the same, and tokenizes only the words
// around it. A hint that does not fit the body, such as one for another
// version, is ignored.
func (q Query) HighlightHint(title string, tags []string, body string, hint *Hint) Highlight {
	return q.highlight(title, tags, body, hint)
}

func (q Query) highlight(title string, tags []string, body string, hint *Hint) Highlight {
	found := make([]bool, len(q.Terms))

	part, ok := q.hintPart(body, hint, found)
	if !ok {
		part = q.bodyMatches(body, found)
	}
	h := q.finish(title, tags, body, part, found)
	if ok {
		// The snippet holds no token; the next hint's part reuses them.
		putTokens(part.toks)
	}
	return h
}

// tokenPool holds the token slices of hinted parts, which every hit of a
// search needs once.
var tokenPool sync.Pool

func getTokens() []token {
	if p, ok := tokenPool.Get().(*[]token); ok {
		return (*p)[:0]
	}
	return make([]token, 0, 3*MarkEvery)
}

func putTokens(toks []token) {
	if cap(toks) == 0 {
		return
	}
	clear(toks)
	tokenPool.Put(&toks)
}

// finish adds the title and tags to the matches that found records for
// the body, and cuts the snippet from part.
func (q Query) finish(title string, tags []string, body string, part textPart, found []bool) Highlight {
	var h Highlight
	// The title and tags matter for the snippet only when the body has no
	// match, and for Matched only when a term is missing from the body.
	var titleToks []token
	var titleMatches []match
	if len(part.matches) == 0 || slices.Contains(found, false) {
		titleToks = tokenize(title, true)
		titleMatches = q.matches(titleToks, found)
		if len(tags) > 0 {
			q.matches(tokenize(strings.Join(tags, " "), true), found)
		}
	}
	if n := countTrue(found); n > 0 {
		h.Matched = make([]string, 0, n)
		for i, t := range q.Terms {
			if found[i] {
				h.Matched = append(h.Matched, t.Text)
			}
		}
	}

	switch {
	case len(part.matches) > 0 && part.window:
		h.Text, h.HTML = render(body, part, part.first, part.last)
	case len(part.matches) > 0:
		s, e, _, _ := bestWindow(part.toks, part.matches, SnippetWords)
		h.Text, h.HTML = render(body, part, s, e)
	case len(titleMatches) > 0:
		h.Text, h.HTML = render(title, textPart{toks: titleToks, matches: titleMatches, hi: len(title)}, 0, len(titleToks)-1)
	default:
		h.Text = collapseSpace(title)
		h.HTML = html.EscapeString(h.Text)
	}
	return h
}

// hintPart returns the part of the body around the best window of the
// hint's matches and sets found from the hint. It reports false when the
// hint is missing or does not fit the body.
func (q Query) hintPart(body string, hint *Hint, found []bool) (textPart, bool) {
	if hint == nil || hint.Layout == nil || len(hint.Found) != len(q.Terms) || len(hint.Layout.Marks) == 0 {
		return textPart{}, false
	}
	l := hint.Layout
	ms := hint.Matches
	for _, m := range ms {
		if m.First < 0 || m.Last < m.First || m.Last >= l.Tokens || m.Term < 0 || m.Term >= len(q.Terms) {
			return textPart{}, false
		}
	}

	if len(ms) == 0 {
		copy(found, hint.Found)
		return textPart{}, true
	}
	first, last, _, _ := bestWindowOf(l.Tokens, ms, SnippetWords)
	// Tokenize from the mark before the word ahead of the window to the
	// mark after the word behind it, so that render gets both neighbors.
	// From the first mark, the part starts at the start of the body, so
	// that no ellipsis stands for the text before the first word.
	from, to := max(0, first-1), min(last+1, l.Tokens-1)
	if from/MarkEvery >= len(l.Marks) {
		return textPart{}, false
	}
	base := from / MarkEvery * MarkEvery
	lo, hi := int(l.Marks[from/MarkEvery]), len(body)
	if base == 0 {
		lo = 0
	}
	if k := to/MarkEvery + 1; k < len(l.Marks) {
		hi = int(l.Marks[k])
	}
	if lo < 0 || lo > hi || hi > len(body) {
		return textPart{}, false
	}

	// Tokens after the one behind the window are not needed.
	toks := appendTokens(getTokens(), body[lo:hi], true, to-base+1)
	if len(toks) <= last-base {
		return textPart{}, false
	}
	for i := range toks {
		toks[i].start += lo
		toks[i].end += lo
	}
	// The hint's matches in the part are its matches. Each is confirmed
	// on its tokens, so that a hint that does not fit the body is
	// dropped.
	local := make([]match, 0, min(len(ms), len(toks)))
	for _, m := range ms {
		if m.First < base || m.Last-base >= len(toks) {
			continue
		}
		lm := match{First: m.First - base, Last: m.Last - base, Term: m.Term}
		if q.Terms[m.Term].matchAt(toks, lm.First) != lm.Last-lm.First+1 {
			return textPart{}, false
		}
		local = append(local, lm)
	}
	if len(local) == 0 {
		return textPart{}, false
	}
	copy(found, hint.Found)
	// The window is renumbered to the tokens of the part; render marks
	// the matches inside it, camel-case parts included.
	return textPart{toks: toks, matches: local, lo: lo, hi: hi, first: first - base, last: last - base, window: true}, true
}

// countTrue returns the number of true values in found.
func countTrue(found []bool) int {
	n := 0
	for _, f := range found {
		if f {
			n++
		}
	}
	return n
}

// textPart is the tokens of text[lo:hi] and the matches among them.
type textPart struct {
	toks    []token
	matches []match
	lo, hi  int
	// window marks a part whose snippet window is already chosen: tokens
	// first to last.
	window      bool
	first, last int
}

// Limits of the search for a snippet in part of a body.
const (
	// partsFrom is the body length, in bytes, from which a snippet is
	// looked for around the places that match rather than in the whole
	// body.
	partsFrom = 1024
	// partBefore and partAfter are how much text around the chosen places
	// is tokenized, in bytes: more than the words a snippet shows.
	partBefore, partAfter = 120, 200
	// clusterBytes is the span in which places count as one window when
	// the part is chosen, about SnippetWords words of English.
	clusterBytes = 120
	// maxPlaces bounds the places per term that are looked at, so that a
	// body repeating a word thousands of times costs no more than a whole
	// tokenization. The bound is high because the window where the terms
	// meet may come after many lone occurrences of one of them.
	maxPlaces = 1024
)

// place is one occurrence of a term in a body, by byte offset.
type place struct {
	at   int
	term int
}

// bodyMatches returns the part of the body where the snippet is cut, its
// tokens and matches, and sets found[i] for each term i that occurs.
//
// Tokenizing a whole body costs more than ranking the article, so a long
// body is tokenized only where the snippet will be. In a body whose words
// are all ASCII, a token's index form is its text in lower case. So a
// term's first word can match only where the lower-case body contains it:
// at the start of a word, or at an upper-case letter that may start a
// camel-case part. Places are confirmed by tokenizing the words there
// (see the loop) and grouped into windows of clusterBytes. The window with
// the most distinct terms, then the most places, is tokenized with a few
// hundred bytes around it, and bestWindow picks the snippet there. A body
// with other words, or a query with such words, is tokenized whole.
func (q Query) bodyMatches(body string, found []bool) textPart {
	whole := func() textPart {
		toks := tokenize(body, true)
		return textPart{toks: toks, matches: q.matches(toks, found), hi: len(body)}
	}
	if len(body) < partsFrom || !q.asciiUnits() || hasNonASCIIWord(body) {
		return whole()
	}
	// The body in lower case, byte for byte, so offsets stay the same.
	lower := make([]byte, len(body))
	for i := 0; i < len(body); i++ {
		c := body[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}

	var places []place
	for ti := range q.Terms {
		t := &q.Terms[ti]
		u := []byte(t.units[0].norm)
		n := 0
		for at := 0; n < maxPlaces; {
			i := bytes.Index(lower[at:], u)
			if i < 0 {
				break
			}
			i += at
			at = i + 1
			if i > 0 && isASCIIWord(body[i-1]) && !('A' <= body[i] && body[i] <= 'Z') {
				continue // inside a word, where no token or part starts
			}
			// A phrase is confirmed at every place, because its first
			// word also occurs without the rest. For a single word, once one place
			// is confirmed, the others need only end where a token or a
			// camel-case part does: they only choose the part, whose own
			// tokens then decide the matches.
			if len(t.units) > 1 || !found[ti] {
				if !t.matchesAt(body, i) {
					continue
				}
			} else if end := i + len(u); !t.unitPrefix && end < len(body) && isLowerOrDigit(body[end]) {
				continue
			}
			n++
			found[ti] = true
			places = append(places, place{at: i, term: ti})
		}
	}
	if len(places) == 0 {
		return textPart{}
	}

	slices.SortFunc(places, func(a, b place) int { return a.at - b.at })
	bestFirst, bestLast, bestDistinct, bestCount := 0, 0, 0, 0
	for i, p := range places {
		var seen uint64
		last := i
		for j := i; j < len(places) && places[j].at < p.at+clusterBytes; j++ {
			seen |= 1 << uint(places[j].term)
			last = j
		}
		distinct, count := bits.OnesCount64(seen), last-i+1
		if distinct > bestDistinct || distinct == bestDistinct && count > bestCount {
			bestFirst, bestLast, bestDistinct, bestCount = i, last, distinct, count
		}
	}

	lo := wordEdge(body, places[bestFirst].at-partBefore, -1)
	hi := wordEdge(body, places[bestLast].at+clusterBytes+partAfter, 1)
	toks := tokenize(body[lo:hi], true)
	for i := range toks {
		toks[i].start += lo
		toks[i].end += lo
	}
	ms := q.matches(toks, make([]bool, len(q.Terms)))
	if len(ms) == 0 {
		return whole()
	}
	return textPart{toks: toks, matches: ms, lo: lo, hi: hi}
}

// matchesAt reports whether the term occurs at byte i of an ASCII body:
// as a whole word or, for a term of one word, as a camel-case part. The
// words from i on are tokenized until there are as many as the term has,
// however much space or punctuation lies between them.
func (t *Term) matchesAt(body string, i int) bool {
	start := wordEdge(body, i, -1)
	if start < i && !isASCIIWord(body[start]) {
		start++
	}
	for span := len(t.Text) + 8*len(t.units) + 8; ; span *= 2 {
		end := wordEdge(body, i+span, 1)
		toks := tokenize(body[start:end], true)
		k := 0
		for k < len(toks) && toks[k].end <= i-start {
			k++
		}
		if k+len(t.units) <= len(toks) || end == len(body) {
			return k < len(toks) && t.matchAt(toks, k) > 0
		}
	}
}

// isLowerOrDigit reports whether c is an ASCII lower-case letter or
// digit, which continues the word or camel-case part before it.
func isLowerOrDigit(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// isASCIIWord reports whether c is an ASCII letter or digit. Bytes of
// UTF-8 sequences are not.
func isASCIIWord(c byte) bool { return c < utf8.RuneSelf && asciiWord[c] }

// asciiUnits reports whether every word of every term is ASCII.
func (q Query) asciiUnits() bool {
	for _, t := range q.Terms {
		if len(t.units) == 0 {
			return false
		}
		for _, u := range t.units {
			if u.cjk {
				return false
			}
			for i := 0; i < len(u.norm); i++ {
				if u.norm[i] >= utf8.RuneSelf {
					return false
				}
			}
		}
	}
	return true
}

// hasNonASCIIWord reports whether s has a letter, digit or mark outside
// ASCII.
func hasNonASCIIWord(s string) bool {
	for i := 0; i < len(s); {
		// Eight bytes at a time while they are all ASCII.
		if i+8 <= len(s) && binary.LittleEndian.Uint64([]byte(s[i:i+8]))&0x8080808080808080 == 0 {
			i += 8
			continue
		}
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if isWordRune(r) {
			return true
		}
		i += size
	}
	return false
}

// wordEdge moves i, clamped to s, in direction dir (-1 or 1) to the next
// ASCII byte that no word contains, so that a part of s cut there splits
// neither a word nor a UTF-8 sequence.
func wordEdge(s string, i, dir int) int {
	if i <= 0 {
		return 0
	}
	if i >= len(s) {
		return len(s)
	}
	for i > 0 && i < len(s) {
		if !isASCIIWord(s[i]) && s[i] < utf8.RuneSelf {
			return i
		}
		i += dir
	}
	return max(0, min(i, len(s)))
}

// Leading returns the first n words of body, split at white space, as a
// snippet without matches, with Ellipsis appended when the body has more.
func Leading(body string, n int) Highlight {
	words := strings.Fields(body)
	text := strings.Join(words, " ")
	if len(words) > n {
		text = strings.Join(words[:n], " ") + Ellipsis
	}
	text = clipWords(text)
	return Highlight{Text: text, HTML: html.EscapeString(text)}
}

// Snippet cuts the snippet of a hit: Highlight for a query with terms,
// and the body's first SnippetWords words for a listing, whose query is
// nil, or for a query without terms.
func Snippet(q *Query, title string, tags []string, body string) Highlight {
	if q == nil || len(q.Terms) == 0 {
		return Leading(body, SnippetWords)
	}
	return q.Highlight(title, tags, body)
}

// MaxSnippetWord is the longest run of text without white space that a
// snippet shows, in bytes. A longer one, such as a pasted blob, is cut
// and ends in Ellipsis, so that a snippet stays a few lines long.
const MaxSnippetWord = 80

// clipWords cuts each run of s without white space that is longer than
// MaxSnippetWord.
func clipWords(s string) string {
	if len(s) <= MaxSnippetWord {
		return s
	}
	run := 0
	long := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			run = 0
			continue
		}
		if run += utf8.RuneLen(r); run > MaxSnippetWord {
			long = true
			break
		}
	}
	if !long {
		return s
	}
	var b strings.Builder
	run = 0
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			run = 0
			b.WriteRune(r)
		case run < 0:
			// The rest of a run already cut.
		case run+utf8.RuneLen(r) > MaxSnippetWord:
			b.WriteString(Ellipsis)
			run = -1
		default:
			run += utf8.RuneLen(r)
			b.WriteRune(r)
		}
	}
	return b.String()
}

// matches returns every occurrence of every term in toks, ordered by first
// token, and sets found[i] for each term i that occurs.
func (q Query) matches(toks []token, found []bool) []match {
	var out []match
	for i := range toks {
		for ti := range q.Terms {
			if n := q.Terms[ti].matchAt(toks, i); n > 0 {
				out = append(out, match{First: i, Last: i + n - 1, Term: ti})
				found[ti] = true
			}
		}
	}
	return out
}

// matchAt returns the number of tokens of the term's occurrence that starts
// at toks[i], or 0 when none does.
func (t *Term) matchAt(toks []token, i int) int {
	if len(t.units) == 0 || i+len(t.units) > len(toks) {
		return 0
	}
	for k, u := range t.units {
		d := &toks[i+k]
		if u.cjk != d.cjk {
			return 0
		}
		prefix := t.unitPrefix && k == len(t.units)-1
		if !unitMatches(u.norm, d, prefix, len(t.units) == 1) {
			return 0
		}
	}
	return len(t.units)
}

// unitMatches reports whether one word of a term matches a token. A term
// of one word also matches a camel-case part, as the index does.
func unitMatches(u string, d *token, prefix, parts bool) bool {
	eq := func(s string) bool {
		if prefix {
			return strings.HasPrefix(s, u)
		}
		return s == u
	}
	if eq(d.norm) {
		return true
	}
	if !parts || d.camel != "" && !strings.Contains(d.norm, u) {
		// The parts of an ASCII word are pieces of its lower-case form.
		return false
	}
	return slices.ContainsFunc(d.wordParts(), eq)
}

// bestWindow returns the first and last token of the window of at most
// size tokens that holds the most distinct terms, then the most matches,
// and comes first, with those two numbers. The window starts a few tokens before its first match,
// when they fit, so the snippet shows what leads up to it, and near the
// end of the text it starts early enough to hold size tokens.
func bestWindow(toks []token, ms []match, size int) (first, last, distinct, count int) {
	return bestWindowOf(len(toks), ms, size)
}

// bestWindowOf is bestWindow for a text of n tokens.
func bestWindowOf(n int, ms []match, size int) (first, last, distinct, count int) {
	bestStart, bestDistinct, bestCount, bestEnd := 0, -1, 0, 0
	for i, m := range ms {
		// Queries have at most MaxTerms (64) terms, one bit each.
		var seen uint64
		count, end := 0, m.Last
		for _, n := range ms[i:] {
			if n.Last >= m.First+size {
				break
			}
			seen |= 1 << uint(n.Term)
			count++
			end = max(end, n.Last)
		}
		distinct := bits.OnesCount64(seen)
		if distinct > bestDistinct || distinct == bestDistinct && count > bestCount {
			bestStart, bestDistinct, bestCount, bestEnd = m.First, distinct, count, end
		}
	}
	lead := max(0, min(3, bestStart, size-1-(bestEnd-bestStart)))
	first = bestStart - lead
	last = first + size - 1
	if over := last - (n - 1); over > 0 {
		// Near the end of the text, the window takes more tokens before.
		first = max(0, first-over)
		last = n - 1
	}
	return first, last, bestDistinct, bestCount
}

// render writes tokens first to last of part as a plain and an HTML
// snippet, with the matches inside marked and runs of white space written
// as one space. An ellipsis stands for text of the whole before or after
// the tokens written.
func render(text string, part textPart, first, last int) (plain, htm string) {
	toks, ms := part.toks, part.matches
	var p, h strings.Builder
	before := first > 0 || part.lo > 0
	after := last < len(toks)-1 || part.hi < len(text)
	if before {
		p.WriteString(Ellipsis)
		h.WriteString(Ellipsis)
	}
	// The snippet runs from white space to white space, so that a word
	// keeps the punctuation attached to it, as in "<b>" or "(see".
	pos, end := toks[first].start, toks[last].end
	floor, ceil := part.lo, part.hi
	if first > 0 {
		floor = toks[first-1].end
	}
	if last+1 < len(toks) {
		ceil = toks[last+1].start
	}
	for pos > floor {
		r, size := utf8.DecodeLastRuneInString(text[:pos])
		if unicode.IsSpace(r) {
			break
		}
		pos -= size
	}
	for end < ceil {
		r, size := utf8.DecodeRuneInString(text[end:])
		if unicode.IsSpace(r) {
			break
		}
		end += size
	}
	// Marks and an ellipsis at each end come on top of the text.
	p.Grow(end - pos + 64)
	h.Grow(end - pos + 128)

	for i := 0; i < len(ms); i++ {
		m := ms[i]
		if m.First < first || m.Last > last {
			continue
		}
		// Overlapping and adjacent occurrences form one mark.
		markEnd := m.Last
		for i+1 < len(ms) && ms[i+1].First <= markEnd+1 && ms[i+1].Last <= last {
			i++
			markEnd = max(markEnd, ms[i].Last)
		}
		start, stop := toks[m.First].start, toks[markEnd].end
		if start < pos {
			continue
		}
		between := clipWords(collapseSpace(text[pos:start]))
		marked := clipWords(collapseSpace(text[start:stop]))
		p.WriteString(between)
		p.WriteString(MarkOpen)
		p.WriteString(marked)
		p.WriteString(MarkClose)
		h.WriteString(html.EscapeString(between))
		h.WriteString(HTMLMarkOpen)
		h.WriteString(html.EscapeString(marked))
		h.WriteString(HTMLMarkClose)
		pos = stop
	}

	rest := clipWords(collapseSpace(text[pos:end]))
	p.WriteString(rest)
	h.WriteString(html.EscapeString(rest))
	if after {
		p.WriteString(Ellipsis)
		h.WriteString(Ellipsis)
	}
	return p.String(), h.String()
}

// hasSpaceRun reports whether s has white space other than single spaces,
// which collapseSpace would change. ASCII bytes are tested one by one.
func hasSpaceRun(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ':
			if i+1 < len(s) && s[i+1] == ' ' {
				return true
			}
		case c == '\t', c == '\n', c == '\v', c == '\f', c == '\r':
			return true
		case c >= utf8.RuneSelf:
			rest := s[i:]
			return strings.ContainsFunc(rest, func(r rune) bool { return unicode.IsSpace(r) && r != ' ' }) || strings.Contains(rest, "  ")
		}
	}
	return false
}

// collapseSpace replaces each run of white space in s with one space.
func collapseSpace(s string) string {
	if !hasSpaceRun(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}
