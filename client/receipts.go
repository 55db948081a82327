package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// MaxReceipts is the largest number of receipts in one call of Receipts.
const MaxReceipts = 1000

// Receipt is a tool's confirmation that it applied one version of an
// article.
type Receipt struct {
	ArticleID string `json:"article_id"`
	Version   int64  `json:"version"`
}

// ReceiptRequest is the body of POST /v1/receipts: either ArticleID and
// Version for one receipt, or Receipts for up to MaxReceipts.
// IntegrationID names the integration when the admin token sends the
// request, and must be empty or the token's own integration with a pull
// token.
type ReceiptRequest struct {
	IntegrationID string    `json:"integration_id,omitempty"`
	ArticleID     string    `json:"article_id,omitempty"`
	Version       int64     `json:"version,omitempty"`
	Receipts      []Receipt `json:"receipts,omitempty"`
}

// ReceiptResult is the response to POST /v1/receipts.
type ReceiptResult struct {
	IntegrationID string `json:"integration_id"`
	// Recorded is the number of receipts in the request. For each article
	// the hub keeps the highest version confirmed, so a receipt for an
	// older version than a stored one changes only ReceivedAt.
	Recorded   int       `json:"recorded"`
	ReceivedAt time.Time `json:"received_at"`
}

// Applied is an integration's receipts in figures, shown beside the
// delivery cursors of the integration.
type Applied struct {
	// Articles is the number of articles with a receipt.
	Articles int64 `json:"articles"`
	// Behind is the number of articles with a receipt whose current
	// version is inside the integration's scope and higher than the
	// version applied. Articles without a receipt are not counted. The
	// count stops at 10000, and BehindCapped is true when more are behind.
	Behind        int64      `json:"behind"`
	BehindCapped  bool       `json:"behind_capped,omitempty"`
	LastReceiptAt *time.Time `json:"last_receipt_at,omitempty"`
}

// AppliedArticle is how far one article has reached an integration's
// tool, the response of GET /v1/integrations/{id}/applied?article=ID.
// Versions are 0 when there is none.
type AppliedArticle struct {
	IntegrationID string `json:"integration_id"`
	ArticleID     string `json:"article_id"`
	// InScope is whether the current version is inside the integration's
	// scope.
	InScope        bool  `json:"in_scope"`
	CurrentVersion int64 `json:"current_version"`
	// DeliveredVersion is the highest version the tool received: pushed
	// with a 2xx response, or read from the change feed.
	DeliveredVersion int64 `json:"delivered_version"`
	// AppliedVersion is the highest version the tool confirmed with a
	// receipt, and AppliedAt when that receipt arrived.
	AppliedVersion int64      `json:"applied_version"`
	AppliedAt      *time.Time `json:"applied_at,omitempty"`
	// Behind is true when the article is in scope and the applied version
	// is below the current one, including when no receipt arrived.
	Behind bool `json:"behind"`
}

// Receipt confirms with the integration's pull token that the tool
// applied version of the article. The hub returns 404 for a version that
// does not exist or lies outside the integration's scope.
func (c *Client) Receipt(ctx context.Context, articleID string, version int64) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/receipts", nil, ReceiptRequest{ArticleID: articleID, Version: version}, nil)
	return err
}

// Receipts confirms up to MaxReceipts applied versions in one request.
// The hub records all of them or, when one names a version that does not
// exist or lies outside the scope, none. An empty list sends nothing.
func (c *Client) Receipts(ctx context.Context, receipts []Receipt) error {
	if len(receipts) == 0 {
		return nil
	}
	_, err := c.do(ctx, http.MethodPost, "/v1/receipts", nil, ReceiptRequest{Receipts: receipts}, nil)
	return err
}

// AppliedArticle returns, with the admin token, the current, delivered and
// applied versions of an article for an integration.
func (c *Client) AppliedArticle(ctx context.Context, integrationID, articleID string) (AppliedArticle, error) {
	var out AppliedArticle
	path := integrationPath(integrationID, "applied") + "?" + url.Values{"article": {articleID}}.Encode()
	_, err := c.do(ctx, http.MethodGet, path, nil, nil, &out)
	return out, err
}
