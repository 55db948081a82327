package lookup

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/khub-dev/khub/internal/store/fulltext"
)

// stopWords are words too common in tickets to say what one is about:
// English function words and the greetings, courtesy and filler of support
// requests. Words are in the lower case without accents that fulltext.Words
// returns.
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`
		a about above after again against all also am an and any are aren as at be because been before
		being below between both but by can cannot could couldn did didn do does doesn doing don down
		during each either else even ever every few for from further get gets getting got had hadn has
		hasn have haven having he her here hers herself him himself his how however i if in into is isn
		it its itself just least less let like ll made make many may me might more most much must my
		myself neither no nor not now of off often on once one only or other otherwise our ours
		ourselves out over own per quite rather re really same shall shan she should shouldn since so
		some still such than that the their theirs them themselves then there these they this those
		though through thus to too under until up upon us ve very via was wasn we were weren what when
		where whether which while who whom whose why will with within without won would wouldn yet you
		your yours yourself yourselves s t d m o y

		hi hello hey dear team all folks guys everyone anyone someone somebody thanks thank thx ty
		cheers regards best kind kindly please pls plz asap urgent urgently help helps helped need
		needs needed want wants wanted would like know knows let us issue issues problem problems
		ticket tickets request requests question questions today yesterday tomorrow morning afternoon
		evening tonight week weekend monday tuesday wednesday thursday friday saturday sunday am pm
		see seeing seen saw seems seem seemed look looks looking looked think thought sure maybe
		something anything everything nothing thing things way lot lots bit able happen happens
		happened happening going go goes went come comes came try tried trying tries said says tell
		told ask asked update updates fyi etc eg ie ok okay yes hmm sorry apologies attached
		attachment screenshot below above noticed notice keep keeps kept
		currently now right new old still again already back around show shows showed showing
		take takes took give gives gave find found finds report reports reported second seconds
		minute minutes hour hours day days two three four five several although though arrived
		soon warn warns com www https`) {
		m[w] = true
	}
	return m
}()

// suffixes are English endings that SalientTerms cuts off, longest first,
// so that "rotating" also finds "rotation" through the prefix "rotat*".
var suffixes = []string{
	"ations", "ation", "ments", "ment", "ings", "ness", "ions", "ing", "ion", "ies", "ied",
	"ers", "ed", "es", "er", "ly", "s",
}

// suffixesByLast maps a last byte to the suffixes that end in it, in the
// order of suffixes, because a word can end only in those.
var suffixesByLast = func() map[byte][]string {
	m := map[byte][]string{}
	for _, s := range suffixes {
		m[s[len(s)-1]] = append(m[s[len(s)-1]], s)
	}
	return m
}()

// minStem is the shortest stem, in letters, searched as a prefix: "pods"
// becomes "pod*", while "uses" stays a word.
const minStem = fulltext.MinPrefixRunes

// SalientTerms picks at most max words of ticket text to search: words
// that are not stop words, not single letters, not numbers other than
// three-digit codes such as HTTP statuses, not hexadecimal ids such as
// "7f9c", and not longer than 40 letters (hashes, tokens). Words in the
// first line, the subject, count three times. Camel-case identifiers count
// twice as much as other words. Words are ranked by these counts, and by
// first occurrence among equals. A word with an English ending becomes a prefix
// of its stem, as in "rotat*". It returns the search terms, best first, and
// for each term without its '*' or quotes the word as the text first wrote
// it, and a camel-case word for the phrase of its parts. A pair of CJK
// characters stands for itself: an article that matches one pair of a run
// need not hold the run.
func SalientTerms(text string, max int) (terms []string, originals map[string]string) {
	subject, rest, _ := strings.Cut(strings.TrimSpace(text), "\n")
	subjectWords := fulltext.SplitWords(subject)
	return salientTerms(subjectWords, fulltext.SplitWords(rest), max)
}

// salientTerms is SalientTerms of a text whose first line has the words
// subject and whose other lines have the words rest. The text's words
// are those of both, and a line break ends a word, so each line is
// split once.
func salientTerms(subject, rest []fulltext.Word, max int) (terms []string, originals map[string]string) {
	type stat struct {
		term, original string
		score, first   int
	}
	stats := make(map[string]*stat, len(subject)+len(rest))
	order := make([]*stat, 0, len(subject)+len(rest))
	bump := func(term, original string, weight int) {
		// Words with one stem count together: "restart" and "restarting"
		// are searched as "restart*".
		key := strings.TrimSuffix(term, "*")
		st, ok := stats[key]
		if !ok {
			st = &stat{term: term, original: original, first: len(order)}
			stats[key] = st
			order = append(order, st)
		}
		if strings.HasSuffix(term, "*") {
			st.term = term
		}
		st.score += weight
	}
	count := func(words []fulltext.Word, weight int) {
		for _, w := range words {
			if pairs := cjkPairs(w); pairs != nil {
				// A run of CJK text has no spaces between its words, so
				// searched whole it would have to appear as it is. Each
				// pair of characters is a term instead, as the index
				// stores the run.
				for _, p := range pairs {
					bump(p, p, weight)
				}
				continue
			}
			if !salient(w.Text) {
				continue
			}
			if len(w.Parts) <= 1 {
				bump(stemTerm(w.Text), w.Raw, weight)
				continue
			}
			// A camel-case word such as "CrashLoopBackOff" names an
			// error, alert or component, which is more specific to the work
			// than the prose around it, so it counts twice. It is also
			// searched as the phrase of its parts, which is how titles
			// like "Kube Node Not Ready" write it.
			bump(stemTerm(w.Text), w.Raw, 2*weight)
			bump(`"`+strings.Join(w.Parts, " ")+`"`, w.Raw, 2*weight)
		}
	}

	// The subject counts three times: twice as the subject, once as
	// part of the text.
	count(subject, 3)
	count(rest, 1)
	slices.SortStableFunc(order, func(a, b *stat) int {
		if a.score != b.score {
			return b.score - a.score
		}
		return a.first - b.first
	})
	originals = map[string]string{}
	for _, st := range order[:min(max, len(order))] {
		terms = append(terms, st.term)
		originals[strings.Trim(strings.TrimSuffix(st.term, "*"), `"`)] = st.original
	}
	return terms, originals
}

// cjkPairs returns the overlapping character pairs of a run of CJK text
// of more than two characters, as the index writes them, or nil for other
// words.
func cjkPairs(w fulltext.Word) []string {
	if !w.CJK {
		return nil
	}
	var pairs []string
	for tok := range strings.FieldsSeq(fulltext.IndexText(w.Text)) {
		// The index also holds the run's last character alone.
		if utf8.RuneCountInString(tok) == 2 {
			pairs = append(pairs, tok)
		}
	}
	if len(pairs) < 2 {
		return nil
	}
	return pairs
}

// salient reports whether a word is worth searching.
func salient(w string) bool {
	n := utf8.RuneCountInString(w)
	switch {
	case stopWords[w], n > 40:
		return false
	case n == 1:
		// A single CJK character can be a word; a single letter is not.
		r, _ := utf8.DecodeRuneInString(w)
		return !unicode.Is(unicode.Latin, r) && !unicode.IsDigit(r)
	}
	if strings.IndexFunc(w, func(r rune) bool { return !unicode.IsDigit(r) }) < 0 {
		return n == 3
	}
	return !hexID(w)
}

// hexID reports whether w looks like a hash or generated id, such as the
// "7f9c" of a pod name: four or more hexadecimal digits, at least one of
// them a decimal digit and one a letter. Such words name one instance,
// which articles do not mention.
func hexID(w string) bool {
	if len(w) < 4 || strings.IndexFunc(w, func(r rune) bool { return !strings.ContainsRune("0123456789abcdef", r) }) >= 0 {
		return false
	}
	return strings.ContainsAny(w, "0123456789") && strings.ContainsAny(w, "abcdef")
}

// stemTerm returns the search term of a word: the stem followed by '*'
// when the word has one of the suffixes and the stem keeps minStem
// letters, or else the word.
func stemTerm(w string) string {
	if w == "" || !isLatin(w) {
		return w
	}
	for _, s := range suffixesByLast[w[len(w)-1]] {
		stem, ok := strings.CutSuffix(w, s)
		// A rune takes a byte or more, so a stem shorter in bytes is
		// too short in runes, and counting is needed only beyond that.
		if !ok || len(stem) < minStem || utf8.RuneCountInString(stem) < minStem {
			continue
		}
		// "ss" is no plural ending: "access", "process".
		if s == "s" && strings.HasSuffix(stem, "s") {
			return w
		}
		return stem + "*"
	}
	return w
}

// isLatin reports whether w is written in Latin letters and digits only,
// the only script whose endings SalientTerms cuts off.
func isLatin(w string) bool {
	if isASCIIAlnum(w) {
		return true
	}
	return strings.IndexFunc(w, func(r rune) bool {
		return !unicode.IsDigit(r) && !unicode.Is(unicode.Latin, r)
	}) < 0
}

// isASCIIAlnum reports whether w contains only ASCII letters and digits,
// as most words of tickets do, so that the checks need no Unicode tables.
func isASCIIAlnum(w string) bool {
	for i := 0; i < len(w); i++ {
		c := w[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
