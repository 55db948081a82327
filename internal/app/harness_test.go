package app_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/app"
	"github.com/khub-dev/khub/internal/push"
)

// startHub runs a hub on a free loopback port with a fresh data directory
// and fast retries, and stops it when the test ends.
func startHub(t testing.TB, mutate ...func(*app.Config)) (*app.App, *client.Client) {
	t.Helper()
	cfg := app.Config{
		DataDir:      t.TempDir(),
		Addr:         "127.0.0.1:0",
		AllowPrivate: true,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Push: push.Config{
			InitialBackoff: 10 * time.Millisecond,
			MaxBackoff:     50 * time.Millisecond,
			Timeout:        2 * time.Second,
			// A paused integration probes at the pace of the retries, so
			// tests of outages do not wait for the one-minute default.
			ProbeEvery: 50 * time.Millisecond,
		},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	a, err := app.Open(cfg)
	if err != nil {
		t.Fatalf("open hub: %v", err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("start hub: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return a, client.New(a.URL(), a.AdminToken())
}

// receiver is a webhook endpoint on loopback that verifies every request
// with the Standard Webhooks reference library, independently of khub's
// own signing code. It can be taken down and brought back on its port.
type receiver struct {
	t       testing.TB
	secret  string
	verify  *standardwebhooks.Webhook
	addr    string
	mu      sync.Mutex
	srv     *http.Server
	events  []client.Event
	ids     map[string][]string // webhook-id → timestamps seen
	bodies  map[string][]byte   // webhook-id → first body
	failed  []string            // verification failures
	arrived chan struct{}
	status  int // answer for verified requests; 0 means 204
	hang    chan struct{}
}

func newReceiver(t testing.TB) *receiver {
	t.Helper()
	secret := push.NewSecret()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("standard webhooks verifier: %v", err)
	}
	rv := &receiver{t: t, secret: secret, verify: wh, ids: map[string][]string{}, bodies: map[string][]byte{}, arrived: make(chan struct{}, 1<<16)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	rv.addr = ln.Addr().String()
	rv.serve(ln)
	t.Cleanup(rv.down)
	return rv
}

func (rv *receiver) URL() string { return "http://" + rv.addr + "/hook" }

func (rv *receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: rv}
	rv.mu.Lock()
	rv.srv = srv
	rv.mu.Unlock()
	go srv.Serve(ln)
}

// down closes the listener, so deliveries fail with connection refused.
func (rv *receiver) down() {
	rv.mu.Lock()
	srv := rv.srv
	rv.srv = nil
	rv.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// up listens again on the same port.
func (rv *receiver) up() {
	rv.t.Helper()
	ln, err := net.Listen("tcp", rv.addr)
	if err != nil {
		rv.t.Fatalf("listen again on %s: %v", rv.addr, err)
	}
	rv.serve(ln)
}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	rv.mu.Lock()
	hang, status := rv.hang, rv.status
	rv.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
			return
		}
	}
	if err := rv.verify.Verify(body, r.Header); err != nil {
		rv.mu.Lock()
		rv.failed = append(rv.failed, err.Error())
		rv.mu.Unlock()
		http.Error(w, "signature", http.StatusUnauthorized)
		return
	}
	evs, err := client.ParseEvents(body)
	if err != nil {
		rv.mu.Lock()
		rv.failed = append(rv.failed, "parse: "+err.Error())
		rv.mu.Unlock()
		http.Error(w, "parse", http.StatusBadRequest)
		return
	}
	id := r.Header.Get("webhook-id")
	rv.mu.Lock()
	rv.ids[id] = append(rv.ids[id], r.Header.Get("webhook-timestamp"))
	if _, ok := rv.bodies[id]; !ok {
		rv.bodies[id] = body
	}
	if status == 0 || status/100 == 2 {
		rv.events = append(rv.events, evs...)
	}
	rv.mu.Unlock()
	if status == 0 {
		status = http.StatusNoContent
	}
	w.WriteHeader(status)
	rv.arrived <- struct{}{}
}

// received returns a copy of the events answered with 2xx so far.
func (rv *receiver) received() []client.Event {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]client.Event(nil), rv.events...)
}

// waitFor waits until cond holds on the received events, or fails the test
// after the deadline.
func (rv *receiver) waitFor(what string, cond func([]client.Event) bool) []client.Event {
	rv.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		evs := rv.received()
		if cond(evs) {
			return evs
		}
		select {
		case <-rv.arrived:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			rv.t.Fatalf("timed out waiting for %s; received %d events", what, len(evs))
		}
	}
}

func (rv *receiver) verificationFailures() []string {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]string(nil), rv.failed...)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func article(id, class, title, body string) client.Article {
	return client.Article{ID: id, Title: title, Body: body, Collection: "handbook", Class: class}
}

func put(t testing.TB, c *client.Client, a client.Article) client.Article {
	t.Helper()
	out, _, err := c.PutArticle(context.Background(), a)
	if err != nil {
		t.Fatalf("put %s: %v", a.ID, err)
	}
	return out
}
