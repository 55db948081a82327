package client

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"time"
)

// CursorState is the response of GET and POST /v1/cursor.
type CursorState struct {
	// Cursor is the integration's pull cursor: the newest change-log
	// position that its tool has read from the feed or the stream, or
	// reported with POST /v1/cursor. It is 0 for the admin token.
	Cursor int64 `json:"cursor"`
	// Head is the cursor of the newest committed change, 0 when the log is
	// empty.
	Head int64 `json:"head"`
	// Oldest is the oldest cursor the change log still keeps, because
	// retention removes older entries. It is 0 when the log is empty.
	Oldest int64 `json:"oldest"`
}

// Cursor returns the caller's pull cursor and the bounds of the change
// log.
func (c *Client) Cursor(ctx context.Context) (CursorState, error) {
	var out CursorState
	_, err := c.do(ctx, http.MethodGet, "/v1/cursor", nil, nil, &out)
	return out, err
}

// ReportCursor reports to the hub that the tool's local copy of the
// integration's scope is up to date through cursor, so that the
// integration's freshness counts the changes up to it as received. It
// needs a pull token: the admin token gets a 403 error. A cursor beyond
// the newest change gets a 400 error with field "cursor". The pull cursor
// never moves back, so reporting an older cursor changes nothing.
func (c *Client) ReportCursor(ctx context.Context, cursor int64) (CursorState, error) {
	var out CursorState
	_, err := c.do(ctx, http.MethodPost, "/v1/cursor", nil, map[string]int64{"cursor": cursor}, &out)
	return out, err
}

// DefaultFeedWait is the long-poll wait of Feed and of a Syncer's feed
// fallback. It is half the hub's default maximum wait of 60s.
const DefaultFeedWait = 30 * time.Second

// Feed returns an iterator over the changes in the token's scope after a
// cursor, read from GET /v1/changes in pages of up to limit changes (1 to
// 1000; 0 takes the server's default of 100). Once it has read every
// change, it long-polls for the next ones, so it runs until ctx ends or
// the caller stops ranging. Reading the feed moves the integration's pull
// cursor, as every read of GET /v1/changes does.
//
// An error from the server or the network ends the iteration with that
// error. To go on, call Feed again with the cursor of the last change
// received. The one exception is a *ResyncRequiredError, which Feed yields when
// retention has removed entries after the cursor: the iteration then goes
// on with the oldest kept entry, and the caller should reload the
// articles in scope before it applies further changes.
func (c *Client) Feed(ctx context.Context, after int64, limit int) iter.Seq2[Change, error] {
	return func(yield func(Change, error) bool) {
		for {
			page, err := c.Changes(ctx, after, limit, DefaultFeedWait)
			if isResyncRequired(err) {
				state, cerr := c.Cursor(ctx)
				if cerr != nil {
					yield(Change{}, cerr)
					return
				}
				if !yield(Change{}, &ResyncRequiredError{After: after, Oldest: state.Oldest}) {
					return
				}
				after = max(after, state.Oldest-1)
				continue
			}
			if err != nil {
				if ctx.Err() != nil {
					err = ctx.Err()
				}
				yield(Change{}, err)
				return
			}
			for _, ch := range page.Changes {
				if !yield(ch, nil) {
					return
				}
			}
			after = max(after, page.Next)
		}
	}
}

// isResyncRequired reports whether err is the 410 of GET /v1/changes for a
// cursor behind the oldest kept entry.
func isResyncRequired(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusGone && e.Code == "resync_required"
}
