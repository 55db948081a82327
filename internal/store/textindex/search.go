package textindex

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"sync"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store/fulltext"
)

// Query is a search of the index.
type Query struct {
	Terms []fulltext.Term
	// Any matches the articles that contain any term; otherwise they must
	// contain every term.
	Any bool
	// Head searches and ranks the title and tags alone, as an FTS5 column
	// filter {title tags} does.
	Head bool
	// Filters must all match.
	Filters []knowledge.Scope
}

// Hit is one ranked article version. Article is the index's copy, without
// the body; callers must not change it.
type Hit struct {
	fulltext.Ranked
	Article *knowledge.Article
	// MetadataFolds are knowledge.MetadataFoldHashes of the article's
	// metadata.
	MetadataFolds []uint64
}

// margin is the relative slack of the score bounds that prune a search:
// a sum of the same terms in another order may differ in its last bits,
// and a bound must never fall below the score it bounds.
const margin = 1e-9

// list is the postings of one query term, as a cursor.
type list struct {
	docs    []uint32
	count   []uint16 // weighted counts, by index of docs, as in postings
	big     map[uint32]uint32
	lengths []uint32 // the lengths of the documents or classes in docs, as units gives them
	// norm0 and norm1 are k1(1-b) and k1*b/avgLen, so that weight's
	// denominator is w + norm0 + norm1*length, one division per score.
	norm0, norm1 float64
	idf          float64
	max          float64 // no score in the list is higher
	i            int
}

// score returns the term's score in the current document, or in the
// shortest document of the current class, and the term's weighted count
// there.
func (l *list) score() (score, w float64) {
	w = float64(countAt(l.count, l.big, l.docs, l.i))
	return l.scoreOf(w, l.lengths[l.docs[l.i]]), w
}

// scoreOf returns the term's score in a document of length tokens where
// its weighted count is w.
func (l *list) scoreOf(w float64, length uint32) float64 {
	return l.idf * w * (k1 + 1) / (w + l.norm0 + l.norm1*float64(length))
}

// end is a document number beyond every real one.
const end = ^uint32(0)

func (l *list) cur() uint32 {
	if l.i < len(l.docs) {
		return l.docs[l.i]
	}
	return end
}

// seek moves to the first posting at or after document d. It steps a few
// postings first, since in a list much longer than the one that leads a
// search the next match is near, then gallops and bisects, so that a
// skip over many postings costs a logarithm.
func (l *list) seek(d uint32) {
	docs, i := l.docs, l.i
	if i >= len(docs) || docs[i] >= d {
		return
	}
	for range seekSteps {
		if i++; i >= len(docs) || docs[i] >= d {
			l.i = i
			return
		}
	}
	// docs[i] < d.
	bound := 1
	for i+bound < len(docs) && docs[i+bound] < d {
		bound *= 2
	}
	// docs[lo] < d, and docs[hi] >= d or hi == len(docs).
	lo, hi := i+bound/2, min(i+bound, len(docs))
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if docs[m] < d {
			lo = m
		} else {
			hi = m
		}
	}
	l.i = hi
}

// find returns the index of document d in docs, which is sorted, and
// whether it is there. The documents of a long list spread about evenly
// over the numbers, so a first guess in proportion to d lands a few
// postings away. Galloping from there brackets d within a cache line or
// two, where a bisection of the whole list reads a line per halving.
func find(docs []uint32, d uint32) (int, bool) {
	n := len(docs)
	if n == 0 || d < docs[0] || d > docs[n-1] {
		return 0, false
	}
	g := 0
	if span := uint64(docs[n-1] - docs[0]); span > 0 {
		g = int(uint64(d-docs[0]) * uint64(n-1) / span)
	}
	// Bracket d so that docs[lo] <= d and d < docs[hi] or hi == n.
	var lo, hi int
	if docs[g] <= d {
		lo, hi = g, g+1
		for step := 1; hi < n && docs[hi] <= d; step *= 2 {
			lo = hi
			hi += step
		}
		hi = min(hi, n)
	} else {
		// docs[0] <= d < docs[g], so g >= 1.
		lo, hi = g-1, g
		for step := 1; lo > 0 && docs[lo] > d; step *= 2 {
			hi = lo
			lo -= step
		}
		lo = max(lo, 0)
	}
	i, ok := slices.BinarySearch(docs[lo:hi], d)
	return lo + i, ok
}

// seekSteps is the number of postings that seek steps over one by one
// before it gallops.
const seekSteps = 4

// Rank returns the n best matches of q, by score and then by id, best
// first. With no terms nothing matches.
func (ix *Index) Rank(q Query, n int) []Hit {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.rank(q, n)
}

// Snapshot is the index locked for reading, for a search that ranks and
// counts more than once and must see one state of the index throughout.
type Snapshot struct{ ix *Index }

// Read calls fn with a snapshot of the index, which is valid until fn
// returns. Writes wait until then.
func (ix *Index) Read(fn func(Snapshot)) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	fn(Snapshot{ix})
}

// Rank is Index.Rank on the snapshot.
func (s Snapshot) Rank(q Query, n int) []Hit { return s.ix.rank(q, n) }

// Each is Index.Each on the snapshot.
func (s Snapshot) Each(q Query, fn func(a *knowledge.Article)) { s.ix.each(q, fn) }

func (ix *Index) rank(q Query, n int) []Hit {
	lists := ix.lists(q)
	if len(lists) == 0 || n <= 0 {
		return nil
	}
	top := topN{ix: ix, n: n, heap: make([]Hit, 0, min(n, maxPresized))}
	out := &sink{ix: ix, top: &top, accept: ix.acceptor(q.Filters), lists: lists,
		contrib: make([]float64, len(lists)), weights: make([]float64, len(lists))}
	if q.Head {
		out.classes = ix.classes
	}
	switch {
	case q.Any && q.Head && postingsOf(lists) <= maxClassScan:
		rankClasses(lists, out)
	case q.Any:
		rankAny(lists, out)
	default:
		rankAll(lists, out)
	}
	return top.sorted()
}

// sink takes the documents or classes that a ranking scores and offers
// their documents to the best n.
type sink struct {
	ix     *Index
	top    *topN
	accept func(uint32) bool
	// lists are the query's lists in the order of the ranking. contrib
	// and weights hold the score and the weighted count of each in the
	// document or class at hand, or 0 when it lacks the term.
	lists            []*list
	contrib, weights []float64
	// classes are the index's when the lists number classes.
	classes []class
}

// full reports whether the best n are complete, and worst returns the
// lowest score among them.
func (s *sink) full() bool     { return s.top.full() }
func (s *sink) worst() float64 { return s.top.worst().Score }

// admits reports whether a document is current and the filters accept
// it, or whether a class has a document. A class's documents meet the
// filters as offer takes them.
func (s *sink) admits(u uint32) bool {
	if s.classes != nil {
		return s.ix.classIsAlive(u)
	}
	return s.ix.isAlive(u) && (s.accept == nil || s.accept(u))
}

// offer offers document or class u, which admits has let in, with the
// scores in s.contrib. A class offers its documents in ranking order
// until one falls below the best n: the first has the score of the
// class, and a longer document scores no higher.
func (s *sink) offer(u uint32) {
	first := sum(s.contrib, len(s.lists))
	if s.classes == nil {
		s.top.offer(u, first)
		return
	}
	for i, d := range s.classes[u].docs {
		score := first
		if i > 0 {
			// Summed in the lists' order, as sum does, so that
			// documents with the same weights and lengths tie.
			score = 0
			length := s.ix.lengths[d]
			for j, l := range s.lists {
				if w := s.weights[j]; w > 0 {
					score += l.scoreOf(w, length)
				}
			}
		}
		if s.top.full() && score < s.top.worst().Score {
			return
		}
		if s.accept == nil || s.accept(d) {
			s.top.offer(d, score)
		}
	}
}

// lists returns the postings of the query's terms, or nil when a search
// for every term cannot match. For Any, terms that match nothing are left
// out.
func (ix *Index) lists(q Query) []*list {
	f := &ix.full
	if q.Head {
		f = &ix.head
	}
	var out []*list
	for _, t := range q.Terms {
		l := ix.termList(f, &t)
		if len(l.docs) == 0 {
			if q.Any {
				continue
			}
			return nil
		}
		out = append(out, l)
	}
	return out
}

// termDocs are the postings of one term: the documents and the weighted
// counts, with bounds as in postings.
type termDocs struct {
	docs     []uint32
	count    []uint16
	big      map[uint32]uint32
	maxCount uint32
	minLen   uint32
	df       int // current documents among docs
}

func stored(p *postings) termDocs {
	return termDocs{docs: p.docs, count: p.count, big: p.big, maxCount: p.maxCount, minLen: p.minLen, df: p.df}
}

// add appends a computed posting of weighted count c for document or
// class d, which represents docs documents (see units).
func (td *termDocs) add(d uint32, c float64, length uint32, docs int) {
	cc := uint32(min(c, math.MaxUint32))
	if len(td.docs) == 0 {
		td.minLen = length
	}
	td.docs = append(td.docs, d)
	td.count = addCount(td.count, &td.big, d, cc)
	td.maxCount = max(td.maxCount, cc)
	td.minLen = min(td.minLen, length)
	td.df += docs
}

// units describes the numbering of a field's postings: by document in
// the full field, by class in the head field.
type units struct {
	alive   []uint64
	lengths []uint32 // of each document, or of each class's shortest
	classes []class  // nil for documents
}

func (ix *Index) units(f *field) units {
	if f == &ix.head {
		return units{alive: ix.classAlive, lengths: ix.classLen, classes: ix.classes}
	}
	return units{alive: ix.alive, lengths: ix.lengths}
}

func (u *units) isAlive(x uint32) bool { return u.alive[x/64]&(1<<(x%64)) != 0 }

// docs returns the number of current documents that x represents.
func (u *units) docs(x uint32) int {
	if u.classes == nil {
		return 1
	}
	return len(u.classes[x].docs)
}

// termList returns the postings of a term in field f with their inverse
// document frequency.
func (ix *Index) termList(f *field, t *fulltext.Term) *list {
	td := ix.termDocs(f, t)
	avg := ix.avgLen()
	l := &list{docs: td.docs, count: td.count, big: td.big, lengths: ix.units(f).lengths, norm0: k1 * (1 - b), norm1: k1 * b / avg}
	if td.df == 0 {
		l.docs = nil
		return l
	}
	l.idf = idf(ix.live, td.df)
	// The weight grows with the count and falls with the length.
	l.max = l.idf * weight(float64(td.maxCount), td.minLen, avg)
	return l
}

// termDocs finds the postings of a term. A single word is one stored
// list. A prefix or a phrase is computed: the documents that have every
// word of the phrase at consecutive positions in one column, with the
// weight of those occurrences.
func (ix *Index) termDocs(f *field, t *fulltext.Term) termDocs {
	t = indexTerm(t)
	if len(t.Tokens) == 0 {
		return termDocs{}
	}
	if len(t.Tokens) == 1 && !t.Prefix {
		p := f.terms[t.Tokens[0]]
		if p == nil {
			return termDocs{}
		}
		return stored(p)
	}
	if len(t.Tokens) == 1 {
		return ix.prefixDocs(f, t.Tokens[0])
	}

	last := colBody
	if f == &ix.head {
		last = colTags
	}
	us := ix.units(f)
	srcs := make([]source, len(t.Tokens))
	for j, tok := range t.Tokens {
		if j == len(t.Tokens)-1 && t.Prefix {
			srcs[j] = prefixSource(f, &us, tok)
		} else if p := f.terms[tok]; p != nil {
			srcs[j] = source{docs: p.docs, p: p}
		}
		if len(srcs[j].docs) == 0 {
			return termDocs{}
		}
	}

	// Walk the documents that every word's list has, as align finds them.
	var out termDocs
	lists := make([]*list, len(srcs))
	for j := range srcs {
		lists[j] = &list{docs: srcs[j].docs}
	}
	keys := make([][]uint32, len(srcs))
	d := uint32(0)
	for {
		next, ok := align(lists, d)
		if next == end {
			return out
		}
		if !ok {
			d = next
			continue
		}
		if us.isAlive(d) {
			for j := range srcs {
				keys[j] = srcs[j].keysAt(lists[j].i, keys[j][:0])
			}
			if w := phraseWeight(keys, last); w > 0 {
				out.add(d, w, us.lengths[d], us.docs(d))
			}
		}
		d++
	}
}

// maxHintWords bounds the words of a prefix that Hints looks up in one
// article; a broader prefix gets no hint.
const maxHintWords = 64

// Hints returns where the terms occur in the body of each version in
// seqs, for fulltext.Query.HighlightHint. A page's hits share one call,
// which looks up the terms' words once. A version's hint is nil when the
// index cannot tell: the version is not current, its body has CJK text or
// marks that split words, a term's words are split differently, or a
// prefix has more than maxHintWords words.
func (ix *Index) Hints(seqs []int64, terms []fulltext.Term) []*fulltext.Hint {
	out := make([]*fulltext.Hint, len(seqs))
	for _, t := range terms {
		if indexTerm(&t) != &t {
			return out
		}
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	// words[ti][j] are the postings that word j of term ti matches.
	words := make([][][]*postings, len(terms))
	for ti := range terms {
		t := &terms[ti]
		words[ti] = make([][]*postings, len(t.Tokens))
		for j, tok := range t.Tokens {
			words[ti][j] = ix.full.words(tok, j == len(t.Tokens)-1 && t.Prefix)
			if len(words[ti][j]) > maxHintWords {
				return out
			}
		}
	}
	sc, _ := hintScratchPool.Get().(*hintScratch)
	if sc == nil {
		sc = &hintScratch{}
	}
	defer func() {
		// Scratch grown by a word that one long article repeats
		// thousands of times is left to the collector, not pooled.
		n := cap(sc.keys) + cap(sc.found) + cap(sc.hits) + cap(sc.postingAt)
		for _, at := range sc.at {
			n += cap(at)
		}
		if n <= maxPooledKeys {
			hintScratchPool.Put(sc)
		}
	}()
	// hits packs the document number of each hit that gets a hint into
	// the high 32 bits and its index in seqs into the low ones, so that
	// sorting orders them by number.
	hits := sc.hits[:0]
	for i, seq := range seqs {
		if d, ok := ix.bySeq[seq]; ok && ix.docs[d].layout != nil {
			hits = append(hits, uint64(d)<<32|uint64(i))
		}
	}
	slices.Sort(hits)
	sc.hits = hits
	postingAt, nw := sc.findHits(hits, words)

	// One allocation for the hints of a page and one for their Found.
	hints := make([]fulltext.Hint, len(seqs))
	found := make([]bool, len(seqs)*len(terms))
	for k, hit := range hits {
		d, i := uint32(hit>>32), int(uint32(hit))
		h := &hints[i]
		h.Found = found[i*len(terms) : (i+1)*len(terms) : (i+1)*len(terms)]
		ix.hint(d, terms, words, postingAt[k*nw:(k+1)*nw], sc, h)
		out[i] = h
	}
	return out
}

// findHits finds the hits, sorted as Hints packs them, in every list of
// words. It returns the index of each hit's posting in each list, or -1,
// as rows of nw lists in the order of words, one row per hit. Each list
// is searched forward from the hit before, so the hits of one class,
// which have neighbouring numbers, cost a step or two.
func (sc *hintScratch) findHits(hits []uint64, words [][][]*postings) (postingAt []int32, nw int) {
	for _, ws := range words {
		for _, w := range ws {
			nw += len(w)
		}
	}
	out := slices.Grow(sc.postingAt[:0], len(hits)*nw)[:len(hits)*nw]
	sc.postingAt = out
	k := 0
	for _, ws := range words {
		for _, w := range ws {
			for _, p := range w {
				lo := 0
				for h, hit := range hits {
					i, ok := find(p.docs[lo:], uint32(hit>>32))
					if !ok {
						out[h*nw+k] = -1
						continue
					}
					lo += i
					out[h*nw+k] = int32(lo)
				}
				k++
			}
		}
	}
	return out, nw
}

// hintScratch is the space that hint reuses from one document and term to
// the next, and Hints from one page to the next.
type hintScratch struct {
	keys      []uint32
	at        [][]uint32
	found     []uint64
	hits      []uint64
	postingAt []int32
}

var hintScratchPool sync.Pool

// maxPooledKeys bounds the scratch that Hints keeps for the next page.
const maxPooledKeys = 1 << 14

// hint is Hints for document d. It fills h, whose Found has room for the
// terms. postingAt contains the indexes of d's postings in the lists of
// words, as findHits returns them.
func (ix *Index) hint(d uint32, terms []fulltext.Term, words [][][]*postings, postingAt []int32, sc *hintScratch, h *fulltext.Hint) {
	l := ix.docs[d].layout
	h.Layout = l
	// Matches are collected as word<<8 | term, which sort as numbers;
	// queries have at most fulltext.MaxTerms (64) terms.
	found := sc.found[:0]
	list := 0 // index of the next list of words in postingAt
	for ti := range terms {
		n := len(terms[ti].Tokens)
		if n == 0 {
			continue // a term without tokens matches nothing
		}
		// The body positions of each word of the term in this article.
		for len(sc.at) < n {
			sc.at = append(sc.at, nil)
		}
		at := sc.at[:n]
		for j := range n {
			at[j] = at[j][:0]
			for _, p := range words[ti][j] {
				i := postingAt[list]
				list++
				if i < 0 {
					continue
				}
				sc.keys = p.keysAt(int(i), sc.keys[:0])
				for _, k := range sc.keys {
					if k>>posBits == colBody {
						at[j] = append(at[j], k&(1<<posBits-1))
					}
				}
			}
			if len(words[ti][j]) > 1 {
				slices.Sort(at[j])
			}
		}
		for _, p := range at[0] {
			w := int(p)
			if n == 1 && w >= l.Tokens {
				// A camel-case part: the match is its word.
				j := w - l.Tokens
				if j >= len(l.PartOf) {
					continue
				}
				w = int(l.PartOf[j])
			} else if w+n-1 >= l.Tokens {
				// A phrase among the parts, which snippets do not mark.
				continue
			}
			phrase := true
			for j := 1; j < n && phrase; j++ {
				_, phrase = slices.BinarySearch(at[j], p+uint32(j))
			}
			if phrase {
				h.Found[ti] = true
				found = append(found, uint64(w)<<8|uint64(ti))
			}
		}
	}
	slices.Sort(found)
	found = slices.Compact(found)
	h.Matches = make([]fulltext.HintMatch, len(found))
	for i, k := range found {
		w, ti := int(k>>8), int(k&0xff)
		h.Matches[i] = fulltext.HintMatch{First: w, Last: w + len(terms[ti].Tokens) - 1, Term: ti}
	}
	sc.found = found
}

// words returns the postings of the token, or with prefix of every token
// that starts with it.
func (f *field) words(tok string, prefix bool) []*postings {
	if !prefix {
		if p := f.terms[tok]; p != nil {
			return []*postings{p}
		}
		return nil
	}
	var out []*postings
	for _, e := range prefixed(f.vocab, tok) {
		if len(out) > maxHintWords {
			break
		}
		out = append(out, e.p)
	}
	return out
}

// indexTerm returns the term with its tokens split as the index splits
// text (see tokens): a token with a combining mark inside, such as
// "हिन्दी", becomes a phrase of its parts, as FTS5 reads it.
func indexTerm(t *fulltext.Term) *fulltext.Term {
	split := false
	for _, tok := range t.Tokens {
		n, same := 0, false
		for part := range tokens(tok) {
			n++
			same = part == tok
		}
		if n != 1 || !same {
			split = true
			break
		}
	}
	if !split {
		return t
	}
	out := *t
	out.Tokens = nil
	for _, tok := range t.Tokens {
		for part := range tokens(tok) {
			out.Tokens = append(out.Tokens, part)
		}
	}
	return &out
}

// prefixDocs returns the postings of a prefix of one word: in each
// document, the weight of the counts of every word with the prefix added
// together, as FTS5 counts a prefix's instances.
func (ix *Index) prefixDocs(f *field, prefix string) termDocs {
	words := prefixed(f.vocab, prefix)
	switch len(words) {
	case 0:
		return termDocs{}
	case 1:
		return stored(words[0].p)
	}
	// Counts are added in a table by document number; a bit set marks
	// the documents touched, in order, so the result needs no sort. Dead
	// documents are dropped once each at the end, not once per word.
	us := ix.units(f)
	acc := getAccumulator(len(us.lengths))
	defer putAccumulator(acc)
	for _, w := range words {
		p := w.p
		for i, d := range p.docs {
			if acc.counts[d] == 0 {
				acc.touched[d/64] |= 1 << (d % 64)
			}
			acc.counts[d] += countAt(p.count, p.big, p.docs, i)
		}
	}
	touched := acc.touched[:(len(us.lengths)+63)/64]
	n := 0
	for wi, word := range touched {
		n += bits.OnesCount64(word & us.alive[wi])
	}
	out := termDocs{docs: make([]uint32, 0, n), count: make([]uint16, 0, n), minLen: math.MaxUint32}
	for wi, word := range touched {
		alive := us.alive[wi]
		for word != 0 {
			bit := word & -word
			word &^= bit
			d := uint32(wi*64 + bits.TrailingZeros64(bit))
			c := acc.counts[d]
			acc.counts[d] = 0
			if alive&bit == 0 {
				continue
			}
			out.docs = append(out.docs, d)
			out.count = addCount(out.count, &out.big, d, c)
			out.maxCount = max(out.maxCount, c)
			out.minLen = min(out.minLen, us.lengths[d])
			out.df += us.docs(d)
		}
		touched[wi] = 0
	}
	return out
}

// accumulator is the scratch space of prefixDocs, kept zeroed between
// uses.
type accumulator struct {
	counts  []uint32
	touched []uint64
}

var accumulators sync.Pool

func getAccumulator(docs int) *accumulator {
	if a, ok := accumulators.Get().(*accumulator); ok && len(a.counts) >= docs {
		return a
	}
	n := docs + docs/4 + 64
	return &accumulator{counts: make([]uint32, n), touched: make([]uint64, (n+63)/64)}
}

func putAccumulator(a *accumulator) { accumulators.Put(a) }

// phraseWeight returns the weighted count of the places where the words
// of keys follow each other in one column and the column is at most
// last. keys[j] holds the position keys of word j, in order.
func phraseWeight(keys [][]uint32, last int) float64 {
	w := 0.0
	for _, k := range keys[0] {
		col := int(k >> posBits)
		if col > last {
			break
		}
		ok := true
		for j := 1; j < len(keys) && ok; j++ {
			_, ok = slices.BinarySearch(keys[j], k+uint32(j))
		}
		if ok {
			w += columnWeights[col]
		}
	}
	return w
}

// source is the postings of one word of a phrase: one stored list, or
// the documents of every word with a prefix, their keys merged.
type source struct {
	docs []uint32
	p    *postings  // for a stored list
	keys [][]uint32 // for a prefix, by index of docs
}

func (s *source) keysAt(i int, dst []uint32) []uint32 {
	if s.p != nil {
		return s.p.keysAt(i, dst)
	}
	return append(dst, s.keys[i]...)
}

// prefixSource merges the postings of every word that starts with prefix.
// Only current documents, or classes with one, are kept.
func prefixSource(f *field, us *units, prefix string) source {
	byDoc := map[uint32][]uint32{}
	var buf []uint32
	for _, e := range prefixed(f.vocab, prefix) {
		p := e.p
		for i, d := range p.docs {
			if !us.isAlive(d) {
				continue
			}
			buf = p.keysAt(i, buf[:0])
			byDoc[d] = append(byDoc[d], buf...)
		}
	}
	var s source
	for d := range byDoc {
		s.docs = append(s.docs, d)
	}
	slices.Sort(s.docs)
	s.keys = make([][]uint32, len(s.docs))
	for i, d := range s.docs {
		k := byDoc[d]
		slices.Sort(k)
		s.keys[i] = k
	}
	return s
}

// acceptor returns whether a document passes every filter, or nil when
// every document does. Empty filters are left out: testing one costs a
// read of the document's article, a cache miss per candidate.
func (ix *Index) acceptor(filters []knowledge.Scope) func(d uint32) bool {
	if slices.ContainsFunc(filters, knowledge.Scope.Empty) {
		filters = slices.DeleteFunc(slices.Clone(filters), knowledge.Scope.Empty)
	}
	if len(filters) == 0 {
		return nil
	}
	return func(d uint32) bool {
		a := ix.docs[d].article
		for _, f := range filters {
			if !f.Matches(a) {
				return false
			}
		}
		return true
	}
}

// rankAll ranks the documents that contain every term. The rarest list
// leads; the others seek to its documents, rarest first. Once n documents
// are kept, a document of the lead is skipped without a seek when its
// weight there plus the most the other terms can add cannot beat the n-th
// best. The same test after each seek, with the weights found so far,
// spares the seeks in the longer lists. The search stops when no document
// can enter.
func rankAll(lists []*list, out *sink) {
	slices.SortFunc(lists, func(a, b *list) int { return cmp.Compare(len(a.docs), len(b.docs)) })
	lead := lists[0]
	// rest[j] is the most that lists[j:] add to a score.
	rest := make([]float64, len(lists)+1)
	for j := len(lists) - 1; j >= 1; j-- {
		rest[j] = rest[j+1] + lists[j].max
	}
	contrib, weights := out.contrib, out.weights
	d := uint32(0)
next:
	for {
		if lead.i < len(lead.docs) && lead.docs[lead.i] < d {
			lead.seek(d)
		}
		if d = lead.cur(); d == end {
			return
		}
		worst := math.Inf(-1)
		if out.full() {
			worst = out.worst()
			if (lead.max+rest[1])*(1+margin) < worst {
				return
			}
		}
		contrib[0], weights[0] = lead.score()
		partial := contrib[0]
		for j := 1; j < len(lists); j++ {
			if (partial+rest[j])*(1+margin) < worst {
				d++
				continue next
			}
			l := lists[j]
			l.seek(d)
			if c := l.cur(); c != d {
				if c == end {
					return
				}
				d = c
				continue next
			}
			contrib[j], weights[j] = l.score()
			partial += contrib[j]
		}
		if out.admits(d) {
			out.offer(d)
		}
		d++
	}
}

// maxClassScan bounds the postings that rankClasses reads. Titles recur
// in many articles where one runbook has a version per cluster or site,
// and then the lists of classes are short. A variable for tests.
var maxClassScan = 4096

func postingsOf(lists []*list) int {
	n := 0
	for _, l := range lists {
		n += len(l.docs)
	}
	return n
}

// rankClasses ranks the classes that contain any term, as rankAny does,
// from lists that number classes. It scores every class in the lists
// and expands the classes best first, so that the best n fill with the
// articles of the best class and those of a worse class are offered
// only while they can enter. rankAny offers the classes in the order of
// their numbers, and each better class then pushes out the articles of
// the ones before it.
func rankClasses(lists []*list, out *sink) {
	// The order of rankAny, so that the scores sum alike.
	slices.SortStableFunc(lists, func(a, b *list) int { return cmp.Compare(a.max, b.max) })
	type scored struct {
		class uint32
		score float64
	}
	var found []scored
	contrib, weights := out.contrib, out.weights
	for {
		c := end
		for _, l := range lists {
			c = min(c, l.cur())
		}
		if c == end {
			break
		}
		for j, l := range lists {
			contrib[j], weights[j] = 0, 0
			if l.cur() == c {
				contrib[j], weights[j] = l.score()
				l.i++
			}
		}
		if out.admits(c) {
			found = append(found, scored{c, sum(contrib, len(lists))})
		}
	}
	slices.SortFunc(found, func(a, b scored) int { return cmp.Compare(b.score, a.score) })
	for _, f := range found {
		if out.full() && f.score < out.worst() {
			return
		}
		for j, l := range lists {
			contrib[j], weights[j] = 0, 0
			if i, ok := find(l.docs, f.class); ok {
				l.i = i
				contrib[j], weights[j] = l.score()
			}
		}
		out.offer(f.class)
	}
}

// sum adds the first n values in order. The lists keep one order for the
// whole query, so documents with the same weights get the same score.
func sum(v []float64, n int) float64 {
	s := 0.0
	for _, x := range v[:n] {
		s += x
	}
	return s
}

// rankAny ranks the documents that contain any term, by MaxScore. The
// lists are ordered by their highest score. Once the n-th best score
// exceeds what the lowest lists can add together, a document found only
// in those cannot enter. So only the other lists propose documents, and
// the low lists are probed for them.
func rankAny(lists []*list, out *sink) {
	slices.SortStableFunc(lists, func(a, b *list) int { return cmp.Compare(a.max, b.max) })
	// below[i] is the most that lists[:i] add to a score.
	below := make([]float64, len(lists)+1)
	for i, l := range lists {
		below[i+1] = below[i] + l.max
	}
	contrib, weights := out.contrib, out.weights
	essential := 0 // lists[essential:] propose documents
	for essential < len(lists) {
		d := end
		for _, l := range lists[essential:] {
			d = min(d, l.cur())
		}
		if d == end {
			return
		}
		score := 0.0
		for j := essential; j < len(lists); j++ {
			l := lists[j]
			contrib[j], weights[j] = 0, 0
			if l.cur() == d {
				contrib[j], weights[j] = l.score()
				score += contrib[j]
				l.i++
			}
		}
		if !out.admits(d) {
			continue
		}
		pruned := false
		for j := essential - 1; j >= 0; j-- {
			if out.full() && (score+below[j+1])*(1+margin) < out.worst() {
				pruned = true
				break
			}
			l := lists[j]
			l.seek(d)
			contrib[j], weights[j] = 0, 0
			if l.cur() == d {
				contrib[j], weights[j] = l.score()
				score += contrib[j]
			}
		}
		if pruned {
			continue
		}
		out.offer(d)
		if out.full() {
			for essential < len(lists) && below[essential+1]*(1+margin) < out.worst() {
				essential++
			}
		}
	}
}

// topN keeps the n best documents offered, by score and then by id.
// The worst of them is at the root of a heap.
type topN struct {
	ix   *Index
	n    int
	heap []Hit
}

func (t *topN) full() bool { return len(t.heap) == t.n }

func (t *topN) worst() *Hit { return &t.heap[0] }

// better reports whether a ranks before b.
func better(a, b *Hit) bool {
	return a.Score > b.Score || a.Score == b.Score && a.ID < b.ID
}

func (t *topN) offer(d uint32, score float64) {
	// The score decides most offers, without a read of the document.
	if t.full() && score < t.heap[0].Score {
		return
	}
	doc := &t.ix.docs[d]
	if t.full() {
		w := &t.heap[0]
		if score == w.Score && doc.id >= w.ID {
			return
		}
	}
	h := Hit{Ranked: fulltext.Ranked{Seq: doc.seq, ID: doc.id, Score: score}, Article: doc.article, MetadataFolds: doc.metaFolds}
	if !t.full() {
		t.heap = append(t.heap, h)
		t.up(len(t.heap) - 1)
		return
	}
	t.heap[0] = h
	t.down(0)
}

func (t *topN) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !better(&t.heap[p], &t.heap[i]) {
			return
		}
		t.heap[p], t.heap[i] = t.heap[i], t.heap[p]
		i = p
	}
}

func (t *topN) down(i int) {
	for {
		w := i
		for _, c := range []int{2*i + 1, 2*i + 2} {
			if c < len(t.heap) && better(&t.heap[w], &t.heap[c]) {
				w = c
			}
		}
		if w == i {
			return
		}
		t.heap[w], t.heap[i] = t.heap[i], t.heap[w]
		i = w
	}
}

// maxPresized bounds the capacity that a ranking allocates for its best
// n before it finds them, because a deep page may ask for a thousand.
const maxPresized = 64

// sorted returns the documents kept, best first, and spends t. It sorts
// the heap in place: each step swaps the worst to the end and shrinks the
// heap. Unlike slices.SortFunc, this compares hits through pointers
// instead of copying them.
func (t *topN) sorted() []Hit {
	out := t.heap
	for n := len(out) - 1; n > 0; n-- {
		out[0], out[n] = out[n], out[0]
		t.heap = out[:n]
		t.down(0)
	}
	t.heap = out
	return out
}

// Each calls fn with every current article that q matches and the
// filters accept, in no particular order, for facet counts. Unlike Rank
// it visits every match.
func (ix *Index) Each(q Query, fn func(a *knowledge.Article)) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ix.each(q, fn)
}

func (ix *Index) each(q Query, fn func(a *knowledge.Article)) {
	lists := ix.lists(q)
	if len(lists) == 0 {
		return
	}
	accept := ix.acceptor(q.Filters)
	visit := func(d uint32) {
		if ix.isAlive(d) && (accept == nil || accept(d)) {
			fn(ix.docs[d].article)
		}
	}
	if q.Head {
		// The lists number classes.
		visitDoc := visit
		visit = func(c uint32) {
			for _, d := range ix.classes[c].docs {
				visitDoc(d)
			}
		}
	}
	if q.Any {
		seen := make([]uint64, len(ix.alive))
		if q.Head {
			seen = make([]uint64, len(ix.classAlive))
		}
		for _, l := range lists {
			for _, d := range l.docs {
				if seen[d/64]&(1<<(d%64)) == 0 {
					seen[d/64] |= 1 << (d % 64)
					visit(d)
				}
			}
		}
		return
	}
	slices.SortFunc(lists, func(a, b *list) int { return cmp.Compare(len(a.docs), len(b.docs)) })
	d := uint32(0)
	for {
		next, ok := align(lists, d)
		if next == end {
			return
		}
		if ok {
			visit(d)
			next++
		}
		d = next
	}
}

// align moves every list to document d or past it. It returns d and true
// when all of them are at d. Otherwise it returns the document to try
// next and false, or end when a list has no more documents.
func align(lists []*list, d uint32) (uint32, bool) {
	for _, l := range lists {
		l.seek(d)
		if c := l.cur(); c != d {
			return c, false
		}
	}
	return d, true
}
