package fulltext

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"

	"github.com/khub-dev/khub/internal/knowledge"
)

// Paging limits.
const (
	// MaxDepth is the number of hits that cursors page through. Each page
	// ranks the query again down to its own position, so deep pages cost
	// more, and past this depth a narrower query serves the caller better.
	MaxDepth = 1000
	// tailLen is the number of last returned hits whose hashes a cursor
	// keeps to repair a page boundary; see NextPage.
	tailLen = 8
)

// cursorVersion starts every encoded cursor, so that a later format can
// tell old cursors apart. Version 2 added Seq. A hub that reads only
// version 1 then rejects a newer cursor instead of reading its Seq as
// part of the ID.
const cursorVersion = 2

// ErrBadCursor is wrapped by the errors of DecodeCursor and CheckCursor.
var ErrBadCursor = errors.New("invalid cursor")

// Ranked is one hit of a ranking.
type Ranked struct {
	Seq   int64 // the back-end's row of the article version
	ID    string
	Score float64
}

// Cursor is the position at which the next page of a search starts.
// Clients see it only encoded, as an opaque string.
type Cursor struct {
	// Key is the hash of the query and filters that the cursor pages,
	// from CursorKey.
	Key uint64
	// Any records that the first page matched any term, because no article
	// had all of them, so later pages match the same way.
	Any bool
	// List marks a listing without search text, newest first, which pages
	// by keyset on (Updated, ID) instead.
	List    bool
	Updated int64 // Unix nanoseconds of the last hit, for List
	// Offset is the number of hits returned so far, Seen the XOR of the
	// hashes of their ids, and Tail the hashes of the last few of them.
	Offset int
	Seen   uint64
	Tail   []uint64
	// Score and ID are those of the last hit, and Seq is the row of its
	// version (Ranked.Seq), or 0 in version 1 cursors, which lack it.
	Score float64
	ID    string
	Seq   int64
}

// CursorKey returns the key that binds a cursor to a query and its
// filters.
func CursorKey(q Query, filters []knowledge.Scope) uint64 {
	h := fnv.New64a()
	h.Write([]byte(q.Key()))
	// encoding/json writes map keys sorted, so equal filters encode alike.
	f, _ := json.Marshal(filters)
	h.Write(f)
	return h.Sum64()
}

// CheckCursor returns an error when c belongs to another query or
// filters than key.
func CheckCursor(c *Cursor, key uint64, list bool) error {
	if c.Key != key || c.List != list {
		return fmt.Errorf("%w: the cursor belongs to another query or other filters: send the same text and filters as for the first page, or leave the cursor out to start again", ErrBadCursor)
	}
	return nil
}

func idHash(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// Encode returns the cursor as URL-safe base64 without padding.
func (c *Cursor) Encode() string {
	b := []byte{cursorVersion, 0}
	if c.Any {
		b[1] |= 1
	}
	if c.List {
		b[1] |= 2
	}
	b = binary.BigEndian.AppendUint64(b, c.Key)
	b = binary.AppendUvarint(b, uint64(c.Offset))
	b = binary.BigEndian.AppendUint64(b, c.Seen)
	b = append(b, byte(len(c.Tail)))
	for _, t := range c.Tail {
		b = binary.BigEndian.AppendUint64(b, t)
	}
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(c.Score))
	b = binary.AppendVarint(b, c.Updated)
	b = binary.AppendVarint(b, c.Seq)
	b = append(b, c.ID...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor written by Encode.
func DecodeCursor(s string) (*Cursor, error) {
	bad := fmt.Errorf("%w: %.40q is not a cursor of this hub: send the next value of the previous page unchanged", ErrBadCursor, s)
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != 1 && b[0] != cursorVersion {
		return nil, bad
	}
	version := b[0]
	c := &Cursor{Any: b[1]&1 != 0, List: b[1]&2 != 0}
	b = b[2:]
	u64 := func() (uint64, bool) {
		if len(b) < 8 {
			return 0, false
		}
		v := binary.BigEndian.Uint64(b)
		b = b[8:]
		return v, true
	}

	var ok bool
	if c.Key, ok = u64(); !ok {
		return nil, bad
	}
	off, n := binary.Uvarint(b)
	if n <= 0 || off > MaxDepth {
		return nil, bad
	}
	c.Offset = int(off)
	b = b[n:]
	if c.Seen, ok = u64(); !ok || len(b) < 1 {
		return nil, bad
	}

	tail := int(b[0])
	b = b[1:]
	if tail > tailLen {
		return nil, bad
	}
	for range tail {
		t, ok := u64()
		if !ok {
			return nil, bad
		}
		c.Tail = append(c.Tail, t)
	}

	score, ok := u64()
	if !ok {
		return nil, bad
	}
	c.Score = math.Float64frombits(score)
	if c.Updated, n = binary.Varint(b); n <= 0 {
		return nil, bad
	}
	b = b[n:]
	if version >= 2 {
		if c.Seq, n = binary.Varint(b); n <= 0 {
			return nil, bad
		}
		b = b[n:]
	}
	c.ID = string(b)
	return c, nil
}

// Need returns how many hits of the ranking NextPage needs to pick the page
// of limit hits after c, which is nil for the first page. They are the hits
// before the page, the page, the hits that a repaired boundary can shift,
// and one more to tell whether another page follows. A first page has no
// boundary to repair, yet it requests as many. SQLite's FTS5 ranking
// leaves out common terms only when the rest find as many hits as
// requested (see rankQuery in the sqlite package), so a smaller request
// would change which hits a first page shows.
func Need(c *Cursor, limit int) int {
	off := 0
	if c != nil {
		off = c.Offset
	}
	return off + limit + tailLen + 1
}

// NextPage picks the page of at most limit hits after cursor c from the
// ranking. The ranking contains the query's current hits, best first, and at
// least Need(c, limit) of them when there are that many. NextPage returns
// the page and the cursor of the page after it, or nil on the last page.
// key and anyTerm go into the new cursor.
//
// Why pages neither repeat nor skip a hit when unrelated articles change
// between them: a cursor records how many hits were returned (Offset) and
// which (Seen, an order-independent XOR of their id hashes). The next page
// ranks the query again. Writing an article that the query does not match
// leaves the set of matches unchanged, so when the first Offset hits of the
// new ranking are exactly the returned set, which Seen confirms, every hit
// after them is new and every new hit is after them: the page continues
// the previous one exactly. Ranking by ts_rank_cd depends on nothing but
// the article, so on PostgreSQL that check always passes. SQLite's BM25
// also depends on the number and average length of all articles, so an
// unrelated write can move scores slightly and swap two nearly tied hits
// across the page boundary. The cursor therefore also keeps the hashes of
// the last returned hits (Tail): the page drops those from the new ranking
// and checks that the hits before the boundary are the rest of the
// returned set, which repairs such a swap exactly. Both checks fail when
// articles that the query matches were changed, added or removed between
// pages. They also fail when unrelated writes move every score far. That
// happens when many long articles arrive while nearly every article
// contains the searched word, whose weight then leaves its floor. The
// page then continues after a returned hit's place in the new ranking
// (see anchor), and otherwise after the last hit's (score, id). It leaves
// out the tail and may repeat or miss one of the changed hits. A matching
// article added between pages may appear on a later page, or not at all
// when it ranks above the pages read.
//
// NOTE: after every score moved, hits that changed places with the last
// one are repeated or missed. Ranking later pages with the statistics of
// the first would keep their order.
func NextPage(ranking []Ranked, c *Cursor, limit int, key uint64, anyTerm bool) ([]Ranked, *Cursor) {
	rest := ranking
	var seen uint64
	var tail []uint64
	offset := 0
	if c != nil {
		offset, seen, tail = c.Offset, c.Seen, c.Tail
		rest = continueAfter(ranking, c, limit)
	}
	page := rest[:min(limit, len(rest))]
	// A later page's ranking of Need hits may stop short of the end, so
	// a short page there is not the last: the next ranks deeper.
	cut := c != nil && len(ranking) >= Need(c, limit)
	if len(page) == 0 || len(rest) <= limit && !cut || offset+len(page) >= MaxDepth {
		return page, nil
	}
	next := &Cursor{Key: key, Any: anyTerm, Offset: offset + len(page), Seen: seen}
	tail = append([]uint64(nil), tail...)
	for _, h := range page {
		hash := idHash(h.ID)
		next.Seen ^= hash
		tail = append(tail, hash)
	}
	next.Tail = tail[max(0, len(tail)-tailLen):]
	last := page[len(page)-1]
	next.Score, next.ID, next.Seq = last.Score, last.ID, last.Seq
	return page, next
}

// continueAfter returns the hits of the ranking that c has not returned,
// in ranking order; see NextPage.
func continueAfter(ranking []Ranked, c *Cursor, limit int) []Ranked {
	if c.Offset <= len(ranking) && xorIDs(ranking[:c.Offset]) == c.Seen {
		return ranking[c.Offset:]
	}
	inTail := func(r Ranked) bool {
		h := idHash(r.ID)
		for _, t := range c.Tail {
			if t == h {
				return true
			}
		}
		return false
	}
	var rest []Ranked
	target := c.Seen
	for _, t := range c.Tail {
		target ^= t
	}
	for _, r := range ranking {
		if !inTail(r) {
			rest = append(rest, r)
		}
	}
	if k := c.Offset - len(c.Tail); k >= 0 && k <= len(rest) && xorIDs(rest[:k]) == target {
		return rest[k:]
	}
	if at := anchor(ranking, c); at >= 0 {
		var after []Ranked
		for _, r := range ranking[at+1:] {
			if !inTail(r) {
				after = append(after, r)
			}
		}
		if len(after) > 0 || len(ranking) < Need(c, limit) {
			return after
		}
	}
	var after []Ranked
	for _, r := range rest {
		if r.Score < c.Score || r.Score == c.Score && r.ID > c.ID {
			after = append(after, r)
		}
	}
	return after
}

// anchor returns the place in the ranking of the hit that a page
// continues after when the cursor's checks fail, or -1 to continue after
// the cursor's score. A returned hit's place remains valid when writes
// moved every score, which makes the cursor's score useless. The last hit
// anchors when its version row is unchanged. When it changed, the latest
// other hit of the tail that is still ranked is used instead. Version 1
// cursors, written without the row, keep the score.
func anchor(ranking []Ranked, c *Cursor) int {
	if c.Seq == 0 {
		return -1
	}
	if at := slices.IndexFunc(ranking, func(r Ranked) bool { return r.Seq == c.Seq && r.ID == c.ID }); at >= 0 {
		return at
	}
	hashes := make([]uint64, len(ranking))
	for i, r := range ranking {
		hashes[i] = idHash(r.ID)
	}
	last := idHash(c.ID)
	for i := len(c.Tail) - 1; i >= 0; i-- {
		if c.Tail[i] == last {
			continue
		}
		if at := slices.Index(hashes, c.Tail[i]); at >= 0 {
			return at
		}
	}
	return -1
}

func xorIDs(rs []Ranked) uint64 {
	var x uint64
	for _, r := range rs {
		x ^= idHash(r.ID)
	}
	return x
}
