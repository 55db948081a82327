package push

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/khub-dev/khub/internal/changelog"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/sqlite"
)

// waitTimeout bounds every wait in these tests. Deliveries normally take
// milliseconds; the margin is for slow machines under -race.
const waitTimeout = 10 * time.Second

// delivery is one webhook request as a receiver saw it.
type delivery struct {
	ID        string // webhook-id
	Timestamp string // webhook-timestamp
	Body      []byte
	At        time.Time // arrival, by the receiver's clock
	Status    int       // status the receiver returned
	Event     struct {
		ID      string            `json:"id"`
		Type    string            `json:"type"`
		Subject string            `json:"subject"`
		Data    knowledge.Article `json:"data"`
	}
}

// receiver is a webhook endpoint on a loopback httptest server. It checks
// every request with the Standard Webhooks reference library, not with
// this package's code, and records it.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	wh     *standardwebhooks.Webhook
	notify chan struct{} // receives a value after each request, without blocking

	mu         sync.Mutex
	deliveries []delivery
	problems   []string
	// respond chooses the status of the n-th request (1-based); nil
	// returns 204.
	respond func(n int, w http.ResponseWriter, r *http.Request) int
	// onRequest runs before the response, for example to move a clock.
	onRequest func()
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	return newReceiverOn(t, nil, NewSecret())
}

// newReceiverOn starts a receiver that verifies with secret, on the given
// listener or, when ln is nil, on a new loopback port.
func newReceiverOn(t *testing.T, ln net.Listener, secret string) *receiver {
	t.Helper()
	rcv := &receiver{t: t, secret: secret, notify: make(chan struct{}, 1)}
	wh, err := standardwebhooks.NewWebhook(rcv.secret)
	if err != nil {
		t.Fatalf("library rejects the secret: %v", err)
	}
	rcv.wh = wh
	rcv.srv = httptest.NewUnstartedServer(http.HandlerFunc(rcv.serve))
	if ln != nil {
		rcv.srv.Listener.Close()
		rcv.srv.Listener = ln
	}
	rcv.srv.Start()
	t.Cleanup(func() {
		rcv.srv.Close()
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		for _, p := range rcv.problems {
			t.Error(p)
		}
	})
	return rcv
}

func (rcv *receiver) url() string { return rcv.srv.URL + "/hooks/khub" }

func (rcv *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	d := delivery{
		ID:        r.Header.Get("webhook-id"),
		Timestamp: r.Header.Get("webhook-timestamp"),
		Body:      body,
		At:        time.Now(),
	}
	var problems []string
	if err != nil {
		problems = append(problems, fmt.Sprintf("read body: %v", err))
	}
	if err := rcv.wh.Verify(body, r.Header); err != nil {
		problems = append(problems, fmt.Sprintf("delivery %s fails Standard Webhooks verification: %v", d.ID, err))
	}
	if err := json.Unmarshal(body, &d.Event); err != nil {
		problems = append(problems, fmt.Sprintf("delivery %s body is not JSON: %v", d.ID, err))
	}
	if d.Event.ID != d.ID {
		problems = append(problems, fmt.Sprintf("event id %q differs from webhook-id %q", d.Event.ID, d.ID))
	}
	if got := r.Header.Get("Content-Type"); got != ContentType {
		problems = append(problems, fmt.Sprintf("Content-Type = %q, want %q", got, ContentType))
	}
	if got := r.Header.Get("User-Agent"); got != "khub/test" {
		problems = append(problems, fmt.Sprintf("User-Agent = %q, want khub/test", got))
	}
	if r.Method != http.MethodPost {
		problems = append(problems, fmt.Sprintf("method = %s, want POST", r.Method))
	}

	rcv.mu.Lock()
	n := len(rcv.deliveries) + 1
	respond, onRequest := rcv.respond, rcv.onRequest
	rcv.mu.Unlock()
	if onRequest != nil {
		onRequest()
	}
	d.Status = http.StatusNoContent
	if respond != nil {
		d.Status = respond(n, w, r)
	}
	if r.Context().Err() != nil {
		d.Status = 0 // khub gave up on the request, so it got no response
	}

	rcv.mu.Lock()
	rcv.deliveries = append(rcv.deliveries, d)
	rcv.problems = append(rcv.problems, problems...)
	rcv.mu.Unlock()
	select {
	case rcv.notify <- struct{}{}:
	default:
	}
	if d.Status != 0 {
		w.WriteHeader(d.Status)
	}
}

func (rcv *receiver) setRespond(f func(n int, w http.ResponseWriter, r *http.Request) int) {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	rcv.respond = f
}

func (rcv *receiver) all() []delivery {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	return append([]delivery(nil), rcv.deliveries...)
}

// succeeded returns the deliveries that got a 2xx response, in arrival
// order.
func (rcv *receiver) succeeded() []delivery {
	var out []delivery
	for _, d := range rcv.all() {
		if d.Status >= 200 && d.Status < 300 {
			out = append(out, d)
		}
	}
	return out
}

// waitFor blocks until cond holds for the recorded deliveries, or fails
// the test after waitTimeout.
func (rcv *receiver) waitFor(what string, cond func(all []delivery) bool) {
	rcv.t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		if cond(rcv.all()) {
			return
		}
		select {
		case <-rcv.notify:
		case <-deadline.C:
			rcv.t.Fatalf("timed out after %s waiting for %s; got %d requests: %v", waitTimeout, what, len(rcv.all()), ids(rcv.all()))
		}
	}
}

// waitSucceeded waits until n deliveries got a 2xx response.
func (rcv *receiver) waitSucceeded(n int) {
	rcv.t.Helper()
	rcv.waitFor(fmt.Sprintf("%d successful deliveries", n), func(all []delivery) bool {
		count := 0
		for _, d := range all {
			if d.Status >= 200 && d.Status < 300 {
				count++
			}
		}
		return count >= n
	})
}

func ids(ds []delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// eventIDs returns "evt_<cursor>" for each change.
func eventIDs(changes []knowledge.Change) []string {
	out := make([]string, len(changes))
	for i := range changes {
		out[i] = EventID(&changes[i])
	}
	return out
}

// testClock is a clock that tests can move forward. It starts at the real
// time, because the reference library checks webhook timestamps against
// the real clock with a five-minute tolerance.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// harness is a store, a broadcaster and the managers started on them.
type harness struct {
	t    *testing.T
	st   *sqlite.Store
	wake *changelog.Broadcaster
	cfg  Config
	// settings are the delivery settings of integrations added from now on.
	settings knowledge.DeliverySettings
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "khub.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return &harness{t: t, st: st, wake: &changelog.Broadcaster{}, cfg: testConfig()}
}

// testConfig retries after milliseconds, so tests of failures stay fast.
func testConfig() Config {
	return Config{
		Source:         "urn:khub:hub:test",
		AllowPrivate:   true, // receivers listen on loopback
		Timeout:        5 * time.Second,
		InitialBackoff: time.Millisecond,
		MaxBackoff:     10 * time.Millisecond,
		MaxAttempts:    1000,
		// The breaker stays out of tests that are not about it.
		PauseAfter:   1000,
		ProbeEvery:   10 * time.Millisecond,
		StateRefresh: 10 * time.Millisecond,
		FlushDelay:   5 * time.Millisecond,
		Version:      "test",
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// addIntegration stores an integration that sends to rcv.
func (h *harness) addIntegration(id string, pattern knowledge.Pattern, scope knowledge.Scope, rcv *receiver) {
	h.addIntegrationURL(id, pattern, scope, rcv.url(), rcv.secret)
}

func (h *harness) addIntegrationURL(id string, pattern knowledge.Pattern, scope knowledge.Scope, webhookURL, secret string) {
	h.t.Helper()
	scope.Normalize()
	err := h.st.CreateIntegration(context.Background(), knowledge.Integration{
		ID:            id,
		Name:          id,
		Pattern:       pattern,
		Freshness:     time.Minute,
		Scope:         scope,
		Reasons:       []string{},
		WebhookURL:    webhookURL,
		WebhookSecret: secret,
		CreatedAt:     time.Now().UTC(),
		Delivery:      h.settings,
	})
	if err != nil {
		h.t.Fatalf("create integration %s: %v", id, err)
	}
}

// start runs a manager on the harness's store, as a started hub does.
// The returned stop function is idempotent and also runs at cleanup.
func (h *harness) start() (*Manager, func()) {
	h.t.Helper()
	m := NewManager(h.st, h.wake, h.cfg)
	if err := m.Start(context.Background()); err != nil {
		h.t.Fatalf("start manager: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := m.Stop(ctx); err != nil {
				h.t.Errorf("stop manager: %v", err)
			}
		})
	}
	h.t.Cleanup(stop)
	return m, stop
}

// save writes an article version and wakes the dispatchers, as the hub
// does.
func (h *harness) save(a knowledge.Article) knowledge.Change {
	h.t.Helper()
	a.Normalize()
	if err := a.Validate(); err != nil {
		h.t.Fatalf("invalid test article: %v", err)
	}
	res, err := h.st.SaveArticle(context.Background(), a, store.SaveOptions{})
	if err != nil {
		h.t.Fatalf("save article %s: %v", a.ID, err)
	}
	if !res.Changed {
		h.t.Fatalf("save article %s changed nothing", a.ID)
	}
	h.wake.Notify(res.Change.Cursor)
	return res.Change
}

// savePolicies writes n policy articles in collection "hr".
func (h *harness) savePolicies(prefix string, n int) []knowledge.Change {
	h.t.Helper()
	var out []knowledge.Change
	for i := range n {
		out = append(out, h.save(article(fmt.Sprintf("%s-%d", prefix, i), "hr", knowledge.ClassPolicy)))
	}
	return out
}

func article(id, collection string, class knowledge.Class) knowledge.Article {
	return knowledge.Article{
		ID:         id,
		Title:      "Article " + id,
		Body:       "Body of " + id,
		Collection: collection,
		Class:      class,
	}
}

func (h *harness) state(id string) store.IntegrationState {
	h.t.Helper()
	s, err := h.st.GetIntegration(context.Background(), id)
	if err != nil {
		h.t.Fatalf("get integration %s: %v", id, err)
	}
	return s
}

// attempts returns the recorded attempts of an integration, oldest first.
func (h *harness) attempts(id string) []store.Attempt {
	h.t.Helper()
	newest, err := h.st.ListDeliveries(context.Background(), id, 1000)
	if err != nil {
		h.t.Fatalf("list deliveries of %s: %v", id, err)
	}
	out := make([]store.Attempt, 0, len(newest))
	for i := len(newest) - 1; i >= 0; i-- {
		out = append(out, newest[i])
	}
	return out
}

// waitState polls the stored integration until cond holds or the wait
// times out.
func (h *harness) waitState(id, what string, cond func(store.IntegrationState) bool) store.IntegrationState {
	h.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	ticker := time.NewTicker(2 * time.Millisecond)
	defer ticker.Stop()
	for {
		s := h.state(id)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %s waiting for %s of %s; state %+v", waitTimeout, what, id, s)
		}
		<-ticker.C
	}
}

// waitCursor waits until the integration's stored push cursor reaches
// cursor. A receiver records a request before khub reads the response, so
// tests wait for the store before they stop a manager. A stop in between
// leaves the outcome unknown, and the change is sent again.
func (h *harness) waitCursor(id string, cursor int64) {
	h.t.Helper()
	h.waitState(id, fmt.Sprintf("push cursor %d", cursor), func(s store.IntegrationState) bool {
		return s.PushCursor >= cursor
	})
}

// checkAttempt reports each field of a recorded attempt that differs
// from the expected attempt number, outcome and status code.
func checkAttempt(t *testing.T, what string, a store.Attempt, attempt int, outcome string, status int) {
	t.Helper()
	if a.Attempt != attempt {
		t.Errorf("%s: attempt number %d, want %d", what, a.Attempt, attempt)
	}
	if a.Outcome != outcome {
		t.Errorf("%s: outcome %q, want %q", what, a.Outcome, outcome)
	}
	if a.StatusCode != status {
		t.Errorf("%s: status %d, want %d", what, a.StatusCode, status)
	}
}

// sameIDs fails the test unless got equals want.
func sameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d ids %v, want %d ids %v", what, len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: id %d is %s, want %s (got %v, want %v)", what, i, got[i], want[i], got, want)
		}
	}
}

// closedPortAddr returns a loopback address on which nothing listens, so
// connections to it are refused.
func closedPortAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// bodiesEqual reports whether every delivery carries the same bytes.
func bodiesEqual(ds []delivery) bool {
	for _, d := range ds[1:] {
		if !bytes.Equal(d.Body, ds[0].Body) {
			return false
		}
	}
	return true
}
