package importer

import (
	"path"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/khub-dev/khub/internal/knowledge"
)

// firstHeading returns the text of the first ATX ("# Title") or setext
// ("Title" over "=====" or "-----") heading in a Markdown body, with inline
// Markdown removed. It ignores lines inside fenced code blocks and HTML
// comments, and headings whose text is empty once stripped. It returns ""
// when there is no such heading.
//
// It follows CommonMark block rules closely enough for titles: a heading is
// indented at most three spaces, and a setext underline must follow a
// paragraph line. NOTE: it does not parse lists, block quotes or HTML
// blocks, so a setext underline under a line inside one of those can still
// make a title.
func firstHeading(body string) string {
	var (
		fence     string // the opening fence while inside a fenced code block
		inComment bool
		paragraph []string
	)
	for len(body) > 0 {
		var line string
		line, body, _ = strings.Cut(body, "\n")
		line = strings.TrimRight(line, "\r")

		if fence != "" {
			if isClosingFence(line, fence) {
				fence = ""
			}
			continue
		}
		if inComment {
			inComment = !strings.Contains(line, "-->")
			continue
		}

		if strings.TrimSpace(line) == "" {
			paragraph = paragraph[:0]
			continue
		}
		trimmed, indent := trimIndent(line)
		if indent > 3 {
			// Headings never start here: the line continues a paragraph
			// or belongs to an indented code block.
			if len(paragraph) > 0 {
				paragraph = append(paragraph, strings.TrimSpace(line))
			}
			continue
		}
		if f := openingFence(trimmed); f != "" {
			fence, paragraph = f, paragraph[:0]
			continue
		}
		if strings.HasPrefix(trimmed, "<!--") {
			inComment = !strings.Contains(trimmed[4:], "-->")
			paragraph = paragraph[:0]
			continue
		}
		if text, ok := atxHeading(trimmed); ok {
			if title := stripInline(cutText(text)); title != "" {
				return title
			}
			paragraph = paragraph[:0]
			continue
		}
		if len(paragraph) > 0 && isSetextUnderline(trimmed) {
			if title := stripInline(cutText(strings.Join(paragraph, " "))); title != "" {
				return title
			}
			paragraph = paragraph[:0]
			continue
		}
		if startsOtherBlock(trimmed) {
			paragraph = paragraph[:0]
			continue
		}
		paragraph = append(paragraph, strings.TrimSpace(trimmed))
	}
	return ""
}

// maxHeadingScan is the number of bytes of a heading that stripInline
// reads. It bounds the work on a huge paragraph above a setext underline,
// and titles are cut to knowledge.MaxTitleLen bytes anyway.
const maxHeadingScan = 8 * knowledge.MaxTitleLen

// cutText returns at most maxHeadingScan bytes of s, cut on a rune
// boundary.
func cutText(s string) string {
	if len(s) <= maxHeadingScan {
		return s
	}
	cut := maxHeadingScan
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// trimIndent removes leading spaces and tabs and returns the indentation
// width, counting a tab to the next multiple of four columns as CommonMark
// does.
func trimIndent(line string) (string, int) {
	width := 0
	for i, r := range line {
		switch r {
		case ' ':
			width++
		case '\t':
			width += 4 - width%4
		default:
			return line[i:], width
		}
	}
	return "", width
}

// openingFence returns the fence ("```" or "~~~", possibly longer) that
// opens a fenced code block on this line, or "". A backtick fence's info
// string must not contain a backtick.
func openingFence(trimmed string) string {
	for _, c := range []byte{'`', '~'} {
		n := 0
		for n < len(trimmed) && trimmed[n] == c {
			n++
		}
		if n < 3 {
			continue
		}
		if c == '`' && strings.IndexByte(trimmed[n:], '`') >= 0 {
			return ""
		}
		return trimmed[:n]
	}
	return ""
}

// isClosingFence reports whether line closes a block opened by fence: the
// same character, at least as many times, indented at most three spaces,
// and nothing but spaces after it.
func isClosingFence(line, fence string) bool {
	trimmed, indent := trimIndent(line)
	if indent > 3 {
		return false
	}
	n := 0
	for n < len(trimmed) && trimmed[n] == fence[0] {
		n++
	}
	return n >= len(fence) && strings.TrimSpace(trimmed[n:]) == ""
}

// atxHeading returns the text of an ATX heading line without its opening
// and closing '#' sequences.
func atxHeading(trimmed string) (string, bool) {
	n := 0
	for n < len(trimmed) && trimmed[n] == '#' {
		n++
	}
	if n == 0 || n > 6 {
		return "", false
	}
	rest := trimmed[n:]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return "", false // "#hashtag" is a paragraph
	}
	text := strings.TrimSpace(rest)
	// A closing sequence is a run of '#' preceded by a space, or the
	// whole text.
	closing := strings.TrimRight(text, "#")
	if closing == "" || strings.HasSuffix(closing, " ") || strings.HasSuffix(closing, "\t") {
		text = strings.TrimSpace(closing)
	}
	return text, true
}

// isSetextUnderline reports whether a line is a run of '=' or '-' with
// optional trailing spaces.
func isSetextUnderline(trimmed string) bool {
	s := strings.TrimRight(trimmed, " \t")
	if s == "" {
		return false
	}
	c := s[0]
	if c != '=' && c != '-' {
		return false
	}
	return strings.Trim(s, string(c)) == ""
}

// listItemPattern matches the start of a bullet or ordered list item.
var listItemPattern = regexp.MustCompile(`^([-*+]|\d{1,9}[.)])(\s|$)`)

// startsOtherBlock reports whether a line starts a block that cannot be
// the text of a setext heading: a list item, block quote, table row, HTML
// block or thematic break.
func startsOtherBlock(trimmed string) bool {
	switch trimmed[0] {
	case '>', '|', '<':
		return true
	}
	if listItemPattern.MatchString(trimmed) {
		return true
	}
	compact := strings.ReplaceAll(strings.ReplaceAll(trimmed, " ", ""), "\t", "")
	for _, c := range []string{"*", "-", "_"} {
		if len(compact) >= 3 && strings.Trim(compact, c) == "" {
			return true
		}
	}
	return false
}

var (
	// imagePattern and linkPattern keep the text of ![alt](src),
	// [text](url) and [text][ref].
	imagePattern = regexp.MustCompile(`!\[([^\]]*)\](\([^)]*\)|\[[^\]]*\])`)
	linkPattern  = regexp.MustCompile(`\[([^\]]*)\](\([^)]*\)|\[[^\]]*\])`)
	// autolinkPattern keeps the address of <https://...>.
	autolinkPattern = regexp.MustCompile(`<((?:https?|mailto|ftp):[^>\s]*)>`)
	// htmlTagPattern drops inline HTML tags such as <a name="x"></a>.
	htmlTagPattern = regexp.MustCompile(`</?[A-Za-z][A-Za-z0-9-]*(\s[^<>]*)?/?>`)
)

// stripInline turns inline Markdown into plain text: it keeps the text of
// links, images and code spans, drops emphasis markers and HTML tags,
// resolves backslash escapes and collapses runs of white space.
func stripInline(s string) string {
	s = imagePattern.ReplaceAllString(s, "$1")
	s = linkPattern.ReplaceAllString(s, "$1")
	s = autolinkPattern.ReplaceAllString(s, "$1")
	s = htmlTagPattern.ReplaceAllString(s, "")

	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && isASCIIPunct(s[i+1]):
			b.WriteByte(s[i+1])
			i += 2
		case c == '`':
			i = writeCodeSpan(&b, s, i)
		case c == '*' || c == '_' || c == '~':
			i = writeEmphasisRun(&b, s, i)
		default:
			b.WriteByte(c)
			i++
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// writeCodeSpan writes the content of the code span that starts at s[i]
// and returns the index after it. A backtick run without a matching
// closing run is literal text.
func writeCodeSpan(b *strings.Builder, s string, i int) int {
	n := 0
	for i+n < len(s) && s[i+n] == '`' {
		n++
	}
	run := s[i : i+n]
	rest := s[i+n:]
	for j := 0; j < len(rest); {
		k := strings.Index(rest[j:], run)
		if k < 0 {
			break
		}
		k += j
		end := k + n
		// The closing run must be exactly as long as the opening one.
		if end < len(rest) && rest[end] == '`' {
			for end < len(rest) && rest[end] == '`' {
				end++
			}
			j = end
			continue
		}
		b.WriteString(rest[:k])
		return i + n + end
	}
	b.WriteString(run)
	return i + n
}

// writeEmphasisRun handles a run of '*', '_' or '~' starting at s[i] and
// returns the index after it. The run is dropped as an emphasis or
// strikethrough marker unless it is alone between spaces ("5 * 3") or is
// '_' inside a word ("snake_case"), where CommonMark keeps it as text.
// A single '~' is kept, because GFM strikethrough uses "~~".
func writeEmphasisRun(b *strings.Builder, s string, i int) int {
	c := s[i]
	n := 0
	for i+n < len(s) && s[i+n] == c {
		n++
	}
	run := s[i : i+n]
	before, _ := utf8.DecodeLastRuneInString(s[:i])
	after, _ := utf8.DecodeRuneInString(s[i+n:])
	spaceBefore := i == 0 || unicode.IsSpace(before)
	spaceAfter := i+n == len(s) || unicode.IsSpace(after)
	wordBefore := i > 0 && (unicode.IsLetter(before) || unicode.IsDigit(before))
	wordAfter := i+n < len(s) && (unicode.IsLetter(after) || unicode.IsDigit(after))

	keep := (spaceBefore && spaceAfter) ||
		(c == '_' && wordBefore && wordAfter) ||
		(c == '~' && n == 1)
	if keep {
		b.WriteString(run)
	}
	return i + n
}

// isASCIIPunct reports whether a backslash before c is an escape in
// CommonMark.
func isASCIIPunct(c byte) bool {
	return strings.IndexByte("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", c) >= 0
}

// titleFromName turns a file name into a title: the extension is dropped,
// and underscores and dashes become spaces.
func titleFromName(name string) string {
	return humanizeName(strings.TrimSuffix(name, path.Ext(name)))
}

// humanizeName turns underscores and dashes into spaces and collapses runs
// of white space.
func humanizeName(name string) string {
	name = strings.NewReplacer("_", " ", "-", " ").Replace(name)
	return strings.Join(strings.Fields(name), " ")
}

// truncateTitle cuts a derived title to knowledge.MaxTitleLen bytes on a
// rune boundary, so that a very long heading still imports.
func truncateTitle(title string) string {
	if len(title) <= knowledge.MaxTitleLen {
		return title
	}
	const ellipsis = "…"
	cut := knowledge.MaxTitleLen - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(title[cut]) {
		cut--
	}
	return strings.TrimSpace(title[:cut]) + ellipsis
}
