package api

import (
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/knowledge"
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
