package api

import (
	"net/http"

	"github.com/khub-dev/khub/client"
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
	res, err := lookup.Run(r.Context(), s.hub.Store, principalFrom(r.Context()).scope(),
		lookup.Request{Text: in.Text, Attributes: in.Attributes, Limit: in.Limit})
	if err != nil {
		s.writeError(w, r, err)
		return
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
	if err := s.reviewLookupHits(r.Context(), out.Hits); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

// lookupBodyLimit bounds the body of a lookup, in bytes: the text limit,
// with room for JSON escapes of every character, and the attributes.
const lookupBodyLimit = 6*lookup.MaxTextLen + lookup.MaxAttributes*(8<<10)
