package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// CountChanges implements store.Store. The changes table has no index on
// time, so the count reads the whole log. That is acceptable for planning,
// which runs once per integration of a plan.
func (s *Store) CountChanges(ctx context.Context, scope knowledge.Scope, since time.Time) ([]store.ChangeTally, error) {
	var args queryArgs
	where := scopeFilter([]string{"true"}, &args, scope)
	if !since.IsZero() {
		where = append(where, "c.time >= "+args.add(since.UTC()))
	}
	rows, err := s.pool.Query(ctx, `SELECT v.class, c.type, count(*) FROM `+changeJoin+`
		WHERE `+strings.Join(where, " AND ")+` GROUP BY v.class, c.type`, args...)
	if err != nil {
		return nil, mapError(err)
	}
	defer rows.Close()
	out := []store.ChangeTally{}
	for rows.Next() {
		var class, changeType string
		var n int64
		if err := rows.Scan(&class, &changeType, &n); err != nil {
			return nil, mapError(err)
		}
		out = append(out, store.ChangeTally{Class: knowledge.Class(class), Type: knowledge.ChangeType(changeType), Count: n})
	}
	return out, mapError(rows.Err())
}
