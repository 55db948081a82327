// Package fulltext is the text analysis that both store back-ends share, so
// that a query finds the same articles on SQLite and on PostgreSQL. It
// turns text into index tokens and search text into a query, cuts and
// highlights snippets, and continues result pages.
//
// Text is split into words: runs of letters, digits and combining marks.
// Words are lower-cased and their accents removed ("Café" is indexed as
// "cafe"), so a query with or without accents finds both spellings.
// Chinese, Japanese and Korean text has no spaces between words, so each
// run of those characters is indexed as overlapping character pairs
// ("数据库" as "数据 据库"), and a query matches any substring of two or
// more characters. A single character is searched as a prefix of the
// pairs. Words written in camel case, such as alert names like
// "KubePodCrashLooping", are indexed whole and, at the end of the field,
// once more in parts ("kube pod crash looping"). Symbols and emoji are
// separators: they are neither indexed nor searched.
package fulltext

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// AnalyzerVersion numbers the rules of IndexText. A back-end stores the
// version its index was built with and rebuilds the index when it differs,
// so changing the rules must increase it.
const AnalyzerVersion = 2

// token is one word of a text, or one character of a run of CJK text.
type token struct {
	start, end int    // byte offsets in the text
	norm       string // lower-case form without accents
	cjk        bool
	// parts are the lower-case camel-case parts of a word such as
	// "NodeDiskFull", or nil when the word has fewer than two. Read them
	// with wordParts: an ASCII word is split on first use, because most
	// words of a snippet are never compared with a term's parts.
	parts []string
	camel string // the ASCII word to split, until wordParts does
}

// wordParts returns the token's camel-case parts.
func (t *token) wordParts() []string {
	if t.camel != "" {
		t.parts, t.camel = camelParts(t.camel), ""
	}
	return t.parts
}

// isCJK reports whether r belongs to a script written without spaces
// between words, which the analyzer indexes as character pairs. Hangul is
// written with spaces, but its words carry particles, so pairs find the
// stem inside them.
// Symbols of those scripts, such as Kangxi radicals, are not letters and
// separate words like other symbols.
func isCJK(r rune) bool {
	return r >= 0x1100 && unicode.IsLetter(r) &&
		(unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul) || isKanaMark(r))
}

// isKanaMark reports whether r is the prolonged sound mark of Japanese
// kana, as in "サーバー", full or half width. Unicode puts it in no script
// of its own, but it is part of the word it lengthens.
func isKanaMark(r rune) bool { return r == 0x30FC || r == 0xFF70 }

// isWordRune reports whether r can be part of a word.
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)
}

// tokenize splits s into tokens. With parts, words in camel case also get
// their parts. Most text is ASCII, so ASCII bytes are classified by table
// and an ASCII word is lower-cased without folding: the same result as
// fold, several times faster, which matters because snippets tokenize
// whole bodies.
func tokenize(s string, parts bool) []token { return tokenizeN(s, parts, -1) }

// tokenizeN is tokenize that stops after n tokens, or at the end of s when
// n is negative.
func tokenizeN(s string, parts bool, n int) []token {
	capacity := len(s) / 6
	if n >= 0 {
		capacity = min(capacity, n)
	}
	return appendTokens(make([]token, 0, capacity), s, parts, n)
}

// appendTokens is tokenizeN that appends to out, so that a caller may
// reuse its space.
func appendTokens(out []token, s string, parts bool, n int) []token {
	if n >= 0 {
		n += len(out)
	}
	wordStart := -1
	ascii := true // the current word has only ASCII bytes so far
	flush := func(end int) {
		if wordStart < 0 {
			return
		}
		w := s[wordStart:end]
		var t token
		if ascii {
			t = token{start: wordStart, end: end, norm: lowerASCII(w)}
			if parts && innerUpper(w) {
				t.camel = w
			}
		} else {
			t = token{start: wordStart, end: end, norm: fold(w)}
			if parts {
				t.parts = camelParts(w)
			}
		}
		if t.norm != "" {
			out = append(out, t)
		}
		wordStart = -1
	}
	for i := 0; i < len(s) && len(out) != n; {
		if c := s[i]; c < utf8.RuneSelf {
			if asciiWord[c] {
				if wordStart < 0 {
					wordStart, ascii = i, true
				}
			} else {
				flush(i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case isCJK(r):
			flush(i)
			out = append(out, token{start: i, end: i + size, norm: string(r), cjk: true})
		case unicode.IsMark(r) && wordStart < 0 && len(out) > 0 && out[len(out)-1].end == i:
			// A mark after a CJK character belongs to it.
			out[len(out)-1].end = i + size
		case isWordRune(r):
			if wordStart < 0 {
				wordStart = i
			}
			ascii = false
		default:
			flush(i)
		}
		i += size
	}
	if len(out) != n {
		flush(len(s))
	}
	return out
}

// asciiWord marks the ASCII bytes that isWordRune accepts: letters and
// digits.
var asciiWord = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = isWordRune(rune(c))
	}
	return t
}()

// lowerASCII returns an ASCII word in lower case, without copying one
// that is already.
func lowerASCII(w string) string {
	for i := 0; i < len(w); i++ {
		if c := w[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(w)
		}
	}
	return w
}

// innerUpper reports whether an ASCII word has an upper-case letter after
// its first byte, without which camelParts finds no parts.
func innerUpper(w string) bool {
	for i := 1; i < len(w); i++ {
		if c := w[i]; 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

// foldScripts are the scripts whose accents fold away. In other scripts,
// such as Devanagari, marks are vowels and stay.
var foldScripts = []*unicode.RangeTable{unicode.Latin, unicode.Greek, unicode.Cyrillic}

// letterFolds are Latin letters with no Unicode decomposition that readers
// still take for a base letter with a mark.
var letterFolds = map[rune]string{
	'ø': "o", 'đ': "d", 'ł': "l", 'ħ': "h", 'ŧ': "t", 'ı': "i",
	'ß': "ss", 'æ': "ae", 'œ': "oe", 'þ': "th", 'ð': "d",
}

// fold returns w in lower case, in compatibility form, with the accents
// of Latin, Greek and Cyrillic letters removed.
func fold(w string) string {
	ascii := true
	for i := 0; i < len(w); i++ {
		if w[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(w)
	}
	// The compatibility decomposition also turns ligatures, full-width
	// letters and digraphs such as "ǅ" into their plain letters.
	// Lower case again after the decomposition, which turns modifier
	// letters such as "ᴮ" into capitals.
	d := strings.ToLower(norm.NFKD.String(strings.ToLower(w)))
	var b strings.Builder
	b.Grow(len(d))
	var base rune
	for _, r := range d {
		if unicode.Is(unicode.Mn, r) && base != 0 && unicode.In(base, foldScripts...) {
			continue
		}
		if !unicode.IsMark(r) {
			base = r
		}
		if f, ok := letterFolds[r]; ok {
			b.WriteString(f)
			continue
		}
		// The decomposition of a few letters contains punctuation, such as
		// the middle dot of "ŀ", which no token may contain.
		if isWordRune(r) {
			b.WriteRune(r)
		}
	}
	return norm.NFC.String(b.String())
}

// camelParts splits a word at its case changes: "KubePodCrashLooping"
// gives kube, pod, crash, looping and "HTTPServer" gives http, server.
// Digits stay with the part before them. It returns nil for a word with
// fewer than two parts, and leaves out parts of one letter.
func camelParts(w string) []string {
	if isASCII(w) {
		return camelPartsASCII(w)
	}
	return camelPartsRunes(w)
}

// camelPartsRunes is camelParts for any word.
func camelPartsRunes(w string) []string {
	runes := []rune(w)
	var parts []string
	start := 0
	cut := func(end int) {
		if end-start > 1 {
			parts = append(parts, fold(string(runes[start:end])))
		}
		start = end
	}
	for i := 1; i < len(runes); i++ {
		prev, cur := runes[i-1], runes[i]
		switch {
		case unicode.IsUpper(cur) && (unicode.IsLower(prev) || unicode.IsDigit(prev)):
			cut(i) // fooBar, v2Beta
		case unicode.IsUpper(prev) && unicode.IsUpper(cur) && i+1 < len(runes) && unicode.IsLower(runes[i+1]):
			cut(i) // HTTPServer: the S starts a part
		}
	}
	if start == 0 {
		return nil
	}
	cut(len(runes))
	if len(parts) < 2 {
		return nil
	}
	return parts
}

// camelPartsASCII is camelParts for an ASCII word, without decoding runes
// or folding: a lower-case copy of the word is cut into parts.
func camelPartsASCII(w string) []string {
	upper := func(c byte) bool { return 'A' <= c && c <= 'Z' }
	lower := func(c byte) bool { return 'a' <= c && c <= 'z' }
	digit := func(c byte) bool { return '0' <= c && c <= '9' }
	var cuts [16]int
	cutAt := cuts[:0]
	for i := 1; i < len(w); i++ {
		prev, cur := w[i-1], w[i]
		if upper(cur) && (lower(prev) || digit(prev)) ||
			upper(prev) && upper(cur) && i+1 < len(w) && lower(w[i+1]) {
			cutAt = append(cutAt, i)
		}
	}
	if len(cutAt) == 0 {
		return nil
	}
	low := lowerASCII(w)
	parts := make([]string, 0, len(cutAt)+1)
	start := 0
	for _, end := range append(cutAt, len(w)) {
		if end-start > 1 {
			parts = append(parts, low[start:end])
		}
		start = end
	}
	if len(parts) < 2 {
		return nil
	}
	return parts
}

// isASCII reports whether s has only ASCII bytes.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// IndexText returns the text that a back-end indexes for s: its tokens in
// lower case without accents, separated by spaces, with each run of CJK
// characters written as overlapping pairs. After them come the camel-case
// parts of words and the last character of each CJK run of two or more,
// so that a single-character query finds it as a prefix. Every token
// consists of letters, digits and marks only, so the back-end's own
// tokenizer finds the same tokens again.
func IndexText(s string) string {
	text, _ := IndexTextLayout(s)
	return text
}

// MarkEvery is the number of tokens between two entries of Layout.Marks.
const MarkEvery = 32

// Layout records where the tokens of IndexText come from in the text, so
// that a snippet can be cut around known token positions without
// tokenizing the text up to them. It is empty for a text with CJK
// characters, whose pairs break the order of one token per word.
type Layout struct {
	// Tokens is the number of words: IndexText writes one token per word,
	// in order, and then the camel-case parts.
	Tokens int
	// Marks holds the byte offset of words 0, MarkEvery, 2*MarkEvery...
	Marks []int32
	// PartOf holds, for each camel-case part after the words, in order,
	// the word it is part of.
	PartOf []int32
	// CJK is set when the text has CJK characters; the other fields are
	// then empty.
	CJK bool
}

// IndexTextLayout returns IndexText(s) and its layout.
func IndexTextLayout(s string) (string, Layout) {
	toks := tokenize(s, true)
	var b, tail strings.Builder
	b.Grow(len(s) + len(s)/4)
	write := func(sb *strings.Builder, w string) {
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(w)
	}
	var l Layout
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if !t.cjk {
			if l.Tokens%MarkEvery == 0 {
				l.Marks = append(l.Marks, int32(t.start))
			}
			write(&b, t.norm)
			for _, p := range t.wordParts() {
				write(&tail, p)
				l.PartOf = append(l.PartOf, int32(l.Tokens))
			}
			l.Tokens++
			continue
		}
		l.CJK = true
		j := i
		for j+1 < len(toks) && toks[j+1].cjk && toks[j+1].start == toks[j].end {
			j++
		}
		if j == i {
			write(&b, t.norm)
			continue
		}
		for k := i; k < j; k++ {
			write(&b, toks[k].norm+toks[k+1].norm)
		}
		write(&tail, toks[j].norm)
		i = j
	}
	if tail.Len() > 0 {
		write(&b, tail.String())
	}
	if l.CJK {
		l = Layout{CJK: true}
	}
	return b.String(), l
}

// Word is one word of a text as the index tokenizes it.
type Word struct {
	// Text is the word in lower case without accents, or a whole run of
	// CJK characters.
	Text string
	// Parts are the lower-case parts of a camel-case word, such as "not"
	// and "ready" of "NotReady", which the index also contains. Parts is
	// nil for other words.
	Parts []string
	// CJK marks a run of CJK characters, which the index holds as
	// overlapping pairs.
	CJK bool
	// Raw is the word as s writes it, case and accents kept.
	Raw string
}

// SplitWords returns the words of s in order. Callers that build search
// text from them, such as lookups, get terms that Parse reads back
// unchanged.
func SplitWords(s string) []Word {
	toks := tokenize(s, true)
	out := make([]Word, 0, len(toks))
	for i := 0; i < len(toks); i++ {
		if !toks[i].cjk {
			out = append(out, Word{Text: toks[i].norm, Parts: toks[i].wordParts(), Raw: s[toks[i].start:toks[i].end]})
			continue
		}
		j := i
		for j+1 < len(toks) && toks[j+1].cjk && toks[j+1].start == toks[j].end {
			j++
		}
		run := s[toks[i].start:toks[j].end]
		out = append(out, Word{Text: run, CJK: true, Raw: run})
		i = j
	}
	return out
}

// Words returns the Text of each of SplitWords(s).
func Words(s string) []string {
	ws := SplitWords(s)
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Text
	}
	return out
}
