package push

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// backoffDelay returns the wait after the given number of failed attempts
// (1 or more): a random duration in [0, ceiling) with ceiling =
// initial·2^(failed-1) capped at maxDelay ("full jitter"). random is in
// [0, 1).
//
// It is a pure function of the attempt number, and not
// backoff.ExponentialBackOff from github.com/cenkalti/backoff/v5, because
// the attempt number is persisted and a restarted hub resumes the schedule
// from it. That type keeps its interval in unexported state, draws from
// the global random source, and jitters around the interval rather than
// from zero.
func backoffDelay(failed int, initial, maxDelay time.Duration, random float64) time.Duration {
	ceiling := maxDelay
	// Beyond 62 doublings the shift overflows; the cap applies long before.
	if failed >= 1 && failed <= 62 {
		if grown := initial << (failed - 1); grown > 0 && grown < maxDelay && grown>>(failed-1) == initial {
			ceiling = grown
		}
	}
	return time.Duration(random * float64(ceiling))
}

// parseRetryAfter reads a Retry-After header value, either delay seconds
// or an HTTP date, as a duration from now. It reports false for a missing
// or invalid value.
func parseRetryAfter(value string, now time.Time) (time.Duration, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if seconds, err := strconv.ParseInt(value, 10, 64); err == nil {
		if seconds < 0 {
			return 0, false
		}
		if seconds > math.MaxInt64/int64(time.Second) {
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(seconds) * time.Second, true
	}
	if at, err := http.ParseTime(value); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

// retryableStatus reports whether a non-2xx status is worth another
// attempt: request timeout, rate limiting and server errors. Redirects and
// other client errors fail the change at once, because sending the same
// request again gets the same response.
func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// statusText describes a non-2xx response for the attempt record.
func statusText(code int) string {
	text := fmt.Sprintf("HTTP %d %s", code, http.StatusText(code))
	if code >= 300 && code < 400 {
		text += ": redirects are not followed, so set the webhook URL to the final address"
	}
	return strings.TrimSpace(text)
}

// transportErrorText describes a failed request without the request URL,
// whose path or query string may carry a token.
func transportErrorText(err error, timeout time.Duration) string {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		if urlErr.Timeout() {
			return fmt.Sprintf("timed out after %s", timeout)
		}
		err = urlErr.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("timed out after %s", timeout)
	}
	return err.Error()
}
