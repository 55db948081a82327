package api

import (
	"context"
	"net/http"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/lookup"
)

// lookup serves POST /v1/lookup: the articles within the caller's scope
// that best fit a ticket's text and attributes.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) {
	var in client.LookupRequest
	if err := decodeJSON(w, r, lookupBodyLimit, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	// The position must be read before the lookup, for the reason given
	// in the documentation of logPosition.
	position, err := s.logPosition(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cached, err := s.results.do(r.Context(), kindLookup, lookupKey(r, position, &in), position, func(ctx context.Context) (any, int64, error) {
		out, err := s.runLookup(ctx, principalFrom(ctx).scope(), &in)
		if err != nil {
			return nil, 0, err
		}
		return s.newLookupEntry(ctx, out)
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := cached.(*lookupEntry).render(s.now())
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, lookupResultJSON{&out})
}

// runLookup runs a lookup within scope and converts the result to its API
// form, without the review state of the hits.
func (s *Server) runLookup(ctx context.Context, scope []knowledge.Scope, in *client.LookupRequest) (client.LookupResult, error) {
	res, err := lookup.Run(ctx, s.hub.Store, scope, lookup.Request{Text: in.Text, Attributes: in.Attributes, Limit: in.Limit})
	if err != nil {
		return client.LookupResult{}, err
	}
	out := client.LookupResult{Hits: make([]client.LookupHit, len(res.Hits)), Terms: res.Terms}
	if out.Terms == nil {
		out.Terms = []string{}
	}
	for i, h := range res.Hits {
		out.Hits[i] = client.LookupHit{
			ID: h.ID, Title: h.Title, Collection: h.Collection, Class: string(h.Class), Status: string(h.Status),
			Version: h.Version, Snippet: h.Snippet, SnippetHTML: h.SnippetHTML, Score: h.Score, Reason: h.Reason,
			MatchedTerms: h.MatchedTerms, MatchedAttributes: h.MatchedAttributes,
			Deprecated: h.Deprecated, ReplacedBy: h.ReplacedBy,
		}
	}
	return out, nil
}

// lookupBodyLimit bounds the body of a lookup, in bytes: the text limit,
// with room for JSON escapes of every character, and the attributes.
const lookupBodyLimit = 6*lookup.MaxTextLen + lookup.MaxAttributes*(8<<10)
