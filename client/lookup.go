package client

import (
	"context"
	"net/http"
)

// LookupRequest is the body of POST /v1/lookup, which finds the articles
// that fit a piece of work, such as a new ticket.
type LookupRequest struct {
	// Text is the subject and description, subject first, of at most
	// 64 KiB.
	Text string `json:"text"`
	// Attributes are facts about the work, such as account, product,
	// service and severity, compared with the articles' metadata, tags
	// and titles. Keys are compared in lower case. At most 16 are
	// allowed, and without Text one must be other than severity,
	// priority, urgency and impact, which many articles share.
	Attributes map[string]string `json:"attributes,omitempty"`
	// Limit is the number of hits, 1 to 20, and 0 leaves the server's
	// default of 5.
	Limit int `json:"limit,omitempty"`
}

// LookupHit is one article that fits the work.
type LookupHit struct {
	ID         string `json:"id"`
	Title      string `json:"title"`
	Collection string `json:"collection"`
	Class      string `json:"class"`
	Status     string `json:"status"`
	Version    int64  `json:"version"`
	// Snippet and SnippetHTML follow SearchHit.
	Snippet     string `json:"snippet"`
	SnippetHTML string `json:"snippet_html"`
	// Score is text relevance from 0 to 1 plus a bonus per matching
	// attribute. It compares hits of one lookup only.
	Score float64 `json:"score"`
	// Reason is one line on why the article fits.
	Reason string `json:"reason"`
	// MatchedTerms are the words of the text found in the article, and
	// the values of topic attributes such as service and product.
	// MatchedAttributes are the attributes that matched, each as
	// "key=value (metadata)", "(tag)" or "(title)".
	MatchedTerms      []string `json:"matched_terms,omitempty"`
	MatchedAttributes []string `json:"matched_attributes,omitempty"`
	// Deprecated is true for an article with status deprecated. It never
	// comes first when the lookup found a current article: its replacement,
	// ReplacedBy, or the best current article goes before it.
	Deprecated bool   `json:"deprecated"`
	ReplacedBy string `json:"replaced_by,omitempty"`
	// Owner and ReviewOverdue follow SearchHit.
	Owner         string `json:"owner,omitempty"`
	ReviewOverdue bool   `json:"review_overdue,omitempty"`
}

// LookupResult is the response body of POST /v1/lookup.
type LookupResult struct {
	Hits []LookupHit `json:"hits"`
	// Terms are the words of the text that were searched, best first.
	Terms []string `json:"terms"`
}

// Lookup returns the articles within the token's scope that best fit the
// text and attributes of a piece of work.
func (c *Client) Lookup(ctx context.Context, req LookupRequest) (LookupResult, error) {
	var out LookupResult
	_, err := c.do(ctx, http.MethodPost, "/v1/lookup", nil, req, &out)
	return out, err
}
