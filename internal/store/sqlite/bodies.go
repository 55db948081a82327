package sqlite

import (
	"context"
	"math"

	"github.com/maypok86/otter/v2"

	"github.com/khub-dev/khub/internal/store/fulltext"
)

// DefaultBodyCacheBytes bounds the body cache when Options.BodyCacheBytes
// is 0: about 25,000 bodies of 2.5 KB.
const DefaultBodyCacheBytes = 64 << 20

// bodyOverhead is the memory an entry of the body cache takes besides the
// body's bytes, in bytes: its key, string header and the cache's node.
const bodyOverhead = 64

// newBodyCache returns the cache of article bodies by version (seq), or
// nil when maxBytes is negative. A version never changes, so an entry
// never goes stale; it only makes room for more recently shown ones.
func newBodyCache(maxBytes int64) *otter.Cache[int64, string] {
	if maxBytes < 0 {
		return nil
	}
	if maxBytes == 0 {
		maxBytes = DefaultBodyCacheBytes
	}
	return otter.Must(&otter.Options[int64, string]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(_ int64, body string) uint32 {
			return uint32(min(len(body)+bodyOverhead, math.MaxUint32))
		},
	})
}

// readBodies returns the body of each version of the page, by seq: from
// the body cache where it holds one, and otherwise from the database in
// one query, after which the cache holds them.
func (s *Store) readBodies(ctx context.Context, page []fulltext.Ranked) (map[int64]string, error) {
	bodies := make(map[int64]string, len(page))
	var missing []any
	for _, r := range page {
		if s.bodies != nil {
			if body, ok := s.bodies.GetIfPresent(r.Seq); ok {
				bodies[r.Seq] = body
				continue
			}
		}
		missing = append(missing, r.Seq)
	}
	if len(missing) == 0 {
		return bodies, nil
	}
	err := s.read(ctx, func(tx *txn) error {
		rows, err := tx.QueryContext(ctx, `SELECT seq, body FROM article_versions WHERE seq IN (`+placeholders(len(missing))+`)`, missing...)
		if err != nil {
			return mapError(err)
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			var body string
			if err := rows.Scan(&seq, &body); err != nil {
				return mapError(err)
			}
			bodies[seq] = body
			if s.bodies != nil {
				s.bodies.Set(seq, body)
			}
		}
		return mapError(rows.Err())
	})
	if err != nil {
		return nil, err
	}
	return bodies, nil
}
