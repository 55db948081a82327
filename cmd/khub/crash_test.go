package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/push"
)

// crashReceiver responds to each delivery after a short delay, so that a
// delivery is in flight most of the time. It keeps one chosen request open
// without a response until the hub that sent it dies, and does not record
// it, so its change arrives only if the restarted hub sends it again.
//
// The first response waits until ahead is closed. The dispatcher then works
// through a backlog, so it records its cursor only every FlushEvery
// deliveries and the restart has to send again those made since.
type crashReceiver struct {
	*failoverReceiver
	delay  time.Duration
	ahead  <-chan struct{}
	holdAt int           // the request number to hold, counting from 1
	held   chan struct{} // closed when the held request has arrived
	quit   <-chan struct{}

	// countMu guards requests and webhookIDs. The embedded receiver's mu
	// guards the rest.
	countMu    sync.Mutex
	requests   int
	webhookIDs map[string]bool
}

func (rv *crashReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}

	rv.countMu.Lock()
	rv.requests++
	n := rv.requests
	if n != rv.holdAt {
		rv.webhookIDs[r.Header.Get("webhook-id")] = true
	}
	rv.countMu.Unlock()

	if n == rv.holdAt {
		close(rv.held)
		// The body has been read, so the request context ends when the
		// sender's connection closes, which SIGKILL does.
		select {
		case <-r.Context().Done():
		case <-rv.quit:
		}
		return
	}

	if n == 1 {
		select {
		case <-rv.ahead:
		case <-rv.quit:
		}
	}
	time.Sleep(rv.delay)

	r.Body = io.NopCloser(bytes.NewReader(body))
	rv.failoverReceiver.ServeHTTP(w, r)
}

func (rv *crashReceiver) counts() (requests, webhookIDs int) {
	rv.countMu.Lock()
	defer rv.countMu.Unlock()
	return rv.requests, len(rv.webhookIDs)
}

// TestPushSurvivesSIGKILL kills khub serve on SQLite with SIGKILL while a
// webhook delivery is in flight and committed changes wait to be delivered.
// After a restart on the same data directory, the receiver must get every
// change in the log at least once, signed, and in version order per article.
func TestPushSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	token := "crash-admin-token-0123456789"
	const changes, articles = 200, 10
	// The held delivery comes after the first flush of delivery records,
	// so the restart resumes from a stored cursor and sends again the
	// deliveries made since then. Deliveries start once the writes are
	// well past it, so the kill leaves committed changes undelivered.
	const holdAt, ahead = push.DefaultFlushEvery + 16, push.DefaultFlushEvery + 66

	writesAhead := make(chan struct{})
	var aheadOnce sync.Once
	secret := push.NewSecret()
	verify, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	rv := &crashReceiver{
		failoverReceiver: &failoverReceiver{verify: verify, ids: map[string]bool{}, order: map[string][]int64{}, seen: map[string]bool{}},
		delay:            3 * time.Millisecond,
		ahead:            writesAhead,
		holdAt:           holdAt,
		held:             make(chan struct{}),
		quit:             t.Context().Done(),
		webhookIDs:       map[string]bool{},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rv}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	// Both runs use one node name, so the restarted process takes back the
	// dispatch lease that the killed one held instead of waiting for it to
	// expire.
	args := []string{"--data", dir, "--admin-token", token, "--allow-private-destinations"}
	first := startNode(t, "khub-crash", args...)

	ctx := context.Background()
	if _, err := client.New(first.url, token).CreateIntegration(ctx, client.IntegrationRequest{
		Name: "ops-board", Freshness: "1m", Pattern: "push",
		Webhook: &client.Webhook{URL: "http://" + ln.Addr().String() + "/hook", Secret: secret},
	}); err != nil {
		t.Fatal(err)
	}

	change := func(i int) client.Article {
		return client.Article{
			ID: fmt.Sprintf("policy-%02d", i%articles), Title: fmt.Sprintf("Policy %d", i%articles),
			Body: fmt.Sprintf("Revision %d.", i), Collection: "handbook", Class: "policy",
		}
	}

	// The writer stops at the first failed write, which is the kill unless
	// something else broke, and the restarted hub gets that write again.
	// It lets deliveries start once it is ahead or has stopped.
	var acked atomic.Int64
	stopped := make(chan int, 1)
	go func() {
		defer aheadOnce.Do(func() { close(writesAhead) })
		c := client.New(first.url, token)
		for i := range changes {
			if _, _, err := c.PutArticle(ctx, change(i)); err != nil {
				stopped <- i
				return
			}
			if acked.Add(1) == ahead {
				aheadOnce.Do(func() { close(writesAhead) })
			}
		}
		stopped <- changes
	}()

	select {
	case <-rv.held:
	case <-time.After(60 * time.Second):
		t.Fatalf("the receiver never got request %d; log:\n%s", holdAt, first.log())
	}
	ackedBeforeKill := acked.Load()
	if ackedBeforeKill < ahead {
		t.Fatalf("only %d writes succeeded before the kill, want %d; log:\n%s", ackedBeforeKill, ahead, first.log())
	}
	deliveredBeforeKill := rv.distinct()
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.exited:
	case <-time.After(60 * time.Second):
		t.Fatal("khub serve did not exit after SIGKILL")
	}
	next := <-stopped
	t.Logf("at the kill: %d writes acknowledged, %d changes delivered, a delivery held in flight; the writer stopped at change %d",
		ackedBeforeKill, deliveredBeforeKill, next)

	second := startNode(t, "khub-crash", args...)
	c := client.New(second.url, token)
	for i := next; i < changes; i++ {
		if _, _, err := c.PutArticle(ctx, change(i)); err != nil {
			t.Fatalf("write %d after the restart: %v", i, err)
		}
	}

	// The change log is the truth: every entry in it must reach the
	// receiver, including writes that committed but whose response the
	// kill cut off.
	wantIDs := map[string]bool{}
	wantVersions := map[string][]int64{}
	for after := int64(0); ; {
		page, err := c.Changes(ctx, after, 500, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Changes) == 0 {
			break
		}
		for _, ch := range page.Changes {
			wantIDs[fmt.Sprintf("evt_%d", ch.Cursor)] = true
			wantVersions[ch.ArticleID] = append(wantVersions[ch.ArticleID], ch.Version)
		}
		after = page.Next
	}
	if len(wantIDs) < changes {
		t.Fatalf("change log has %d entries, want at least %d", len(wantIDs), changes)
	}

	deadline := time.Now().Add(60 * time.Second)
	for rv.distinct() < len(wantIDs) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	requests, webhookIDs := rv.counts()
	t.Logf("change log has %d entries; the receiver got %d requests with %d distinct webhook-ids", len(wantIDs), requests, webhookIDs)

	rv.failoverReceiver.mu.Lock()
	defer rv.failoverReceiver.mu.Unlock()
	if len(rv.bad) > 0 {
		t.Errorf("signature verification failed %d times: %v", len(rv.bad), rv.bad[0])
	}
	var missing []string
	for id := range wantIDs {
		if !rv.ids[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Errorf("receiver is missing %d of %d changes: %v\nlog before the kill:\n%s\nlog after the restart:\n%s",
			len(missing), len(wantIDs), missing, first.log(), second.log())
	}
	if len(rv.ids) != len(wantIDs) {
		t.Errorf("receiver got %d distinct event ids, want %d, one per change", len(rv.ids), len(wantIDs))
	}
	if webhookIDs != len(wantIDs) {
		t.Errorf("receiver got %d distinct webhook-ids, want %d, one per change", webhookIDs, len(wantIDs))
	}
	for id, want := range wantVersions {
		for k, v := range want {
			if v != int64(k+1) {
				t.Fatalf("change log of %s has versions %v, want 1, 2, 3, ...", id, want)
			}
		}
		if got := rv.order[id]; !slices.Equal(got, want) {
			t.Errorf("article %s: versions first arrived in order %v, want %v", id, got, want)
		}
	}
}
