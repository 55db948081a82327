package push

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/changelog"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// naiveForwarder is the baseline of the push benchmarks: the delivery loop
// a team would write by hand. One goroutine reads the change log after an
// in-memory cursor and POSTs each change to every receiver in turn. Each
// request encodes, signs and sends the event from scratch through a clone
// of http.DefaultTransport, as http.Post would. The forwarder records
// nothing in the store and runs no goroutine per destination.
type naiveForwarder struct {
	st     store.Store
	wake   *changelog.Broadcaster
	source string
	dests  []naiveDest
	client *http.Client
	// retryWait, when non-zero, repeats every request until it gets a 2xx
	// response, waiting retryWait between attempts, so that no change is
	// lost while a receiver is down. When it is zero, each request is sent
	// once and a failure is dropped.
	retryWait time.Duration
}

// naiveDest is one webhook receiver of the baseline.
type naiveDest struct {
	url    string
	secret string // "whsec_" secret, decoded again for every request
}

// startNaive runs a naive forwarder until the benchmark ends. timeout
// bounds each request, because http.DefaultClient has no timeout and a
// receiver that never responds would stop the loop for good.
func startNaive(tb testing.TB, st store.Store, wake *changelog.Broadcaster, dests []naiveDest, timeout, retryWait time.Duration) {
	tb.Helper()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// ProxyFromEnvironment never proxies loopback addresses, and no proxy
	// at all keeps every request on this host whatever the environment.
	transport.Proxy = nil
	f := &naiveForwarder{
		st:        st,
		wake:      wake,
		source:    testConfig().Source,
		dests:     dests,
		client:    &http.Client{Transport: transport, Timeout: timeout},
		retryWait: retryWait,
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { f.run(ctx) })
	tb.Cleanup(func() {
		cancel()
		wg.Wait()
		transport.CloseIdleConnections()
	})
}

// run forwards changes until ctx ends, starting at the beginning of the
// log as a new khub integration does.
func (f *naiveForwarder) run(ctx context.Context) {
	var cursor int64
	for ctx.Err() == nil {
		changed := f.wake.Changed()
		page, err := f.st.ReadChanges(ctx, cursor, DefaultPageSize)
		if err != nil {
			sleepCtx(ctx, 10*time.Millisecond)
			continue
		}
		for i := range page.Changes {
			for _, d := range f.dests {
				for !f.post(ctx, d, &page.Changes[i]) && f.retryWait > 0 {
					if !sleepCtx(ctx, f.retryWait) {
						return
					}
				}
			}
		}
		cursor = max(cursor, page.ScannedTo)
		if len(page.Changes) == 0 {
			select {
			case <-changed:
			case <-ctx.Done():
			}
		}
	}
}

// post sends one change to one receiver and reports whether the response
// had a 2xx status.
func (f *naiveForwarder) post(ctx context.Context, d naiveDest, c *knowledge.Change) bool {
	body, err := BuildEvent(f.source, c)
	if err != nil {
		return false
	}
	return postSigned(ctx, f.client, d, EventID(c), body)
}

// postSigned signs one event for one receiver, decoding its secret for
// every request as a hand-written sender would, sends it and reports
// whether the response had a 2xx status.
func postSigned(ctx context.Context, client *http.Client, d naiveDest, id string, body []byte) bool {
	key, err := ParseSecret(d.secret)
	if err != nil {
		return false
	}
	now := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(key, id, now, body))
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

// sleepCtx waits for d and reports false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
