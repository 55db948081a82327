package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
)

func createPush(t testing.TB, c *client.Client, rv *receiver, req client.IntegrationRequest) client.Integration {
	t.Helper()
	req.Webhook = &client.Webhook{URL: rv.URL(), Secret: rv.secret}
	in, err := c.CreateIntegration(context.Background(), req)
	if err != nil {
		t.Fatalf("create integration %s: %v", req.Name, err)
	}
	return in
}

func TestPushReceiverDownThenBack(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	rv := newReceiver(t)
	in := createPush(t, c, rv, client.IntegrationRequest{Name: "board", Freshness: "1m", Scope: client.Scope{Classes: []string{"safety"}}})
	if in.Pattern != "push" {
		t.Fatalf("pattern = %s, want push", in.Pattern)
	}

	put(t, c, article("s1", "safety", "Forklift lanes", "Keep lanes clear."))
	rv.waitFor("first delivery", func(evs []client.Event) bool { return len(evs) == 1 })

	rv.down()
	for i := 1; i <= 5; i++ {
		put(t, c, article("s1", "safety", "Forklift lanes", fmt.Sprintf("Keep lanes clear, revision %d.", i)))
		put(t, c, article(fmt.Sprintf("s%d", i+1), "safety", "Procedure", "Step one."))
	}

	// While the receiver is down, the integration falls behind.
	eventually(t, "staleness above zero", func() bool {
		got, err := c.GetIntegration(ctx, in.ID)
		return err == nil && got.Freshness.StalenessSeconds > 0 && got.LastError != ""
	})

	rv.up()
	// A resent delivery counts once, so the wait is for 11 distinct events.
	evs := rv.waitFor("all 11 changes", func(evs []client.Event) bool {
		ids := map[string]bool{}
		for _, ev := range evs {
			ids[ev.ID] = true
		}
		return len(ids) >= 11
	})

	// Versions of one article first arrive in order, and nothing is
	// missing. A delivery whose response was cut off by the receiver going
	// down is sent again, so duplicates are allowed.
	var s1 []int64
	seen := map[string]bool{}
	for _, ev := range evs {
		if seen[ev.ID] {
			continue
		}
		seen[ev.ID] = true
		if ev.Subject == "s1" {
			s1 = append(s1, ev.Data.Version)
		}
	}
	for i, v := range s1 {
		if v != int64(i+1) {
			t.Fatalf("versions of s1 arrived as %v, want 1..6 in order", s1)
		}
	}
	if len(s1) != 6 || len(seen) != 11 {
		t.Errorf("received %d versions of s1 and %d distinct events, want 6 and 11", len(s1), len(seen))
	}
	if f := rv.verificationFailures(); len(f) > 0 {
		t.Errorf("signature verification failed: %v", f)
	}

	eventually(t, "staleness back to zero", func() bool {
		got, err := c.GetIntegration(ctx, in.ID)
		return err == nil && got.Freshness.StalenessSeconds == 0 && got.Freshness.WithinWindow
	})
	ds, err := c.Deliveries(ctx, in.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	var failedAttempts, delivered int
	for _, d := range ds {
		switch d.Outcome {
		case "delivered":
			delivered++
		case "retrying":
			failedAttempts++
			if d.Error == "" {
				t.Errorf("failed attempt %s has no error text", d.EventID)
			}
		}
	}
	if delivered != 11 || failedAttempts == 0 {
		t.Errorf("deliveries: %d delivered and %d failed attempts, want 11 and at least 1", delivered, failedAttempts)
	}
}

func TestPushRetriesKeepIDAndBody(t *testing.T) {
	_, c := startHub(t)
	rv := newReceiver(t)
	rv.status = 500
	createPush(t, c, rv, client.IntegrationRequest{Name: "board", Freshness: "1m", Scope: client.Scope{Classes: []string{"policy"}}})

	// Text that has broken payload signing elsewhere: accents, curly
	// quotes, emoji with joiners, markup, decimals, many metadata keys.
	meta := map[string]string{}
	for i := range 40 {
		meta[fmt.Sprintf("key%02d", i)] = fmt.Sprintf("välue “%d” <&> 3.14", i)
	}
	a := client.Article{ID: "p1", Title: "Incident 🚨 playbook – naïve café", Body: "Owner 👩‍💻\u00a0on call; ratio 0.125 < 1 & “quoted”", Collection: "handbook", Class: "policy", Metadata: meta}
	put(t, c, a)

	eventually(t, "three failed attempts", func() bool {
		rv.mu.Lock()
		defer rv.mu.Unlock()
		return len(rv.ids["evt_1"]) >= 3
	})
	rv.mu.Lock()
	rv.status = 0
	rv.mu.Unlock()
	evs := rv.waitFor("delivery after retries", func(evs []client.Event) bool { return len(evs) == 1 })

	if f := rv.verificationFailures(); len(f) > 0 {
		t.Fatalf("signature verification failed: %v", f)
	}
	got := evs[0].Data
	if got.Title != a.Title || got.Body != a.Body || got.Metadata["key07"] != meta["key07"] {
		t.Errorf("pushed article differs: title %q body %q", got.Title, got.Body)
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if len(rv.ids) != 1 {
		t.Errorf("retries used %d webhook-ids, want 1", len(rv.ids))
	}
	if !strings.HasPrefix(string(rv.bodies["evt_1"]), `{"specversion":"1.0"`) {
		t.Errorf("body does not start as a CloudEvent: %.60s", rv.bodies["evt_1"])
	}
}

func TestHybridPushesCriticalOnly(t *testing.T) {
	_, c := startHub(t)
	rv := newReceiver(t)
	in := createPush(t, c, rv, client.IntegrationRequest{Name: "ops", Freshness: "10m"})
	if in.Pattern != "hybrid" || in.Token == "" {
		t.Fatalf("pattern %s token %q, want hybrid with a pull token", in.Pattern, in.Token)
	}
	put(t, c, article("rb1", "runbook", "Disk full", "Free space."))
	put(t, c, article("pol1", "policy", "Retention", "Keep 7 years."))
	rb := article("rb1", "runbook", "Disk full", "Free space.")
	rb.Status = "deprecated"
	put(t, c, rb)

	evs := rv.waitFor("policy and deprecation", func(evs []client.Event) bool { return len(evs) >= 2 })
	if len(evs) != 2 {
		t.Fatalf("hybrid pushed %d events, want 2", len(evs))
	}
	if evs[0].Type != "khub.article.created" || evs[0].Subject != "pol1" {
		t.Errorf("first event = %s %s, want created pol1", evs[0].Type, evs[0].Subject)
	}
	if evs[1].Type != "khub.article.deprecated" || evs[1].Subject != "rb1" {
		t.Errorf("second event = %s %s, want deprecated rb1", evs[1].Type, evs[1].Subject)
	}

	// The pull side of hybrid reads the runbook through the change feed.
	pc := client.New(c.BaseURL(), in.Token)
	page, err := pc.Changes(context.Background(), 0, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 3 {
		t.Errorf("hybrid change feed has %d entries, want 3", len(page.Changes))
	}
}

func TestWriteNotHeldByHangingReceiver(t *testing.T) {
	_, c := startHub(t)
	ctx := context.Background()
	rv := newReceiver(t)
	rv.hang = make(chan struct{})
	defer close(rv.hang)
	in := createPush(t, c, rv, client.IntegrationRequest{Name: "slow", Freshness: "1m", Scope: client.Scope{Classes: []string{"policy"}}})

	put(t, c, article("p1", "policy", "Policy", "one"))
	// The dispatcher is now stuck on the hanging receiver; writes must not be.
	done := make(chan error, 1)
	go func() {
		_, _, err := c.PutArticle(ctx, article("p1", "policy", "Policy", "two"))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("article write waited on the hanging webhook")
	}

	// The attempt times out (2s in these tests) and the integration shows it.
	eventually(t, "last_error after a timeout", func() bool {
		got, err := c.GetIntegration(ctx, in.ID)
		return err == nil && got.LastError != "" && got.LastErrorAt != nil
	})
}
