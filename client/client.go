// Package client is the Go client of the khub API: article writes and
// integration management with the admin token, and pull calls (get, search,
// change feed) with an integration's pull token. It also verifies khub's
// signed webhooks on the receiving side.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls one khub server. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	http  *http.Client
	// reportsCursor adds record=false to feed and stream reads, for a
	// Syncer, which reports the cursor it applied with ReportCursor.
	reportsCursor bool
}

// New returns a client for the server at base (such as
// "http://127.0.0.1:8080") that authenticates with token.
func New(base, token string) *Client {
	return &Client{
		base:  strings.TrimRight(base, "/"),
		token: token,
		// Long polls set their own deadline through the context. This bound
		// only stops a hung connection from blocking forever.
		http: &http.Client{Timeout: 5 * time.Minute, CheckRedirect: rejectRedirect},
	}
}

// rejectRedirect stops every redirect. net/http would send the token on
// to another port of the same host, or from https to http, and a redirect
// turns a POST into a GET, which the hub then refuses with a puzzling 405.
func rejectRedirect(req *http.Request, via []*http.Request) error {
	return &redirectError{from: via[len(via)-1].URL.Redacted(), to: req.URL.Redacted()}
}

// redirectError is a redirect that the client rejected. Its message names
// both ends without their passwords; the *url.Error that net/http wraps
// around it would print the target in full.
type redirectError struct{ from, to string }

func (e *redirectError) Error() string {
	return fmt.Sprintf("%s redirected to %s, and the client does not follow redirects, so that the token goes only to the server it was given: use the hub's own address", e.from, e.to)
}

// Error is a non-2xx response from the server.
type Error struct {
	StatusCode int
	Code       string
	Field      string
	Message    string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("khub: %d %s: %s (field %s)", e.StatusCode, e.Code, e.Message, e.Field)
	}
	return fmt.Sprintf("khub: %d %s: %s", e.StatusCode, e.Code, e.Message)
}

// IsNotFound reports whether err is a 404 from the server.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// do sends a request with an optional JSON body and decodes a JSON response
// into out when out is not nil. It returns the response headers.
func (c *Client) do(ctx context.Context, method, path string, header http.Header, in, out any) (*http.Response, error) {
	// url.PathEscape leaves an id of "." or ".." as it is, and the hub
	// would respond with a redirect to the cleaned path.
	route, _, _ := strings.Cut(path, "?")
	for seg := range strings.SplitSeq(route, "/") {
		if seg == "." || seg == ".." {
			return nil, fmt.Errorf("khub: the id %q in %s %s is invalid: ids start with a letter or digit", seg, method, route)
		}
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if re := (*redirectError)(nil); errors.As(err, &re) {
		return nil, re
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return resp, nil
	}
	if resp.StatusCode >= 300 {
		return resp, decodeError(resp)
	}
	if out != nil {
		if err := notJSON(resp); err != nil {
			return resp, err
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp, fmt.Errorf("decode %s %s response: %w", method, path, err)
		}
	}
	return resp, nil
}

// notJSON returns an error when a response is not JSON, as when the base
// URL points at another server or at a page of the hub's dashboard.
func notJSON(resp *http.Response) error {
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return nil
	}
	return fmt.Errorf("%s returned status %d with Content-Type %q, not the JSON of the khub API: check that the server address is a khub hub, such as http://127.0.0.1:8080", resp.Request.URL.Redacted(), resp.StatusCode, ct)
}

func decodeError(resp *http.Response) error {
	e := &Error{StatusCode: resp.StatusCode, Code: strings.ToLower(strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "_"))}
	var body ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case json.Unmarshal(b, &body) == nil && body.Error.Message != "":
		e.Code, e.Field, e.Message = body.Error.Code, body.Error.Field, body.Error.Message
	case notJSON(resp) != nil && (len(b) > 200 || strings.Contains(resp.Header.Get("Content-Type"), "html")):
		// Another server's error page, such as a proxy's login page, would
		// read as the hub's own error.
		e.Message = notJSON(resp).Error()
	default:
		e.Message = strings.TrimSpace(string(b))
	}
	return e
}

// Health returns nil when the server reports ready.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
	return err
}

// PutArticle creates or updates the article with a.ID and reports whether
// it was created, updated or unchanged.
func (c *Client) PutArticle(ctx context.Context, a Article) (Article, string, error) {
	var out Article
	resp, err := c.do(ctx, http.MethodPut, "/v1/articles/"+url.PathEscape(a.ID), nil, a, &out)
	if err != nil {
		return out, "", err
	}
	return out, resp.Header.Get("Khub-Change"), nil
}

// UpdateArticle writes a only if the current version is ifVersion.
func (c *Client) UpdateArticle(ctx context.Context, a Article, ifVersion int64) (Article, error) {
	var out Article
	h := http.Header{"If-Match": {`"v` + strconv.FormatInt(ifVersion, 10) + `"`}}
	_, err := c.do(ctx, http.MethodPut, "/v1/articles/"+url.PathEscape(a.ID), h, a, &out)
	return out, err
}

// CreateArticle creates a new article. The server assigns an id when
// a.ID is empty.
func (c *Client) CreateArticle(ctx context.Context, a Article) (Article, error) {
	var out Article
	_, err := c.do(ctx, http.MethodPost, "/v1/articles", nil, a, &out)
	return out, err
}

// GetArticle returns the current version of an article.
func (c *Client) GetArticle(ctx context.Context, id string) (Article, error) {
	var out Article
	_, err := c.do(ctx, http.MethodGet, "/v1/articles/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// ArchiveArticle archives an article.
func (c *Client) ArchiveArticle(ctx context.Context, id string) (Article, error) {
	var out Article
	_, err := c.do(ctx, http.MethodDelete, "/v1/articles/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// SearchOptions narrow a search. Metadata filters must all match.
type SearchOptions struct {
	Classes     []string
	Tags        []string
	Collections []string
	Metadata    map[string]string
	// Limit is the number of hits, 1 to 100, and 0 leaves the server's
	// default of 20. Other values are sent as given, so the server rejects them.
	Limit int
	// Cursor is the Next of the previous page of the same search. Leave it
	// empty for the first page.
	Cursor string
	// Facets requests counts of all matches by class, collection and tag.
	Facets bool
}

// Search runs a full-text search within the token's scope.
func (c *Client) Search(ctx context.Context, q string, opts SearchOptions) (SearchResult, error) {
	v := url.Values{}
	v.Set("q", q)
	for _, x := range opts.Classes {
		v.Add("class", x)
	}
	for _, x := range opts.Tags {
		v.Add("tag", x)
	}
	for _, x := range opts.Collections {
		v.Add("collection", x)
	}
	for k, x := range opts.Metadata {
		v.Set("meta."+k, x)
	}
	if opts.Limit != 0 {
		v.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Cursor != "" {
		v.Set("cursor", opts.Cursor)
	}
	if opts.Facets {
		v.Set("facets", "true")
	}
	var out SearchResult
	_, err := c.do(ctx, http.MethodGet, "/v1/search?"+v.Encode(), nil, nil, &out)
	return out, err
}

// responseMargin is how long a call of the change feed, or of a Syncer, may
// take beyond its wait before the client gives up on it. A network
// partition can leave a connection open without a byte until the HTTP
// client's own timeout of 5 minutes, and a syncer should fall back or
// retry long before that. A variable for tests.
var responseMargin = 30 * time.Second

// Changes reads the change feed after a cursor. A positive wait holds the
// call open until a change arrives or the wait ends (at most 60s). A call
// without a response 30s after its wait fails.
func (c *Client) Changes(ctx context.Context, after int64, limit int, wait time.Duration) (ChangesPage, error) {
	ctx, cancel := context.WithTimeout(ctx, max(wait, 0)+responseMargin)
	defer cancel()
	v := url.Values{}
	v.Set("after", strconv.FormatInt(after, 10))
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	if wait > 0 {
		v.Set("wait", wait.String())
	}
	if c.reportsCursor {
		v.Set("record", "false")
	}
	var out ChangesPage
	_, err := c.do(ctx, http.MethodGet, "/v1/changes?"+v.Encode(), nil, nil, &out)
	return out, err
}

// CreateIntegration creates an integration. The response carries the webhook
// secret and pull token, which later reads do not show.
func (c *Client) CreateIntegration(ctx context.Context, req IntegrationRequest) (Integration, error) {
	var out Integration
	_, err := c.do(ctx, http.MethodPost, "/v1/integrations", nil, req, &out)
	return out, err
}

// GetIntegration returns one integration with its current freshness.
func (c *Client) GetIntegration(ctx context.Context, id string) (Integration, error) {
	var out Integration
	_, err := c.do(ctx, http.MethodGet, "/v1/integrations/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// ListIntegrations returns every integration.
func (c *Client) ListIntegrations(ctx context.Context) ([]Integration, error) {
	var out IntegrationList
	_, err := c.do(ctx, http.MethodGet, "/v1/integrations", nil, nil, &out)
	return out.Integrations, err
}

// DeleteIntegration removes an integration and its delivery history.
func (c *Client) DeleteIntegration(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/integrations/"+url.PathEscape(id), nil, nil, nil)
	return err
}

// Deliveries returns the newest delivery attempts of an integration.
func (c *Client) Deliveries(ctx context.Context, id string, limit int) ([]Delivery, error) {
	return c.QueryDeliveries(ctx, id, DeliveryQuery{Limit: limit})
}

// DeliveryQuery selects delivery attempts. Zero fields match everything.
type DeliveryQuery struct {
	// Status is delivered, retrying or failed.
	Status    string
	ArticleID string
	// Since and Until bound the attempts' start times: Since <= start <
	// Until.
	Since, Until time.Time
	// Limit is the number of attempts, 1 to 1000, and 0 leaves the
	// server's default of 50.
	Limit int
}

// QueryDeliveries returns the delivery attempts of an integration that
// match q, newest first.
func (c *Client) QueryDeliveries(ctx context.Context, id string, q DeliveryQuery) ([]Delivery, error) {
	v := url.Values{}
	if q.Status != "" {
		v.Set("status", q.Status)
	}
	if q.ArticleID != "" {
		v.Set("article", q.ArticleID)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.Format(time.RFC3339Nano))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := integrationPath(id, "deliveries")
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out DeliveryList
	_, err := c.do(ctx, http.MethodGet, path, nil, nil, &out)
	return out.Deliveries, err
}

// ResumeIntegration makes a paused or disabled push or hybrid integration
// send webhooks again, starting with the change that waited, and returns
// the integration. The hub's dispatcher notices within a few seconds. A
// pull integration gives a 409 error.
func (c *Client) ResumeIntegration(ctx context.Context, id string) (Integration, error) {
	var out Integration
	_, err := c.do(ctx, http.MethodPost, integrationPath(id, "resume"), nil, struct{}{}, &out)
	return out, err
}

// RotateSecret gives a push or hybrid integration a new webhook secret and
// returns it. Later reads never show it. Until the overlap ends, requests
// carry signatures under both the new and the old secret, so the tool can
// switch at any time within it.
func (c *Client) RotateSecret(ctx context.Context, id string, req RotateSecretRequest) (RotatedSecret, error) {
	var out RotatedSecret
	_, err := c.do(ctx, http.MethodPost, integrationPath(id, "rotate-secret"), nil, req, &out)
	return out, err
}

// Replay sends a range of an integration's changes again, with their
// original webhook-ids, so receivers that drop duplicates keep one copy.
// It returns once the replay has started. A range with nothing sent yet
// gives a 409 error.
func (c *Client) Replay(ctx context.Context, id string, req ReplayRequest) (ReplayStarted, error) {
	var out ReplayStarted
	_, err := c.do(ctx, http.MethodPost, integrationPath(id, "replay"), nil, req, &out)
	return out, err
}

func integrationPath(id, action string) string {
	return "/v1/integrations/" + url.PathEscape(id) + "/" + action
}

// BaseURL returns the server URL the client calls.
func (c *Client) BaseURL() string { return c.base }

// Token returns the token the client sends.
func (c *Client) Token() string { return c.token }
