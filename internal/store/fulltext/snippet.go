package fulltext

import (
	"html"
	"math/bits"
	"slices"
	"strings"
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

// match is one occurrence of a term: tokens first to last of a text.
type match struct {
	first, last int
	term        int
}

// Highlight cuts the snippet of an article. It is SnippetWords tokens of
// the body around the place where the most distinct terms match. When only
// the title matches, it is the title, and when neither does, because only
// the tags matched, it is the plain title. Matches are found as the index
// finds them: without case and accents, phrases as consecutive words, and
// a camel-case word through any of its parts.
func (q Query) Highlight(title string, tags []string, body string) Highlight {
	var h Highlight
	found := make([]bool, len(q.Terms))

	bodyToks := tokenize(body, true)
	bodyMatches := q.matches(bodyToks, found)
	titleToks := tokenize(title, true)
	titleMatches := q.matches(titleToks, found)
	if len(tags) > 0 {
		q.matches(tokenize(strings.Join(tags, " "), true), found)
	}
	for i, t := range q.Terms {
		if found[i] {
			h.Matched = append(h.Matched, t.Text)
		}
	}

	switch {
	case len(bodyMatches) > 0:
		s, e := bestWindow(bodyToks, bodyMatches, SnippetWords)
		h.Text, h.HTML = render(body, bodyToks, s, e, bodyMatches)
	case len(titleMatches) > 0:
		h.Text, h.HTML = render(title, titleToks, 0, len(titleToks)-1, titleMatches)
	default:
		h.Text = collapseSpace(title)
		h.HTML = html.EscapeString(h.Text)
	}
	return h
}

// Leading returns the first n words of body, split at white space, as a
// snippet without matches, with Ellipsis appended when the body has more.
func Leading(body string, n int) Highlight {
	words := strings.Fields(body)
	text := strings.Join(words, " ")
	if len(words) > n {
		text = strings.Join(words[:n], " ") + Ellipsis
	}
	return Highlight{Text: text, HTML: html.EscapeString(text)}
}

// matches returns every occurrence of every term in toks, ordered by first
// token, and sets found[i] for each term i that occurs.
func (q Query) matches(toks []token, found []bool) []match {
	var out []match
	for i := range toks {
		for ti := range q.Terms {
			if n := q.Terms[ti].matchAt(toks, i); n > 0 {
				out = append(out, match{first: i, last: i + n - 1, term: ti})
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
	return parts && slices.ContainsFunc(d.parts, eq)
}

// bestWindow returns the first and last token of the window of at most
// size tokens that holds the most distinct terms, then the most matches,
// and comes first. The window starts a few tokens before its first match,
// when they fit, so the snippet shows what leads up to it, and near the
// end of the text it starts early enough to hold size tokens.
func bestWindow(toks []token, ms []match, size int) (first, last int) {
	bestStart, bestDistinct, bestCount, bestEnd := 0, -1, 0, 0
	for i, m := range ms {
		// Queries have at most MaxTerms (64) terms, one bit each.
		var seen uint64
		count, end := 0, m.last
		for _, n := range ms[i:] {
			if n.last >= m.first+size {
				break
			}
			seen |= 1 << uint(n.term)
			count++
			end = max(end, n.last)
		}
		distinct := bits.OnesCount64(seen)
		if distinct > bestDistinct || distinct == bestDistinct && count > bestCount {
			bestStart, bestDistinct, bestCount, bestEnd = m.first, distinct, count, end
		}
	}
	lead := max(0, min(3, bestStart, size-1-(bestEnd-bestStart)))
	first = bestStart - lead
	last = first + size - 1
	if over := last - (len(toks) - 1); over > 0 {
		// Near the end of the text, the window takes more tokens before.
		first = max(0, first-over)
		last = len(toks) - 1
	}
	return first, last
}

// render writes tokens first to last of text as a plain and an HTML
// snippet, with the matches inside marked and runs of white space written
// as one space.
func render(text string, toks []token, first, last int, ms []match) (plain, htm string) {
	var p, h strings.Builder
	if first > 0 {
		p.WriteString(Ellipsis)
		h.WriteString(Ellipsis)
	}
	// The snippet runs from white space to white space, so that a word
	// keeps the punctuation attached to it, as in "<b>" or "(see".
	pos, end := toks[first].start, toks[last].end
	floor, ceil := 0, len(text)
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

	for i := 0; i < len(ms); i++ {
		m := ms[i]
		if m.first < first || m.last > last {
			continue
		}
		// Overlapping and adjacent occurrences form one mark.
		markEnd := m.last
		for i+1 < len(ms) && ms[i+1].first <= markEnd+1 && ms[i+1].last <= last {
			i++
			markEnd = max(markEnd, ms[i].last)
		}
		start, stop := toks[m.first].start, toks[markEnd].end
		if start < pos {
			continue
		}
		between := collapseSpace(text[pos:start])
		marked := collapseSpace(text[start:stop])
		p.WriteString(between)
		p.WriteString(MarkOpen + marked + MarkClose)
		h.WriteString(html.EscapeString(between))
		h.WriteString(HTMLMarkOpen + html.EscapeString(marked) + HTMLMarkClose)
		pos = stop
	}

	rest := collapseSpace(text[pos:end])
	p.WriteString(rest)
	h.WriteString(html.EscapeString(rest))
	if last < len(toks)-1 {
		p.WriteString(Ellipsis)
		h.WriteString(Ellipsis)
	}
	return p.String(), h.String()
}

// collapseSpace replaces each run of white space in s with one space.
func collapseSpace(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) && r != ' ' }) && !strings.Contains(s, "  ") {
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
