// Package textindex ranks articles by BM25 from an inverted index held in
// memory. The SQLite store keeps one next to its FTS5 table. FTS5's bm25()
// scores every article that a query matches and reads each match's row
// size and position lists from the database, so a search of common words
// over 100,000 articles took hundreds of milliseconds. Here a
// match costs a few nanoseconds: each posting carries the term's weighted
// count in the article, and the article lengths sit in one array. Bounds
// on each list's scores let a search skip the articles that cannot reach
// the best n. A search of titles and tags alone scores the articles that
// share both once, as one class.
//
// The index holds the current, non-archived version of every article: its
// tokens, as fulltext.IndexText writes them, with their positions for
// phrases, and the fields that filters, facets and hits need. It holds no
// body, so hits that show a snippet read the body from the store.
//
// Scores are FTS5's bm25(10.0, 5.0, 1.0), which the store used before and
// still uses while the index builds. A term's weight in an article grows
// with its occurrences, ten times for the title, five for the tags and
// once for the body. It shrinks with the article's length against the
// average length of the current articles.
package textindex

import (
	"cmp"
	"iter"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store/fulltext"
)

// BM25 parameters and column weights, as FTS5's bm25() with the weights
// 10, 5 and 1 for title, tags and body.
const (
	k1 = 1.2
	b  = 0.75
)

var columnWeights = [3]float64{10, 5, 1}

// Columns of an article, in the order of columnWeights.
const (
	colTitle = iota
	colTags
	colBody
)

// Limits of the index.
const (
	// posBits is the number of bits of a position key that hold the token's
	// position in its column; the column is above them. Tokens after the
	// first 2^28 of a column are not indexed.
	posBits = 28
	// posEvery is the number of postings between two entries of
	// postings.posAt: finding one posting's positions skips at most this
	// many position lists.
	posEvery = 4
)

// minCompact is the number of dead postings below which the index is
// never compacted: a few dead postings cost less than a pass over all of
// them. Tests lower it.
var minCompact = 1 << 16

// Index is the inverted index of the current articles. It is safe for
// concurrent use: searches share a read lock. A write analyzes its text
// first and then holds the write lock to insert or mark postings, and now
// and then to compact them.
type Index struct {
	mu    sync.RWMutex
	docs  []doc             // by document number
	alive []uint64          // bit set of the documents that are current
	bySeq map[int64]uint32  // document number of each current version
	byID  map[string]uint32 // document number of each article's version
	// full indexes title, tags and body by document. head indexes only
	// title and tags, by class, for searches that rank by those alone.
	full, head field
	live       int   // current documents
	tokens     int64 // tokens of the current documents, all columns
	dead       int   // documents marked dead but still in postings
	// livePostings and deadPostings count the postings of current and of
	// dead documents in the full field, and of classes with and without
	// a document in the head field. Compaction is due when the dead
	// ones are half as many as the live ones, which bounds the memory
	// that superseded versions hold however large they are.
	livePostings, deadPostings int
	// lengths holds each document's length in tokens, all columns, by
	// document number: a search reads it for every posting it scores.
	lengths []uint32
	// classes group the current documents that have one title and one
	// set of tags. Such documents contain the same head tokens, so the head
	// field indexes each class once. A ranking scores a class at its
	// shortest document, whose score is the highest in the class, and
	// takes its other documents only while they can enter the best n.
	// Versions of one runbook for many clusters or customers share a
	// class; otherwise most classes have one document.
	classes    []class
	classByKey map[string]uint32
	classAlive []uint64 // bit set of the classes with a document
	// classLen holds the length of each class's shortest document, by
	// class number.
	classLen []uint32
	// tagCount and metaCount count the current documents that carry each
	// tag and each metadata pair, as metaKey writes it. A listing by one
	// that no article carries then needs no query. See Excludes.
	tagCount, metaCount map[string]int
	// metaFold maps a key and value, as knowledge.FoldMetadata writes
	// them, to the pairs of metaCount that fold to them, so that a lookup
	// finds the pairs that articles write in another case.
	metaFold map[string][]MetadataPair
}

// MetadataPair is one metadata key and value as an article writes them.
type MetadataPair struct{ Key, Value string }

// doc is one indexed article version.
type doc struct {
	seq    int64
	layout *fulltext.Layout // of the body, for Hints; may be nil
	class  uint32           // its class while it is current
	// id is article.ID, kept here because ranking compares the ids of
	// tied documents, and one pointer less to follow per comparison
	// shows in a search.
	id      string
	article *knowledge.Article
	// metaFolds are knowledge.MetadataFoldHashes of the article's
	// metadata, which lookups compare with their attributes.
	metaFolds []uint64
}

// class is a set of current documents with one title and one set of tags.
type class struct {
	key string // see classKey
	// docs are in ranking order for any search of the head field: by
	// length, shortest first, then by article id.
	docs []uint32
}

// classKey returns the key of the class of an article with title and
// tags. The length of the title goes first, so no title and tags give
// the key of another pair.
func classKey(title string, tags []string) string {
	return strconv.Itoa(len(title)) + ":" + title + strings.Join(tags, "\x00")
}

// field is the inverted index of some of the columns.
type field struct {
	terms map[string]*postings
	// vocab holds the keys of terms in order, for prefix terms. Terms whose
	// postings are all dead stay until the next compaction.
	vocab []vocabEntry
	// added are the terms of the current write that vocab lacks yet;
	// mergeVocab sorts them in before the write lock is released.
	added []string
}

// vocabEntry is one term of field.vocab with its postings, so that a
// prefix's words need no lookup in the terms map.
type vocabEntry struct {
	term string
	p    *postings
}

// prefixed returns the entries of vocab whose terms start with prefix.
func prefixed(vocab []vocabEntry, prefix string) []vocabEntry {
	lo, _ := slices.BinarySearchFunc(vocab, prefix, func(e vocabEntry, t string) int { return strings.Compare(e.term, t) })
	hi := lo
	for hi < len(vocab) && strings.HasPrefix(vocab[hi].term, prefix) {
		hi++
	}
	return vocab[lo:hi]
}

// postings are the documents that contain one token, by document number.
type postings struct {
	docs []uint32
	// count is the weighted count of the token's occurrences in each
	// document, 10 per title, 5 per tags and 1 per body occurrence. A
	// count of bigCount or more is bigCount here and sits in big.
	count []uint16
	big   map[uint32]uint32 // by document number
	// pos holds each posting's position keys (column << posBits |
	// position) as unsigned varints; see appendKeys.
	pos []byte
	// posAt is the offset in pos of postings 0, posEvery, 2*posEvery...
	posAt []uint32
	df    int // current documents among docs
	// maxCount and minLen bound the counts and lengths of the documents
	// ever added, so that weight(maxCount, minLen) bounds their weights.
	maxCount uint32
	minLen   uint32
}

// bigCount marks a weighted count too large for postings.count: a token
// that one article repeats tens of thousands of times.
const bigCount = math.MaxUint16

// countAt returns the weighted count of posting i.
func countAt(count []uint16, big map[uint32]uint32, docs []uint32, i int) uint32 {
	if c := count[i]; c != bigCount {
		return uint32(c)
	}
	return big[docs[i]]
}

// addCount appends a weighted count for document d to count, or to big.
func addCount(count []uint16, big *map[uint32]uint32, d uint32, c uint32) []uint16 {
	if c < bigCount {
		return append(count, uint16(c))
	}
	if *big == nil {
		*big = map[uint32]uint32{}
	}
	(*big)[d] = c
	return append(count, bigCount)
}

// New returns an empty index.
func New() *Index {
	return &Index{
		bySeq: map[int64]uint32{},
		byID:  map[string]uint32{},
		full:  field{terms: map[string]*postings{}},
		head:  field{terms: map[string]*postings{}},

		classByKey: map[string]uint32{},
		tagCount:   map[string]int{},
		metaCount:  map[string]int{},
		metaFold:   map[string][]MetadataPair{},
	}
}

// metaKey returns the key of metadata pair k, v in Index.metaCount.
func metaKey(k, v string) string { return k + "\x00" + v }

// count adds delta to the counts of a's tags and metadata pairs.
func (ix *Index) count(a *knowledge.Article, delta int) {
	for _, t := range a.Tags {
		if ix.tagCount[t] += delta; ix.tagCount[t] <= 0 {
			delete(ix.tagCount, t)
		}
	}
	for k, v := range a.Metadata {
		key := metaKey(k, v)
		before := ix.metaCount[key]
		if ix.metaCount[key] += delta; ix.metaCount[key] <= 0 {
			delete(ix.metaCount, key)
		}
		// A pair enters metaFold with its first article and leaves with
		// its last.
		fold := metaKey(knowledge.FoldMetadata(k), knowledge.FoldMetadata(v))
		switch after := ix.metaCount[key]; {
		case before == 0 && after > 0:
			ix.metaFold[fold] = append(ix.metaFold[fold], MetadataPair{k, v})
		case before > 0 && after == 0:
			pairs := slices.DeleteFunc(ix.metaFold[fold], func(p MetadataPair) bool { return p == MetadataPair{k, v} })
			if len(pairs) == 0 {
				delete(ix.metaFold, fold)
			} else {
				ix.metaFold[fold] = pairs
			}
		}
	}
}

// MetadataPairs returns the metadata pairs of the current articles whose
// key and value equal key and value after knowledge.FoldMetadata, as the articles
// write them, in order.
func (ix *Index) MetadataPairs(key, value string) []MetadataPair {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	pairs := slices.Clone(ix.metaFold[metaKey(knowledge.FoldMetadata(key), knowledge.FoldMetadata(value))])
	slices.SortFunc(pairs, func(a, b MetadataPair) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	return pairs
}

// Excludes reports whether no current article can match every scope,
// because one of them names tags that no current article carries, or a
// metadata pair that none has. It returns false when every scope may
// match.
func (ix *Index) Excludes(scopes []knowledge.Scope) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for _, sc := range scopes {
		if len(sc.Tags) > 0 && !slices.ContainsFunc(sc.Tags, func(t string) bool { return ix.tagCount[t] > 0 }) {
			return true
		}
		for k, v := range sc.Metadata {
			if ix.metaCount[metaKey(k, v)] == 0 {
				return true
			}
		}
	}
	return false
}

// Len returns the number of articles in the index.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.live
}

// Terms returns every token that a current article holds, in no order.
func (ix *Index) Terms() []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []string
	for term, p := range ix.full.terms {
		if p.df > 0 {
			out = append(out, term)
		}
	}
	return out
}

// Seq returns the store's row and the version number of the article
// version that the index holds, and whether it holds one.
func (ix *Index) Seq(id string) (seq, version int64, ok bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	d, ok := ix.byID[id]
	if !ok {
		return 0, 0, false
	}
	return ix.docs[d].seq, ix.docs[d].article.Version, true
}

// Current returns the indexed version of an article, without its body,
// and whether the index has one: it has the current version of every
// article that is not archived. The article is the index's own, which
// callers must not change. The index replaces an article on each write
// and never changes one in place, so it stays valid after the call.
func (ix *Index) Current(id string) (*knowledge.Article, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	d, ok := ix.byID[id]
	if !ok {
		return nil, false
	}
	return ix.docs[d].article, true
}

// MetadataFolds returns the knowledge.MetadataFoldHashes of version
// version of article id, and false unless that version is current.
func (ix *Index) MetadataFolds(id string, version int64) ([]uint64, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	d, ok := ix.byID[id]
	if !ok || ix.docs[d].article.Version != version {
		return nil, false
	}
	return ix.docs[d].metaFolds, true
}

// analyzed is an article's text as the index stores it.
type analyzed struct {
	length uint32
	terms  []termPositions
	// layout is the body's, when every token of the body is one index
	// token in order, which Hints needs; nil otherwise.
	layout    *fulltext.Layout
	metaFolds []uint64 // see doc
}

// termPositions is one token of an article with its position keys, in
// ascending order.
type termPositions struct {
	term string
	keys []uint32
}

// analyze splits an article's columns into index tokens, as the SQLite
// store's FTS5 table tokenizes fulltext.IndexText.
func analyze(a *knowledge.Article) analyzed {
	out := analyzed{metaFolds: knowledge.MetadataFoldHashes(a.Metadata)}
	at := map[string]int{}
	for col, text := range [3]string{a.Title, strings.Join(a.Tags, " "), a.Body} {
		var indexed string
		if col == colBody {
			var l fulltext.Layout
			indexed, l = fulltext.IndexTextLayout(text)
			if !l.CJK && len(l.Marks) > 0 && allPlain(indexed) {
				out.layout = &l
			}
		} else {
			indexed = fulltext.IndexText(text)
		}
		pos := uint32(0)
		for tok := range tokens(indexed) {
			out.length++
			if pos >= 1<<posBits {
				continue
			}
			i, ok := at[tok]
			if !ok {
				i = len(out.terms)
				at[tok] = i
				out.terms = append(out.terms, termPositions{term: tok})
			}
			out.terms[i].keys = append(out.terms[i].keys, uint32(col)<<posBits|pos)
			pos++
		}
	}
	return out
}

// allPlain reports whether every token of analyzed text is one FTS5
// token unchanged; see plainToken.
func allPlain(text string) bool {
	for field := range strings.SplitSeq(text, " ") {
		if !plainToken(field) {
			return false
		}
	}
	return true
}

// tokens splits analyzed text, as fulltext.IndexText writes it, as the
// SQLite store's FTS5 tokenizer (unicode61 with remove_diacritics 2) does,
// so that the index and FTS5 hold the same tokens. A token starts at a
// letter or digit and runs on over letters, digits and the few combining
// accents that FTS5 removes (see isFTS5Diacritic), which it leaves out.
// Every other character separates tokens, including the combining marks
// that IndexText keeps in scripts such as Devanagari and Arabic. FTS5 also
// folds the final sigma to σ.
func tokens(text string) iter.Seq[string] {
	return func(yield func(string) bool) {
		// IndexText separates its tokens with single spaces, and most of
		// them hold only letters and digits, which FTS5 keeps as they are.
		for field := range strings.SplitSeq(text, " ") {
			if field == "" {
				continue
			}
			if plainToken(field) {
				if !yield(field) {
					return
				}
				continue
			}
			if !splitToken(field, yield) {
				return
			}
		}
	}
}

// plainToken reports whether tok is one FTS5 token unchanged: letters
// and digits only, without a final sigma.
func plainToken(tok string) bool {
	for i := 0; i < len(tok); i++ {
		if tok[i] >= utf8.RuneSelf {
			for _, r := range tok[i:] {
				if !unicode.IsLetter(r) && !unicode.IsNumber(r) || r == 'ς' {
					return false
				}
			}
			return true
		}
	}
	return true
}

// splitToken yields the FTS5 tokens of tok, which has marks or a final
// sigma; see tokens. It returns false when yield does.
func splitToken(tok string, yield func(string) bool) bool {
	var b strings.Builder
	for _, r := range tok {
		switch {
		case unicode.IsLetter(r) || unicode.IsNumber(r):
			if r == 'ς' {
				r = 'σ'
			}
			b.WriteRune(r)
		case b.Len() > 0 && isFTS5Diacritic(r):
			// Part of the token, but removed.
		case b.Len() > 0:
			if !yield(b.String()) {
				return false
			}
			b.Reset()
		}
	}
	return b.Len() == 0 || yield(b.String())
}

// isFTS5Diacritic reports whether FTS5's unicode61 tokenizer treats r as
// an accent to remove inside a token: some of the combining diacritical
// marks U+0300 to U+0331, by the same bit masks as SQLite's
// sqlite3Fts5UnicodeIsdiacritic.
func isFTS5Diacritic(r rune) bool {
	const mask0, mask1 = 0x08029FDF, 0x000361F8
	switch {
	case r < 0x300 || r > 0x331:
		return false
	case r < 0x300+32:
		return mask0&(1<<(r-0x300)) != 0
	default:
		return mask1&(1<<(r-0x300-32)) != 0
	}
}

// weight returns the BM25 weight, before the inverse document frequency,
// of a token whose occurrences count w after column weights, in a document
// of length tokens, where articles have avgLen tokens on average.
func weight(w float64, length uint32, avgLen float64) float64 {
	norm := 1.0
	if avgLen > 0 {
		norm = 1 - b + b*float64(length)/avgLen
	}
	return w * (k1 + 1) / (w + k1*norm)
}

// avgLen returns the average length of the current documents in tokens.
func (ix *Index) avgLen() float64 {
	if ix.live == 0 {
		return 0
	}
	return float64(ix.tokens) / float64(ix.live)
}

// weighted returns the weighted count of the position keys that fall in
// the columns up to last.
func weighted(keys []uint32, last int) float64 {
	w := 0.0
	for _, k := range keys {
		if col := int(k >> posBits); col <= last {
			w += columnWeights[col]
		}
	}
	return w
}

// idf is FTS5's inverse document frequency of a term that df of n
// documents contain. FTS5 gives a term in half of the documents or more a
// tiny positive value instead of zero or less, so that it still counts.
func idf(n, df int) float64 {
	v := math.Log((float64(n) - float64(df) + 0.5) / (float64(df) + 0.5))
	if v <= 0 {
		return 1e-6
	}
	return v
}

// Update replaces the indexed version of an article: it removes version
// prevSeq, whose text prev held, when the index has it, and adds next as
// version seq unless next is nil or archived. Either may be absent: prev nil
// for a new article, next nil for one that is gone. Updates must be applied
// in commit order; an update that the index already reflects changes
// nothing, so replaying one is safe.
func (ix *Index) Update(prevSeq int64, prev *knowledge.Article, seq int64, next *knowledge.Article) {
	var removed, added analyzed
	if prev != nil {
		removed = analyze(prev)
	}
	if next != nil && next.Status != knowledge.StatusArchived {
		added = analyze(next)
	} else {
		next = nil
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if prev != nil {
		ix.remove(prevSeq, &removed)
	}
	if next != nil {
		ix.add(seq, next, &added)
	}
	ix.full.mergeVocab()
	ix.head.mergeVocab()
	ix.maybeCompact()
}

// Doc is one article version for Load.
type Doc struct {
	Seq     int64
	Article *knowledge.Article
}

// Load adds many article versions at once, analyzing them on up to
// workers goroutines first, as a store does when it builds the index. It
// is Update without a previous version for each of them.
func (ix *Index) Load(docs []Doc, workers int) {
	an := make([]analyzed, len(docs))
	var wg sync.WaitGroup
	for w := range max(workers, 1) {
		wg.Go(func() {
			for i := w; i < len(docs); i += max(workers, 1) {
				if docs[i].Article.Status != knowledge.StatusArchived {
					an[i] = analyze(docs[i].Article)
				}
			}
		})
	}
	wg.Wait()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for i, d := range docs {
		if d.Article.Status != knowledge.StatusArchived {
			ix.add(d.Seq, d.Article, &an[i])
		}
	}
	ix.full.mergeVocab()
	ix.head.mergeVocab()
	ix.maybeCompact()
}

// remove marks the document of version seq dead and takes its tokens out
// of the statistics. Its postings stay until the next compaction.
func (ix *Index) remove(seq int64, a *analyzed) {
	d, ok := ix.bySeq[seq]
	if !ok {
		return
	}
	delete(ix.bySeq, seq)
	if id := ix.docs[d].id; ix.byID[id] == d {
		delete(ix.byID, id)
	}
	ix.alive[d/64] &^= 1 << (d % 64)
	ix.live--
	ix.dead++
	ix.tokens -= int64(ix.lengths[d])
	n := len(a.terms)
	if ix.leaveClass(d) {
		n += headTerms(a)
	}
	ix.livePostings -= n
	ix.deadPostings += n
	ix.count(ix.docs[d].article, -1)
	ix.docs[d].article = nil
	for _, t := range a.terms {
		if p := ix.full.terms[t.term]; p != nil {
			p.df--
		}
		if hasHead(t.keys) {
			if p := ix.head.terms[t.term]; p != nil {
				p.df--
			}
		}
	}
}

// headTerms returns the number of the document's terms that are in the
// title or the tags: the postings of its class in the head field.
func headTerms(a *analyzed) int {
	n := 0
	for _, t := range a.terms {
		if hasHead(t.keys) {
			n++
		}
	}
	return n
}

// joinClass adds current document d to the class of its title and tags,
// creating the class when there is none. It reports whether the class
// is new, and whether it had no document before, so that its postings
// count as live again.
func (ix *Index) joinClass(d uint32, a *knowledge.Article) (c uint32, created, revived bool) {
	key := classKey(a.Title, a.Tags)
	c, ok := ix.classByKey[key]
	if !ok {
		c = uint32(len(ix.classes))
		ix.classes = append(ix.classes, class{key: key})
		ix.classByKey[key] = c
		ix.classLen = append(ix.classLen, 0)
		if int(c/64) >= len(ix.classAlive) {
			ix.classAlive = append(ix.classAlive, 0)
		}
	}
	cl := &ix.classes[c]
	revived = ok && len(cl.docs) == 0
	i, _ := slices.BinarySearchFunc(cl.docs, d, ix.classOrder)
	cl.docs = slices.Insert(cl.docs, i, d)
	ix.classLen[c] = ix.lengths[cl.docs[0]]
	ix.classAlive[c/64] |= 1 << (c % 64)
	ix.docs[d].class = c
	return c, !ok, revived
}

// leaveClass removes document d from its class and reports whether the
// class has no document left. An empty class keeps its number and
// postings until the next compaction, for a document that joins it again.
func (ix *Index) leaveClass(d uint32) bool {
	c := ix.docs[d].class
	cl := &ix.classes[c]
	if i, ok := slices.BinarySearchFunc(cl.docs, d, ix.classOrder); ok {
		cl.docs = slices.Delete(cl.docs, i, i+1)
	}
	if len(cl.docs) == 0 {
		ix.classAlive[c/64] &^= 1 << (c % 64)
		return true
	}
	ix.classLen[c] = ix.lengths[cl.docs[0]]
	return false
}

// classOrder orders the documents of a class: by length, then by id,
// then by document number. Two versions of one article can be current
// for a moment, while a store's build replays the writes it raced with.
func (ix *Index) classOrder(d, e uint32) int {
	if c := cmp.Compare(ix.lengths[d], ix.lengths[e]); c != 0 {
		return c
	}
	if c := strings.Compare(ix.docs[d].id, ix.docs[e].id); c != 0 {
		return c
	}
	return cmp.Compare(d, e)
}

// hasHead reports whether any key is in the title or the tags.
func hasHead(keys []uint32) bool {
	return len(keys) > 0 && keys[0]>>posBits <= colTags
}

// add appends a document for version seq. Document numbers only grow, so
// every postings list stays in order by appending.
//
// A version that the index has, or that is older than the one it has of
// the article, is left out, so that replaying updates is safe.
func (ix *Index) add(seq int64, a *knowledge.Article, an *analyzed) {
	if _, ok := ix.bySeq[seq]; ok {
		return
	}
	if d, ok := ix.byID[a.ID]; ok && ix.docs[d].seq > seq {
		return
	}
	stored := *a
	stored.Body = ""
	stored.Tags = slices.Clone(a.Tags)
	stored.Metadata = maps.Clone(a.Metadata)

	d := uint32(len(ix.docs))
	ix.docs = append(ix.docs, doc{seq: seq, layout: an.layout, id: stored.ID, article: &stored, metaFolds: an.metaFolds})
	ix.lengths = append(ix.lengths, an.length)
	if int(d/64) >= len(ix.alive) {
		ix.alive = append(ix.alive, 0)
	}
	ix.alive[d/64] |= 1 << (d % 64)
	ix.bySeq[seq] = d
	ix.byID[a.ID] = d
	ix.live++
	ix.tokens += int64(an.length)
	ix.count(&stored, 1)
	c, created, revived := ix.joinClass(d, a)
	ix.livePostings += len(an.terms)
	if created || revived {
		n := headTerms(an)
		ix.livePostings += n
		if revived {
			ix.deadPostings -= n
		}
	}

	for _, t := range an.terms {
		ix.full.insert(t.term).append(d, t.keys, weighted(t.keys, colBody), an.length, 1)
		if !hasHead(t.keys) {
			continue
		}
		if !created {
			// The class's postings exist already. The document counts
			// in the term's frequency and may be the class's shortest.
			p := ix.head.terms[t.term]
			p.df++
			p.minLen = min(p.minLen, an.length)
			continue
		}
		keys := t.keys
		for i, k := range keys {
			if k>>posBits > colTags {
				keys = keys[:i]
				break
			}
		}
		ix.head.insert(t.term).append(c, keys, weighted(keys, colTags), an.length, 1)
	}
}

// insert returns the postings of term, creating them when needed.
func (f *field) insert(term string) *postings {
	p := f.terms[term]
	if p == nil {
		p = &postings{}
		f.terms[term] = p
		f.added = append(f.added, term)
	}
	return p
}

// mergeVocab adds the new terms to vocab, keeping it in order. One merge
// per write, rather than one insertion per term, keeps a bulk load linear.
func (f *field) mergeVocab() {
	if len(f.added) == 0 {
		return
	}
	slices.Sort(f.added)
	merged := make([]vocabEntry, 0, len(f.vocab)+len(f.added))
	i, j := 0, 0
	for i < len(f.vocab) || j < len(f.added) {
		if j == len(f.added) || i < len(f.vocab) && f.vocab[i].term < f.added[j] {
			merged = append(merged, f.vocab[i])
			i++
		} else {
			merged = append(merged, vocabEntry{f.added[j], f.terms[f.added[j]]})
			j++
		}
	}
	f.vocab, f.added = merged, f.added[:0]
}

// append adds document or class d, whose shortest document has length
// tokens, with its position keys and their weighted count. docs is the
// number of current documents that d represents.
func (p *postings) append(d uint32, keys []uint32, count float64, length uint32, docs int) {
	if len(p.docs) == 0 {
		p.minLen = length
	}
	if len(p.docs)%posEvery == 0 {
		p.posAt = append(p.posAt, uint32(len(p.pos)))
	}
	c := uint32(min(count, math.MaxUint32))
	p.docs = append(p.docs, d)
	p.count = addCount(p.count, &p.big, d, c)
	p.maxCount = max(p.maxCount, c)
	p.minLen = min(p.minLen, length)
	p.pos = appendKeys(p.pos, keys)
	p.df += docs
}

// appendKeys appends the count of keys and the keys. The first key is
// written as its position and column, position << 2 | column, because
// the column bits of a key would make every list's first varint five
// bytes long; the others as deltas from the one before.
func appendKeys(buf []byte, keys []uint32) []byte {
	buf = appendUvarint(buf, uint32(len(keys)))
	for i, k := range keys {
		if i == 0 {
			buf = appendUvarint(buf, (k&(1<<posBits-1))<<2|k>>posBits)
		} else {
			buf = appendUvarint(buf, k-keys[i-1])
		}
	}
	return buf
}

func appendUvarint(buf []byte, v uint32) []byte {
	for v >= 0x80 {
		buf = append(buf, byte(v)|0x80)
		v >>= 7
	}
	return append(buf, byte(v))
}

func uvarint(buf []byte, at int) (uint32, int) {
	var v uint32
	for shift := 0; ; shift += 7 {
		c := buf[at]
		at++
		v |= uint32(c&0x7f) << shift
		if c < 0x80 {
			return v, at
		}
	}
}

// keysAt appends to dst the position keys of posting i.
func (p *postings) keysAt(i int, dst []uint32) []uint32 {
	at := int(p.posAt[i/posEvery])
	for range i % posEvery {
		var n uint32
		n, at = uvarint(p.pos, at)
		for range n {
			_, at = uvarint(p.pos, at)
		}
	}
	n, at := uvarint(p.pos, at)
	k := uint32(0)
	for i := range n {
		var v uint32
		v, at = uvarint(p.pos, at)
		if i == 0 {
			k = (v&3)<<posBits | v>>2
		} else {
			k += v
		}
		dst = append(dst, k)
	}
	return dst
}

func (ix *Index) isAlive(d uint32) bool { return ix.alive[d/64]&(1<<(d%64)) != 0 }

func (ix *Index) classIsAlive(c uint32) bool { return ix.classAlive[c/64]&(1<<(c%64)) != 0 }

// maybeCompact rebuilds the postings without dead documents once they are
// half as many as the live ones; see deadPostings.
func (ix *Index) maybeCompact() {
	if ix.live == 0 {
		if ix.dead > 0 {
			ix.docs, ix.lengths, ix.alive, ix.dead, ix.tokens = nil, nil, nil, 0, 0
			ix.livePostings, ix.deadPostings = 0, 0
			ix.byID = map[string]uint32{}
			ix.full = field{terms: map[string]*postings{}}
			ix.head = field{terms: map[string]*postings{}}
			ix.classes, ix.classAlive, ix.classLen = nil, nil, nil
			ix.classByKey = map[string]uint32{}
			ix.tagCount, ix.metaCount = map[string]int{}, map[string]int{}
			ix.metaFold = map[string][]MetadataPair{}
		}
		return
	}
	if ix.deadPostings < minCompact || 2*ix.deadPostings < ix.livePostings {
		return
	}
	ix.compact()
}

// Compact drops the dead documents, numbers the others class by class,
// and copies every list into memory sized to it. A store calls it
// once its build is done: the build adds articles in the order of their
// versions and grows each list by appending.
func (ix *Index) Compact() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.compact()
}

// compact drops the dead documents and the classes without a document,
// and renumbers the documents class by class, each class in its ranking
// order. The articles of a class, such as one runbook's copies for many
// clusters, then sit side by side in every list, so a search reads the
// postings and lengths of similar articles from neighbouring memory. A
// build adds the articles in the order of their versions, which spreads
// such copies over the whole range of numbers.
func (ix *Index) compact() {
	renum := make([]uint32, len(ix.docs))
	docs := make([]doc, 0, ix.live)
	lengths := make([]uint32, 0, ix.live)
	classRenum := make([]uint32, len(ix.classes))
	classes := make([]class, 0, len(ix.classes))
	classLen := make([]uint32, 0, len(ix.classes))
	for c, cl := range ix.classes {
		if len(cl.docs) == 0 {
			delete(ix.classByKey, cl.key)
			continue
		}
		nc := uint32(len(classes))
		classRenum[c] = nc
		ix.classByKey[cl.key] = nc
		for i, d := range cl.docs {
			nd := uint32(len(docs))
			renum[d] = nd
			cl.docs[i] = nd
			docs = append(docs, ix.docs[d])
			docs[nd].class = nc
			lengths = append(lengths, ix.lengths[d])
		}
		classes = append(classes, cl)
		classLen = append(classLen, ix.classLen[c])
	}
	alive := make([]uint64, (len(docs)+63)/64)
	for d := range docs {
		alive[d/64] |= 1 << (d % 64)
	}
	classAlive := make([]uint64, (len(classes)+63)/64)
	for c := range classes {
		classAlive[c/64] |= 1 << (c % 64)
	}

	var keys []uint32
	var order []uint64
	for _, f := range []*field{&ix.full, &ix.head} {
		last, isAlive, renumber, newLen := colBody, ix.isAlive, renum, lengths
		size := func(uint32) int { return 1 }
		if f == &ix.head {
			last, isAlive, renumber, newLen = colTags, ix.classIsAlive, classRenum, classLen
			size = func(c uint32) int { return len(classes[c].docs) }
		}
		vocab := f.vocab[:0]
		for _, e := range f.vocab {
			term, old := e.term, e.p
			// order packs each live posting's new number into the high
			// 32 bits and its index in old into the low ones, so that
			// sorting yields the new order.
			order = order[:0]
			for i, d := range old.docs {
				if isAlive(d) {
					order = append(order, uint64(renumber[d])<<32|uint64(i))
				}
			}
			if len(order) == 0 {
				delete(f.terms, term)
				continue
			}
			slices.Sort(order)
			// Each posting's keys encode to the same bytes in the new
			// list as in the old one, so the old list's size bounds the
			// new one's.
			p := &postings{
				docs:  make([]uint32, 0, len(order)),
				count: make([]uint16, 0, len(order)),
				pos:   make([]byte, 0, len(old.pos)),
				posAt: make([]uint32, 0, (len(order)+posEvery-1)/posEvery),
			}
			for _, o := range order {
				nd := uint32(o >> 32)
				keys = old.keysAt(int(uint32(o)), keys[:0])
				p.append(nd, keys, weighted(keys, last), newLen[nd], size(nd))
			}
			if cap(p.pos)-len(p.pos) > len(p.pos)/8 {
				// Many dead postings were dropped.
				p.pos = slices.Clone(p.pos)
			}
			f.terms[term] = p
			vocab = append(vocab, vocabEntry{term, p})
		}
		f.vocab = vocab
	}

	for seq, d := range ix.bySeq {
		ix.bySeq[seq] = renum[d]
	}
	for id, d := range ix.byID {
		ix.byID[id] = renum[d]
	}
	ix.docs, ix.lengths, ix.alive, ix.dead, ix.deadPostings = docs, lengths, alive, 0, 0
	ix.classes, ix.classLen, ix.classAlive = classes, classLen, classAlive
}
