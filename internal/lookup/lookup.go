// Package lookup finds the articles that fit a piece of work, such as a new
// ticket: its subject and description, and attributes like the account,
// product, service and severity. Text from tickets is long and noisy, so
// the lookup keeps only its salient words and searches them with OR in the
// titles and tags, ranked by BM25, and in the whole text only when too
// few articles match there. It then combines that text relevance with the
// attributes: equal metadata, equal tags and the service or product named
// in the title. A deprecated article never comes first unmarked, because
// its replacement, or the best current article, goes before it.
package lookup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/fulltext"
)

// Request limits.
const (
	DefaultLimit = 5
	MaxLimit     = 20
	// MaxTextLen bounds Request.Text, in bytes: a long ticket with its
	// thread fits.
	MaxTextLen = 64 << 10
	// MaxAttributes bounds the number of attributes.
	MaxAttributes = 16
	// MaxTerms is the number of salient words searched. Every word costs
	// an index scan, and after a dozen the ranking hardly changes.
	MaxTerms = 12
)

// Ranking constants. Text relevance is the hit's search score divided by
// the best score among the candidates, so it runs from 0 to 1, and each
// attribute that matches adds its bonus on top.
const (
	// candidates is the number of text matches reranked.
	candidates = 50
	// attributeCandidates is the number of articles listed per attribute,
	// newest first, so an article whose metadata or tags match an
	// attribute competes even when its text ranks low or not at all.
	attributeCandidates = 10
	// titleTermsBonus is added in proportion to the share of the subject's
	// words that the title holds: titles name what an article is about.
	titleTermsBonus = 0.5
	// metadataBonus puts an article whose metadata names the attribute's
	// value above one that only names it in the title (text relevance 1
	// plus titleBonus). A tool that sends service=etcd wants the articles
	// whose metadata declares etcd before those that mention it.
	metadataBonus     = 1.5
	weakMetadataBonus = 0.15 // for WeakAttributes
	tagBonus          = 0.2
	titleBonus        = 0.25
)

// TopicAttributes are attribute keys whose values name what the work is
// about, such as a service or product. Their values are searched with the
// text and count when an article's title names them. Other attributes,
// such as an account or site, count through metadata and tags only.
var TopicAttributes = []string{"service", "product", "component", "application", "system"}

// WeakAttributes are attribute keys that many articles share, such as a
// severity, so an equal value is weak evidence of the topic. They add
// weakMetadataBonus for equal metadata only.
var WeakAttributes = []string{"severity", "priority", "urgency", "impact"}

// ReplacedByKey is the metadata key that names the article which replaces
// a deprecated one.
const ReplacedByKey = knowledge.ReplacedByKey

// Request is one lookup.
type Request struct {
	// Text is the subject and description of the work, subject first.
	Text string
	// Attributes are facts about the work, such as account, product,
	// service and severity, compared with articles' metadata, tags and
	// titles. Keys are compared ignoring case.
	Attributes map[string]string
	// Limit is the number of hits, 1 to MaxLimit; 0 means DefaultLimit.
	Limit int
}

// Validate checks the request and names the field at fault.
func (r *Request) Validate() error {
	if strings.TrimSpace(r.Text) == "" && len(r.Attributes) == 0 {
		return &knowledge.FieldError{Field: "text", Message: "is empty and there are no attributes: send the ticket's subject and description, attributes such as service, or both"}
	}
	// Words are runs of letters, digits and marks, so only text without a
	// letter or digit is parsed here.
	noWords := !strings.ContainsFunc(r.Text, func(c rune) bool { return unicode.IsLetter(c) || unicode.IsDigit(c) }) &&
		len(fulltext.Parse(r.Text).Terms) == 0
	if noWords && len(r.Attributes) == 0 {
		return &knowledge.FieldError{Field: "text", Message: "has no word that can be searched, as symbols and emoji are not indexed, and there are no attributes: send the ticket's words, attributes such as service, or both"}
	}
	if len(r.Text) > MaxTextLen {
		return &knowledge.FieldError{Field: "text", Message: fmt.Sprintf("is %d bytes long; the maximum is %d: send the subject and the start of the description", len(r.Text), MaxTextLen)}
	}
	if !utf8.ValidString(r.Text) {
		return &knowledge.FieldError{Field: "text", Message: "is not valid UTF-8: send the text encoded as UTF-8"}
	}
	if len(r.Attributes) > MaxAttributes {
		return &knowledge.FieldError{Field: "attributes", Message: fmt.Sprintf("has %d keys; the maximum is %d: send the ones that identify the work", len(r.Attributes), MaxAttributes)}
	}
	lower := make(map[string]string, len(r.Attributes))
	for _, k := range sortedKeys(r.Attributes) {
		if prev, dup := lower[fold(k)]; dup {
			return &knowledge.FieldError{Field: "attributes." + k, Message: fmt.Sprintf("and attributes.%s are the same key, because keys are compared ignoring case and surrounding spaces: send it once", prev)}
		}
		lower[fold(k)] = k
	}
	onlyWeak := len(lower) > 0
	for k := range lower {
		onlyWeak = onlyWeak && slices.Contains(WeakAttributes, k)
	}
	if noWords && onlyWeak {
		return &knowledge.FieldError{Field: "attributes", Message: fmt.Sprintf("has only %s, which many articles share, so it finds none alone: add the ticket's text or an attribute such as service or product", strings.Join(sortedKeys(r.Attributes), " and "))}
	}
	for k, v := range r.Attributes {
		field := "attributes." + k
		switch {
		case strings.TrimSpace(k) == "" || len(k) > knowledge.MaxMetadataKey || !utf8.ValidString(k) || strings.ContainsFunc(k, unicode.IsControl):
			return &knowledge.FieldError{Field: "attributes", Message: fmt.Sprintf("key %.40q is not a valid metadata key: use 1 to %d bytes of UTF-8 without control characters", k, knowledge.MaxMetadataKey)}
		case strings.TrimSpace(v) == "":
			return &knowledge.FieldError{Field: field, Message: "is empty: give a value or leave the attribute out"}
		case len(v) > knowledge.MaxMetadataValue:
			return &knowledge.FieldError{Field: field, Message: fmt.Sprintf("is %d bytes long; the maximum is %d: send the value that identifies the work", len(v), knowledge.MaxMetadataValue)}
		case !utf8.ValidString(v):
			return &knowledge.FieldError{Field: field, Message: "is not valid UTF-8: send the value encoded as UTF-8"}
		case strings.ContainsFunc(v, unicode.IsControl):
			return &knowledge.FieldError{Field: field, Message: "contains a control character: send the value on one line of printable characters"}
		}
	}
	if r.Limit < 0 || r.Limit > MaxLimit {
		return &knowledge.FieldError{Field: "limit", Message: fmt.Sprintf("is %d; use 1 to %d, or leave it out for %d", r.Limit, MaxLimit, DefaultLimit)}
	}
	return nil
}

// Hit is one article that fits the work.
type Hit struct {
	ID         string
	Title      string
	Collection string
	Class      knowledge.Class
	Status     knowledge.Status
	Version    int64
	// Snippet and SnippetHTML follow store.SearchHit.
	Snippet     string
	SnippetHTML string
	// Score is text relevance (0 to 1) plus the attribute bonuses.
	Score float64
	// Reason is one line on why the article fits: the words and
	// attributes that matched, and a deprecation.
	Reason string
	// MatchedTerms are the searched words found in the article, as the
	// text or a TopicAttributes value wrote them; MatchedAttributes name the attributes that matched,
	// as "key=value (metadata)", "key=value (tag)" or "key=value (title)".
	MatchedTerms      []string
	MatchedAttributes []string
	// Deprecated marks an article with status deprecated; ReplacedBy is
	// the id of the article to use instead: its replaced_by metadata,
	// followed through deprecated articles to a published one that the
	// caller may read, or empty when there is none.
	Deprecated bool
	ReplacedBy string
}

// Result is the outcome of a lookup.
type Result struct {
	Hits []Hit
	// Terms are the salient words that were searched, best first.
	Terms []string
}

// candidate is an article under consideration.
type candidate struct {
	hit       *store.SearchHit // in the search's result, which the lookup owns
	text      float64          // search score, 0 when only an attribute found it
	score     float64
	matched   []string
	extra     bool // added as a replacement, not found by the search
	replacing string
}

// Run looks up the articles that fit the request within scope, the
// filters of the caller. It validates the request first.
func Run(ctx context.Context, st store.Store, scope []knowledge.Scope, req Request) (Result, error) {
	if err := req.Validate(); err != nil {
		return Result{}, err
	}
	limit := req.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	// Keys are compared ignoring case, as tools send "Service" as often
	// as "service"; Validate rejects two keys that differ only in case or
	// spaces. Values are compared without surrounding spaces.
	attrs := make(map[string]string, len(req.Attributes))
	sentKeys := make(map[string]string, len(req.Attributes))
	for k, v := range req.Attributes {
		attrs[fold(k)] = strings.TrimSpace(v)
		sentKeys[fold(k)] = strings.TrimSpace(k)
	}
	req.Attributes = attrs
	subject, rest, _ := strings.Cut(strings.TrimSpace(req.Text), "\n")
	subjectWords := fulltext.SplitWords(subject)
	terms, originals := salientTerms(subjectWords, fulltext.SplitWords(rest), MaxTerms)
	text := searchText(terms, req.Attributes)
	// A topic attribute's value is searched as a phrase too; a hit that
	// holds it names the value as written among its matched terms.
	for _, k := range sortedKeys(req.Attributes) {
		if words := fulltext.Words(req.Attributes[k]); slices.Contains(TopicAttributes, k) && len(words) > 0 {
			if _, ok := originals[strings.Join(words, " ")]; !ok {
				originals[strings.Join(words, " ")] = req.Attributes[k]
			}
		}
	}
	subjectTerms, _ := salientTerms(subjectWords, nil, MaxTerms)
	res := Result{Terms: []string{}, Hits: []Hit{}}
	for _, t := range terms {
		// A camel-case word and the phrase of its parts share their
		// original.
		if o := originals[strings.Trim(strings.TrimSuffix(t, "*"), `"`)]; !slices.Contains(res.Terms, o) {
			res.Terms = append(res.Terms, o)
		}
	}

	// One full-text search ranks the text. Attributes add candidates by
	// filters alone, which read no index of the text: an OR search of
	// common words scores most articles, so it runs once per lookup.
	// TitleFirst scores only the articles with a word in the title or
	// tags while there are enough of them. On 100,000 articles that about
	// halves the cost of a lookup (BenchmarkSearchLookup100k), and the
	// judged queries find more relevant articles that way.
	byID := make(map[string]*candidate, candidates)
	add := func(hits []store.SearchHit) {
		// One allocation for the new candidates of a search, as a
		// lookup adds dozens.
		var fresh []candidate
		for i := range hits {
			h := &hits[i]
			c, ok := byID[h.ID]
			if !ok {
				if fresh == nil {
					fresh = make([]candidate, 0, len(hits))
				}
				fresh = append(fresh, candidate{hit: h})
				c = &fresh[len(fresh)-1]
				byID[h.ID] = c
			}
			c.text = max(c.text, h.Score)
		}
	}
	query := fulltext.Parse(text)
	if text != "" {
		r, err := st.Search(ctx, store.SearchQuery{Text: text, Parsed: &query, Filters: scope, Limit: candidates, Any: true, TitleFirst: true, NoSnippets: true})
		if err != nil {
			return Result{}, err
		}
		add(r.Hits)
	}
	keys := sortedKeys(req.Attributes)
	var tags []string
	listBy := func(filter knowledge.Scope) error {
		r, err := st.Search(ctx, store.SearchQuery{Filters: append(slices.Clone(scope), filter), Limit: attributeCandidates, NoSnippets: true})
		if err != nil {
			return err
		}
		for i := range r.Hits {
			// Listings have no text score; a candidate that the text
			// search found keeps its own.
			r.Hits[i].Score = 0
		}
		add(r.Hits)
		return nil
	}
	av := newAttributeValues(st, req.Attributes, sentKeys)
	for _, k := range keys {
		if slices.Contains(WeakAttributes, k) {
			continue
		}
		tags = append(tags, av.tags[k]...)
		// Articles may write the key and value in another case, so the
		// listing is by the pairs that they write, when the store can
		// name them, and otherwise by the attribute as sent.
		sent := [2]string{sentKeys[k], req.Attributes[k]}
		pairs, ok := av.written[k]
		if !ok {
			// NOTE: PostgreSQL, and SQLite while it builds its text index,
			// cannot name the pairs, so an article that writes the key or
			// value in another case is found only through its text.
			pairs = [][2]string{sent}
		}
		// The pair as sent goes first, as it is the likeliest, and the
		// pairs of the whole hub, not the scope, may exceed maxPairs.
		if i := slices.Index(pairs, sent); i > 0 {
			pairs = slices.Insert(slices.Delete(slices.Clone(pairs), i, i+1), 0, sent)
		}
		for _, p := range pairs[:min(len(pairs), maxPairs)] {
			if err := listBy(knowledge.Scope{Metadata: map[string]string{p[0]: p[1]}}); err != nil {
				return Result{}, err
			}
		}
	}
	if len(tags) > 0 {
		if err := listBy(knowledge.Scope{Tags: tags}); err != nil {
			return Result{}, err
		}
	}

	best := 0.0
	for _, c := range byID {
		best = max(best, c.text)
	}
	list := make([]*candidate, 0, len(byID))
	// Candidates often share a title, as versions of one runbook for
	// several clusters do, and analyzing a title costs more than the rest
	// of the scoring.
	type titleInfo struct {
		coverage float64
		words    string
	}
	titles := map[string]titleInfo{}
	for _, c := range byID {
		c.score = 0
		if best > 0 {
			c.score = c.text / best
		}
		ti, ok := titles[c.hit.Title]
		if !ok {
			ti = titleInfo{titleCoverage(c.hit.Title, subjectTerms), " " + strings.Join(fulltext.Words(c.hit.Title), " ") + " "}
			titles[c.hit.Title] = ti
		}
		c.score += titleTermsBonus * ti.coverage
		c.matched, c.score = av.matches(c.hit, ti.words, c.score)
		list = append(list, c)
	}
	sortCandidates(list)
	list, err := putCurrentFirst(ctx, st, scope, list)
	if err != nil {
		return Result{}, err
	}
	list = list[:min(limit, len(list))]

	hls, cut, err := highlightHits(ctx, st, list, &query)
	if err != nil {
		return Result{}, err
	}
	for i, c := range list {
		var hl *fulltext.Highlight
		if cut[i] {
			hl = &hls[i]
		}
		h, err := describe(ctx, st, scope, c, hl, &query, originals)
		if errors.Is(err, store.ErrNotFound) {
			continue // archived, deleted or moved out of scope since the search
		}
		if err != nil {
			return Result{}, err
		}
		res.Hits = append(res.Hits, h)
	}
	return res, nil
}

// fold returns an attribute key or value as lookups compare it, with
// knowledge.FoldMetadata.
func fold(s string) string { return knowledge.FoldMetadata(s) }

// searchText writes the salient terms and the values of TopicAttributes as
// fulltext search text. A value of several words is quoted
// as a phrase.
func searchText(terms []string, attrs map[string]string) string {
	parts := slices.Clone(terms)
	for _, k := range sortedKeys(attrs) {
		if !slices.Contains(TopicAttributes, k) {
			continue
		}
		words := fulltext.Words(attrs[k])
		if len(words) == 0 {
			continue
		}
		parts = append(parts, `"`+strings.Join(words, " ")+`"`)
	}
	return strings.Join(parts, " ")
}

// attributeTags returns the tags that an attribute value may appear as:
// lower case, with spaces as they are and as hyphens.
func attributeTags(v string) []string {
	t := strings.ToLower(strings.TrimSpace(v))
	out := []string{t}
	if h := strings.Join(strings.Fields(t), "-"); h != t {
		out = append(out, h)
	}
	return out
}

// attributeValues are a request's attributes in the forms that candidates
// are compared with.
type attributeValues struct {
	attrs map[string]string // folded key to value
	keys  []string          // sorted
	// sent contains each key as the request wrote it, without surrounding
	// spaces. Keys are folded from it once, because folding twice can
	// differ: cases.Fold maps some Cherokee letters back and forth.
	sent map[string]string
	// words are each value's words as the index reads them, joined by
	// spaces, and tags its attributeTags.
	words map[string]string
	tags  map[string][]string
	// written contains, for each key that lookups list by and whose pairs
	// the store can name, the pairs of key and value that current
	// articles write and that equal the attribute after fold.
	written map[string][][2]string
	// hashes contains knowledge.MetadataFoldHash of each attribute, in
	// the order of keys.
	hashes []uint64
}

func newAttributeValues(st store.Store, attrs, sent map[string]string) *attributeValues {
	av := &attributeValues{attrs: attrs, keys: sortedKeys(attrs), sent: sent, words: make(map[string]string, len(attrs)),
		tags: make(map[string][]string, len(attrs)), written: make(map[string][][2]string, len(attrs))}
	for _, k := range av.keys {
		av.hashes = append(av.hashes, knowledge.MetadataFoldHash(sent[k], attrs[k]))
	}
	mp, canPair := st.(metadataPairer)
	for k, v := range attrs {
		av.words[k] = strings.Join(fulltext.Words(v), " ")
		av.tags[k] = attributeTags(v)
		// Weak attributes are not listed by, so their pairs are not read.
		if canPair && !slices.Contains(WeakAttributes, k) {
			if pairs, ok := mp.MetadataPairs(sent[k], v); ok {
				av.written[k] = pairs
			}
		}
	}
	return av
}

// matches returns the attributes that the hit matches, as
// "key=value (how)", and score plus their bonuses: equal metadata, a tag
// equal to the value and, for TopicAttributes, the value in the title.
// titleWords are the words of the hit's title as the index reads them,
// joined by spaces and with a space on each side.
func (av *attributeValues) matches(h *store.SearchHit, titleWords string, score float64) ([]string, float64) {
	var matched []string
	inMetadata := av.metadataMatches(h.Metadata, h.MetadataFolds)
	for i, k := range av.keys {
		v := av.attrs[k]
		weak := slices.Contains(WeakAttributes, k)
		if inMetadata&(1<<i) != 0 {
			matched = append(matched, k+"="+v+" (metadata)")
			if weak {
				score += weakMetadataBonus
			} else {
				score += metadataBonus
			}
		}
		if weak {
			continue
		}
		if slices.ContainsFunc(av.tags[k], func(t string) bool { return slices.Contains(h.Tags, t) }) {
			matched = append(matched, k+"="+v+" (tag)")
			score += tagBonus
		}
		if words := av.words[k]; slices.Contains(TopicAttributes, k) && words != "" &&
			strings.Contains(titleWords, " "+words+" ") {
			matched = append(matched, k+"="+v+" (title)")
			score += titleBonus
		}
	}
	return matched, score
}

// metadataMatches returns the attributes that meta contains, as bit i for
// av.keys[i]: a key and value that equal the attribute after fold. folds
// are knowledge.MetadataFoldHashes of meta, or nil. Each candidate's
// metadata is a map of its own, whose reads miss the processor's caches,
// so when no attribute's hash is among folds the map is not read. Else
// it is read in one pass, against every attribute at once. MaxAttributes
// keeps the bits within 32, which the constant below checks.
func (av *attributeValues) metadataMatches(meta map[string]string, folds []uint64) uint32 {
	if folds != nil && !slices.ContainsFunc(av.hashes, func(h uint64) bool {
		_, ok := slices.BinarySearch(folds, h)
		return ok
	}) {
		return 0
	}
	if len(meta) == 0 {
		return 0
	}
	var found uint32
	for mk, mv := range meta {
		for i, k := range av.keys {
			if found&(1<<i) == 0 && knowledge.EqualFoldMetadata(mk, av.sent[k]) && knowledge.EqualFoldMetadata(mv, av.attrs[k]) {
				found |= 1 << i
			}
		}
	}
	return found
}

// The bits of metadataMatches cover every attribute.
const _ = uint32(1) << (MaxAttributes - 1)

// titleCoverage returns the share of terms that the title contains, as
// the index reads it: camel-case words also in parts, a stem followed by
// '*' as a prefix, a quoted phrase word by word.
func titleCoverage(title string, terms []string) float64 {
	if len(terms) == 0 {
		return 0
	}
	words := strings.Fields(fulltext.IndexText(title))
	has := func(w string) bool {
		if p, ok := strings.CutSuffix(w, "*"); ok {
			return slices.ContainsFunc(words, func(t string) bool { return strings.HasPrefix(t, p) })
		}
		return slices.Contains(words, w)
	}
	n := 0
	for _, t := range terms {
		parts := strings.Fields(strings.Trim(t, `"`))
		if len(parts) > 0 && !slices.ContainsFunc(parts, func(p string) bool { return !has(p) }) {
			n++
		}
	}
	return float64(n) / float64(len(terms))
}

// sortCandidates orders candidates by score, highest first, then by id.
func sortCandidates(list []*candidate) {
	slices.SortFunc(list, func(a, b *candidate) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return strings.Compare(a.hit.ID, b.hit.ID)
	})
}

// putCurrentFirst makes sure that a deprecated article does not lead the
// list unmarked. When the first candidate is deprecated, its replacement
// (see replacement) goes first. Otherwise the best candidate that is not
// deprecated goes first. When every candidate is deprecated, the order stays,
// and each hit is marked deprecated.
func putCurrentFirst(ctx context.Context, st store.Store, scope []knowledge.Scope, list []*candidate) ([]*candidate, error) {
	if len(list) == 0 || list[0].hit.Status != knowledge.StatusDeprecated {
		return list, nil
	}
	first := list[0]
	a, ok, err := replacement(ctx, st, scope, first.hit.ID, first.hit.Metadata)
	if err != nil {
		return nil, err
	}
	if ok {
		if i := slices.IndexFunc(list, func(c *candidate) bool { return c.hit.ID == a.ID }); i >= 0 {
			rep := list[i]
			rep.replacing = first.hit.ID
			return slices.Insert(slices.Delete(list, i, i+1), 0, rep), nil
		}
		rep := &candidate{extra: true, replacing: first.hit.ID, score: first.score,
			hit: &store.SearchHit{ID: a.ID, Title: a.Title, Collection: a.Collection, Class: a.Class,
				Tags: a.Tags, Metadata: a.Metadata, Status: a.Status, Version: a.Version}}
		return slices.Insert(list, 0, rep), nil
	}
	if i := slices.IndexFunc(list, func(c *candidate) bool { return c.hit.Status != knowledge.StatusDeprecated }); i > 0 {
		cur := list[i]
		return slices.Insert(slices.Delete(list, i, i+1), 0, cur), nil
	}
	return list, nil
}

// maxReplacements bounds the deprecated articles that replacement follows.
const maxReplacements = 8

// replacement follows the replaced_by metadata of deprecated article id,
// given as meta, through deprecated articles to the first one that is
// published, and returns it. It returns false when the chain ends
// otherwise: at a missing or archived article, one the scope does not
// admit, a cycle, or after maxReplacements articles.
func replacement(ctx context.Context, st store.Store, scope []knowledge.Scope, id string, meta map[string]string) (knowledge.Article, bool, error) {
	seen := map[string]bool{id: true}
	for range maxReplacements {
		next := meta[ReplacedByKey]
		if next == "" || seen[next] {
			return knowledge.Article{}, false, nil
		}
		seen[next] = true
		a, err := st.GetArticle(ctx, next)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return knowledge.Article{}, false, nil
		case err != nil:
			return knowledge.Article{}, false, err
		case a.Status == knowledge.StatusArchived || !visible(scope, &a):
			return knowledge.Article{}, false, nil
		case a.Status != knowledge.StatusDeprecated:
			return a, true, nil
		}
		meta = a.Metadata
	}
	return knowledge.Article{}, false, nil
}

// visible reports whether every scope admits the article.
func visible(scope []knowledge.Scope, a *knowledge.Article) bool {
	for _, s := range scope {
		if !s.Matches(a) {
			return false
		}
	}
	return true
}

// metadataPairer is a store that can name the metadata pairs that
// current articles write, key and value, and that equal a key and value
// after fold. It returns false when it cannot tell at the moment.
type metadataPairer interface {
	MetadataPairs(key, value string) ([][2]string, bool)
}

// maxPairs bounds the listings of one attribute, one per way that
// articles write its key and value. Each listing costs a query, so the
// ways past this bound are not listed.
const maxPairs = 16

// hitHighlighter is a store that keeps its current articles' text in
// memory, as the SQLite store's text index does, and cuts hits' snippets
// from it without reading the articles. For each hit it returns what
// fulltext.Query.Highlight returns, or fulltext.Leading when the query
// has no terms, and whether it cut one: not for a hit that is no longer
// the current version.
type hitHighlighter interface {
	HighlightHits(ctx context.Context, hits []*store.SearchHit, q *fulltext.Query) ([]fulltext.Highlight, []bool, error)
}

// highlightHits returns the snippets that the store cuts for the
// candidates, and which it cut; see hitHighlighter.
func highlightHits(ctx context.Context, st store.Store, list []*candidate, query *fulltext.Query) ([]fulltext.Highlight, []bool, error) {
	hs, ok := st.(hitHighlighter)
	if !ok {
		return make([]fulltext.Highlight, len(list)), make([]bool, len(list)), nil
	}
	hits := make([]*store.SearchHit, len(list))
	for i, c := range list {
		hits[i] = c.hit
	}
	return hs.HighlightHits(ctx, hits, query)
}

// describe returns the hit of a candidate with a snippet around the
// searched words and the reason it fits. hl is the snippet that the store
// cut from the hit, which is then the current version. When hl is nil the
// article is read. If it changed since the search and is now archived or
// outside the scope, describe returns store.ErrNotFound.
func describe(ctx context.Context, st store.Store, scope []knowledge.Scope, c *candidate, hl *fulltext.Highlight, query *fulltext.Query, originals map[string]string) (Hit, error) {
	a := knowledge.Article{ID: c.hit.ID, Title: c.hit.Title, Collection: c.hit.Collection, Class: c.hit.Class,
		Tags: c.hit.Tags, Metadata: c.hit.Metadata, Status: c.hit.Status, Version: c.hit.Version}
	if hl == nil {
		var err error
		if a, err = st.GetArticle(ctx, c.hit.ID); err != nil {
			return Hit{}, err
		}
		if a.Status == knowledge.StatusArchived {
			return Hit{}, fmt.Errorf("article %q is archived: %w", a.ID, store.ErrNotFound)
		}
		if !visible(scope, &a) {
			return Hit{}, fmt.Errorf("article %q left the scope: %w", a.ID, store.ErrNotFound)
		}
		h := fulltext.Snippet(query, a.Title, a.Tags, a.Body)
		hl = &h
	}
	h := Hit{
		ID: a.ID, Title: a.Title, Collection: a.Collection, Class: a.Class, Status: a.Status, Version: a.Version,
		Snippet: hl.Text, SnippetHTML: hl.HTML, Score: c.score,
		MatchedAttributes: c.matched,
		Deprecated:        a.Status == knowledge.StatusDeprecated,
	}
	for _, t := range hl.Matched {
		if o, ok := originals[t]; ok && !slices.Contains(h.MatchedTerms, o) {
			h.MatchedTerms = append(h.MatchedTerms, o)
		}
	}
	if h.Deprecated {
		rep, ok, err := replacement(ctx, st, scope, a.ID, a.Metadata)
		if err != nil {
			return Hit{}, err
		}
		if ok {
			h.ReplacedBy = rep.ID
		}
	}
	h.Reason = reason(&h, c)
	return h, nil
}

// reason writes why a hit fits, in one line.
func reason(h *Hit, c *candidate) string {
	var parts []string
	if len(h.MatchedTerms) > 0 {
		parts = append(parts, "matches "+strings.Join(h.MatchedTerms, ", "))
	}
	if len(h.MatchedAttributes) > 0 {
		parts = append(parts, "attributes "+strings.Join(h.MatchedAttributes, ", "))
	}
	if c.replacing != "" {
		parts = append(parts, "replaces deprecated "+c.replacing)
	}
	if h.Deprecated {
		if h.ReplacedBy != "" {
			parts = append(parts, "deprecated: use "+h.ReplacedBy+" instead")
		} else {
			parts = append(parts, "deprecated")
		}
	}
	if len(parts) == 0 {
		return "ranked by text relevance"
	}
	return strings.Join(parts, "; ")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
