package fulltext

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of a parsed query.
const (
	// MaxTerms is the number of terms a query keeps; later ones are
	// dropped, because every term costs one index scan.
	MaxTerms = 64
	// MinPrefixRunes is the shortest prefix searched as one. A prefix of
	// one or two letters expands to a large part of the vocabulary, so
	// "ab*" is searched as the word "ab".
	MinPrefixRunes = 3
)

// Query is search text parsed into terms. The syntax is small and never
// fails. Words separated by white space are terms. Text in double quotes is
// one phrase term, whose words must appear next to each other in that
// order, and an unmatched quote runs to the end. A word that ends in '*' is
// a prefix. Characters other than letters, digits and marks separate
// words, so "payments-api" is the phrase "payments api", and operators of
// the back-ends' own query languages are searched as words.
type Query struct {
	Terms []Term
}

// Term is one unit of a query that an article must contain.
type Term struct {
	// Tokens are index tokens as IndexText writes them. Two or more form a
	// phrase. Each consists of letters, digits and marks only.
	Tokens []string
	// Prefix makes the last token match every token that starts with it.
	Prefix bool
	// Text is the term as the user wrote it, quotes and '*' removed.
	Text string
	// units are the words and CJK characters that a snippet matches, in
	// order, with the last one a prefix when unitPrefix is set.
	units      []unit
	unitPrefix bool
}

// unit is one word or one CJK character of a term.
type unit struct {
	norm string
	cjk  bool
}

// Parse parses search text; see Query for the syntax. Terms without a word
// character, such as "*" or an emoji, are dropped, so the query may have no
// terms at all.
func Parse(text string) Query {
	var q Query
	for _, c := range splitChunks(text) {
		for _, t := range chunkTerms(c.text, c.prefix) {
			if len(q.Terms) == MaxTerms {
				return q
			}
			if !q.has(t) {
				q.Terms = append(q.Terms, t)
			}
		}
	}
	return q
}

// has reports whether q already holds a term equal to t, which adds
// nothing to an AND or an OR.
func (q Query) has(t Term) bool {
	for _, o := range q.Terms {
		if o.Prefix == t.Prefix && strings.Join(o.Tokens, " ") == strings.Join(t.Tokens, " ") {
			return true
		}
	}
	return false
}

// Key returns a canonical form of the query, the same for texts that parse
// to the same terms.
func (q Query) Key() string {
	var b strings.Builder
	for _, t := range q.Terms {
		b.WriteString(strconv.Quote(strings.Join(t.Tokens, " ")))
		if t.Prefix {
			b.WriteByte('*')
		}
		b.WriteByte(' ')
	}
	return b.String()
}

// chunk is a piece of search text: a quoted phrase or a word. Both become
// phrases, since a word such as "payments-api" may hold several.
type chunk struct {
	text   string
	prefix bool
}

// splitChunks splits text at white space outside double quotes.
func splitChunks(text string) []chunk {
	var out []chunk
	for text != "" {
		text = strings.TrimLeft(text, " \t\r\n\f\v\u00a0\u3000")
		if text == "" {
			break
		}
		if text[0] == '"' {
			body, rest, _ := strings.Cut(text[1:], `"`)
			c := chunk{text: body}
			if strings.HasPrefix(rest, "*") {
				c.prefix = true
				rest = rest[1:]
			}
			out = append(out, c)
			text = rest
			continue
		}
		end := strings.IndexFunc(text, func(r rune) bool {
			return r == '"' || isSpace(r)
		})
		if end < 0 {
			end = len(text)
		}
		word := text[:end]
		c := chunk{text: word}
		if strings.HasSuffix(word, "*") {
			c.text = strings.TrimRight(word, "*")
			c.prefix = true
		}
		out = append(out, c)
		text = text[end:]
	}
	return out
}

func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\f', '\v', '\u00a0', '\u3000':
		return true
	}
	return false
}

// chunkTerms turns one chunk into terms. The words of a chunk form one
// phrase, and a CJK run of two or more characters becomes its character
// pairs. A single CJK character can only be searched as a prefix of the
// pairs, so a chunk with one inside it is split into one term per run of
// words and per CJK run.
func chunkTerms(text string, prefix bool) []Term {
	toks := tokenize(text, false)
	if len(toks) == 0 {
		return nil
	}
	// Group the tokens into segments: runs of words and runs of CJK
	// characters, as IndexText writes them.
	type segment struct{ toks []token }
	var segs []segment
	for i := 0; i < len(toks); {
		j := i + 1
		for j < len(toks) && toks[j].cjk == toks[i].cjk && (!toks[i].cjk || toks[j].start == toks[j-1].end) {
			j++
		}
		segs = append(segs, segment{toks[i:j]})
		i = j
	}

	lone := false
	for k, s := range segs {
		if s.toks[0].cjk && len(s.toks) == 1 && k != len(segs)-1 {
			lone = true
		}
	}

	build := func(ss []segment, last bool) Term {
		var t Term
		t.Text = text
		for _, s := range ss {
			if s.toks[0].cjk {
				if len(s.toks) == 1 {
					t.Tokens = append(t.Tokens, s.toks[0].norm)
					// Valid as the last token only, which lone ensures.
					t.Prefix = true
				} else {
					for k := 0; k+1 < len(s.toks); k++ {
						t.Tokens = append(t.Tokens, s.toks[k].norm+s.toks[k+1].norm)
					}
					t.Prefix = false
				}
			} else {
				for _, w := range s.toks {
					t.Tokens = append(t.Tokens, w.norm)
				}
				t.Prefix = false
			}
			for _, w := range s.toks {
				t.units = append(t.units, unit{norm: w.norm, cjk: w.cjk})
			}
		}
		lastTok := ss[len(ss)-1].toks
		if last && prefix && !lastTok[0].cjk && utf8.RuneCountInString(lastTok[len(lastTok)-1].norm) >= MinPrefixRunes {
			t.Prefix = true
			t.unitPrefix = true
		}
		return t
	}

	if !lone {
		return []Term{build(segs, true)}
	}
	out := make([]Term, 0, len(segs))
	for k, s := range segs {
		t := build([]segment{s}, k == len(segs)-1)
		t.Text = text[s.toks[0].start:s.toks[len(s.toks)-1].end]
		out = append(out, t)
	}
	return out
}

// FTS5 writes the query in SQLite FTS5 syntax: each term a quoted string,
// a prefix term followed by '*', joined by AND or, with any, by OR.
func (q Query) FTS5(any bool) string {
	parts := make([]string, len(q.Terms))
	for i, t := range q.Terms {
		s := `"` + strings.ReplaceAll(strings.Join(t.Tokens, " "), `"`, `""`) + `"`
		if t.Prefix {
			s += "*"
		}
		parts[i] = s
	}
	op := " AND "
	if any {
		op = " OR "
	}
	return strings.Join(parts, op)
}

// TSQuery writes the query as PostgreSQL to_tsquery input: the tokens of
// a phrase joined by <->, a prefix marked :*, terms joined by & or, with
// any, by |. Tokens hold letters, digits and marks only, so none of them
// reads as an operator.
func (q Query) TSQuery(any bool) string {
	return q.TSQueryWeights(any, "")
}

// TSQueryWeights is TSQuery with every token restricted to the weight
// labels in weights, such as "AB", so that it matches only the parts of a
// document with those labels. Empty weights match every part.
func (q Query) TSQueryWeights(any bool, weights string) string {
	parts := make([]string, len(q.Terms))
	for i, t := range q.Terms {
		toks := t.Tokens
		if weights != "" {
			toks = make([]string, len(t.Tokens))
			for k, tok := range t.Tokens {
				toks[k] = tok + ":" + weights
			}
		}
		s := strings.Join(toks, " <-> ")
		switch {
		case t.Prefix && weights != "":
			s += "*"
		case t.Prefix:
			s += ":*"
		}
		if len(t.Tokens) > 1 {
			s = "(" + s + ")"
		}
		parts[i] = s
	}
	op := " & "
	if any {
		op = " | "
	}
	return strings.Join(parts, op)
}
