package api

import (
	"context"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// now returns the hub's clock in UTC.
func (s *Server) now() time.Time {
	if s.hub.Now != nil {
		return s.hub.Now().UTC()
	}
	return time.Now().UTC()
}

// currentArticle renders the current version of an article with its
// review state as of now. Older versions go through toClientArticle alone,
// because a later version is a review and their due times no longer apply.
func currentArticle(a *knowledge.Article, now time.Time) client.Article {
	out := toClientArticle(a)
	out.ReviewDue = a.ReviewDue()
	out.ReviewOverdue = a.ReviewOverdue(now)
	return out
}

// reviewHits sets Owner and ReviewOverdue on search hits.
func (s *Server) reviewHits(ctx context.Context, hits []client.SearchHit) error {
	keys := make([]store.VersionKey, len(hits))
	for i, h := range hits {
		keys[i] = store.VersionKey{ArticleID: h.ID, Version: h.Version}
	}
	return s.applyReviews(ctx, keys, func(i int, owner string, overdue bool) {
		hits[i].Owner, hits[i].ReviewOverdue = owner, overdue
	})
}

// reviewLookupHits sets Owner and ReviewOverdue on lookup hits.
func (s *Server) reviewLookupHits(ctx context.Context, hits []client.LookupHit) error {
	keys := make([]store.VersionKey, len(hits))
	for i, h := range hits {
		keys[i] = store.VersionKey{ArticleID: h.ID, Version: h.Version}
	}
	return s.applyReviews(ctx, keys, func(i int, owner string, overdue bool) {
		hits[i].Owner, hits[i].ReviewOverdue = owner, overdue
	})
}

// applyReviews reads the current versions of the articles that keys name,
// in one query, and calls set with the owner and review state of each key
// in order. The current version counts, not the one keyed, because a
// later version is a review. A key whose version is no longer stored gets
// no call.
func (s *Server) applyReviews(ctx context.Context, keys []store.VersionKey, set func(i int, owner string, overdue bool)) error {
	if len(keys) == 0 {
		return nil
	}
	infos, err := s.hub.Store.DescribeVersions(ctx, keys)
	if err != nil {
		return err
	}
	now := s.now()
	for i, k := range keys {
		if info, ok := infos[k]; ok {
			set(i, info.Current.Owner, info.Current.ReviewOverdue(now))
		}
	}
	return nil
}
