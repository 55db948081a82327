package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/app"
	"github.com/khub-dev/khub/internal/push"
)

// startPushHub runs a hub that may send webhooks to loopback, with fast
// retries and state refreshes.
func startPushHub(t *testing.T) *client.Client {
	t.Helper()
	a, err := app.Open(app.Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0", AllowPrivate: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Push:   push.Config{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, StateRefresh: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	return client.New(a.URL(), a.AdminToken())
}

// countingReceiver responds 204 to every webhook and counts the requests
// per webhook-id.
type countingReceiver struct {
	mu  sync.Mutex
	ids map[string]int
}

func newCountingReceiver(t *testing.T) (*countingReceiver, string) {
	t.Helper()
	rv := &countingReceiver{ids: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		rv.mu.Lock()
		rv.ids[r.Header.Get("webhook-id")]++
		rv.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return rv, "http://" + ln.Addr().String() + "/hook"
}

func (rv *countingReceiver) count(id string) int {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.ids[id]
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDeliveryCommands(t *testing.T) {
	c := startPushHub(t)
	ctx := context.Background()
	rv, url := newCountingReceiver(t)

	out, err := runCLI(t, c, "integrations", "create", "--name", "board", "--freshness", "1m", "--class", "policy",
		"--webhook-url", url, "--batch-size", "2", "--coalesce", "--rate-limit", "10", "--retry-for", "1h",
		"--attempt-timeout", "5s", "--pause-after", "3", "--probe-every", "30s")
	if err != nil {
		t.Fatalf("create with delivery flags: %v\n%s", err, out)
	}
	for _, want := range []string{"state:     active", "batches of 2", "coalesce true", "at most 10 requests/s", "timeout 5s", "retries for 1h0m0s", "pauses after 3", "probes every 30s"} {
		if !strings.Contains(out, want) {
			t.Errorf("create output lacks %q:\n%s", want, out)
		}
	}
	_, err = runCLI(t, c, "integrations", "create", "--name", "other", "--freshness", "1m", "--class", "policy", "--webhook-url", url, "--batch-size", "501")
	if err == nil || !strings.Contains(err.Error(), "--batch-size") || !strings.Contains(err.Error(), "500") {
		t.Errorf("--batch-size 501: err = %v, want the flag and the range named", err)
	}
	_, err = runCLI(t, c, "integrations", "create", "--name", "other", "--freshness", "1m", "--class", "policy", "--webhook-url", url, "--attempt-timeout", "10m")
	if err == nil || !strings.Contains(err.Error(), "--attempt-timeout") {
		t.Errorf("--attempt-timeout 10m: err = %v, want the flag named", err)
	}

	if _, _, err := c.PutArticle(ctx, client.Article{ID: "p1", Title: "Travel", Body: "Book economy.", Collection: "handbook", Class: "policy"}); err != nil {
		t.Fatal(err)
	}
	board, err := findIntegration(ctx, c, "board")
	if err != nil {
		t.Fatal(err)
	}
	var delivered []client.Delivery
	waitUntil(t, "the delivery recorded", func() bool {
		delivered, err = c.QueryDeliveries(ctx, board.ID, client.DeliveryQuery{Status: "delivered"})
		if err != nil || len(delivered) != 1 {
			return false
		}
		// A replay covers only changes up to the stored push cursor.
		board, err = c.GetIntegration(ctx, board.ID)
		return err == nil && board.PushCursor >= delivered[0].Cursor
	})
	eventID := delivered[0].EventID

	out, err = runCLI(t, c, "integrations", "deliveries", "board", "--status", "delivered", "--article", "p1", "--since", "1h")
	if err != nil || !strings.Contains(out, eventID) {
		t.Errorf("deliveries with filters: err %v, output:\n%s", err, out)
	}
	out, err = runCLI(t, c, "integrations", "deliveries", "board", "--status", "failed")
	if err != nil || !strings.Contains(out, "match the filters") {
		t.Errorf("deliveries --status failed: err %v, output:\n%s", err, out)
	}
	if _, err := runCLI(t, c, "integrations", "deliveries", "board", "--status", "lost"); err == nil || !strings.Contains(err.Error(), "--status") {
		t.Errorf("deliveries --status lost: err = %v, want the flag named", err)
	}
	if _, err := runCLI(t, c, "integrations", "deliveries", "board", "--since", "last week"); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Errorf("deliveries --since 'last week': err = %v, want the flag named", err)
	}
	for _, limit := range []string{"0", "-1", "1001"} {
		if _, err := runCLI(t, c, "integrations", "deliveries", "board", "--limit", limit); err == nil || !strings.Contains(err.Error(), "1 to 1000") {
			t.Errorf("deliveries --limit %s: err = %v, want an error naming the range", limit, err)
		}
	}

	out, err = runCLI(t, c, "integrations", "replay", "board", "--event", eventID)
	if err != nil || !strings.Contains(out, "replaying cursors") {
		t.Fatalf("replay --event: err %v, output:\n%s", err, out)
	}
	waitUntil(t, "the replayed delivery", func() bool { return rv.count(eventID) == 2 })
	if _, err := runCLI(t, c, "integrations", "replay", "board"); err == nil || !strings.Contains(err.Error(), "--from-cursor") {
		t.Errorf("replay without a range: err = %v, want the range flags named", err)
	}
	if _, err := runCLI(t, c, "integrations", "replay", "board", "--from-cursor", "1000"); err == nil || !strings.Contains(err.Error(), "nothing to replay") {
		t.Errorf("replay beyond the push cursor: err = %v, want nothing to replay", err)
	}
	if _, err := runCLI(t, c, "integrations", "replay", "board", "--event", "42"); err == nil || !strings.Contains(err.Error(), "--event") {
		t.Errorf("replay --event 42: err = %v, want the flag named", err)
	}

	out, err = runCLI(t, c, "integrations", "rotate-secret", "board", "--overlap", "1h")
	if err != nil || !strings.Contains(out, "whsec_") || !strings.Contains(out, "shown once") {
		t.Errorf("rotate-secret: err %v, output:\n%s", err, out)
	}
	if _, err := runCLI(t, c, "integrations", "rotate-secret", "board", "--overlap", "1000h"); err == nil || !strings.Contains(err.Error(), "--overlap") {
		t.Errorf("rotate-secret --overlap 1000h: err = %v, want the flag named", err)
	}
	out, err = runCLI(t, c, "integrations", "show", "board")
	if err != nil || !strings.Contains(out, "rotation:") || strings.Contains(out, "whsec_") {
		t.Errorf("show after rotation: err %v, output:\n%s", err, out)
	}

	out, err = runCLI(t, c, "integrations", "resume", "board")
	if err != nil || !strings.Contains(out, "already active") {
		t.Errorf("resume of an active integration: err %v, output:\n%s", err, out)
	}
	out, err = runCLI(t, c, "integrations", "resume", "board", "--json")
	var in client.Integration
	if err != nil || json.Unmarshal([]byte(out), &in) != nil || in.State != client.StateActive {
		t.Errorf("resume --json: err %v, output:\n%s", err, out)
	}

	if _, err := c.CreateIntegration(ctx, client.IntegrationRequest{Name: "helpdesk", Freshness: "15m", Lookups: true, Scope: client.Scope{Classes: []string{"runbook"}}}); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"resume", "helpdesk"}, {"rotate-secret", "helpdesk"}, {"replay", "helpdesk", "--from-cursor", "1"}} {
		if _, err := runCLI(t, c, append([]string{"integrations"}, args...)...); err == nil || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "pull") {
			t.Errorf("%s on a pull integration: err = %v, want a 409 that says it pulls", args[0], err)
		}
	}
}

func TestDeliveryCommandsNeedTheAdminToken(t *testing.T) {
	root := newRootCmd()
	for _, name := range []string{"resume", "rotate-secret", "replay"} {
		cmd, _, err := root.Find([]string{"integrations", name})
		if err != nil {
			t.Fatal(err)
		}
		if help := cmd.Flags().Lookup("token").Usage; strings.Contains(help, "pull token") {
			t.Errorf("integrations %s --token help %q offers the pull token, but the call is admin-only", name, help)
		}
	}
	cmd, _, _ := root.Find([]string{"integrations", "create"})
	for flag, unit := range map[string]string{"rate-limit": "per second", "retry-for": "720h", "attempt-timeout": "2m", "probe-every": "24h", "batch-size": "500"} {
		if help := cmd.Flags().Lookup(flag).Usage; !strings.Contains(help, unit) {
			t.Errorf("--%s help %q does not give its unit or range (%s)", flag, help, unit)
		}
	}
}
