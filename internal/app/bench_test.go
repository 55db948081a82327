package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/app"
	"github.com/khub-dev/khub/internal/push"
)

// BenchmarkPushChangeToVerifiedDelivery measures the time from an article
// write through the API until the receiver has verified the pushed event
// with the Standard Webhooks library. Each iteration writes one change and
// waits for it, so the figure is latency, not throughput.
func BenchmarkPushChangeToVerifiedDelivery(b *testing.B) {
	_, c := startHub(b)
	rv := newReceiver(b)
	createPush(b, c, rv, client.IntegrationRequest{Name: "board", Freshness: "1m", Scope: client.Scope{Classes: []string{"policy"}}})

	lat := make([]time.Duration, 0, b.N)
	i := 0
	for b.Loop() {
		i++
		want := fmt.Sprintf("v%d", i)
		start := time.Now()
		put(b, c, article("policy-bench", "policy", "Bench policy", want))
		rv.waitFor(want, func(evs []client.Event) bool {
			return len(evs) > 0 && evs[len(evs)-1].Data.Body == want
		})
		lat = append(lat, time.Since(start))
	}
	if f := rv.verificationFailures(); len(f) > 0 {
		b.Fatalf("verification failures: %v", f)
	}
	reportLatency(b, lat, "")
}

// BenchmarkFanOut100 measures change-to-delivery latency with 100 push
// integrations on each store back-end: every iteration writes one policy
// change and waits until all 100 webhooks have received and verified it.
// p50-ms and p99-ms are over single deliveries, all-ms over the time until
// the last of the 100 arrived.
func BenchmarkFanOut100(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchFanOut(b, 100) })
	b.Run("postgres", func(b *testing.B) { benchFanOut(b, 100, sharedPostgres(b)) })
}

func benchFanOut(b *testing.B, integrations int, mutate ...func(*app.Config)) {
	_, c := startHub(b, mutate...)
	secret := push.NewSecret()
	verify, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var start time.Time
	var want string
	var lat []time.Duration
	arrived := make(chan struct{}, integrations)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := verify.Verify(body, r.Header); err != nil {
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}
		evs, err := client.ParseEvents(body)
		w.WriteHeader(http.StatusNoContent)
		if err != nil || len(evs) == 0 {
			return
		}
		mu.Lock()
		current := evs[0].Data.Body == want
		if current {
			lat = append(lat, time.Since(start))
		}
		mu.Unlock()
		if current {
			arrived <- struct{}{}
		}
	}))
	b.Cleanup(srv.Close)

	ctx := context.Background()
	for i := range integrations {
		_, err := c.CreateIntegration(ctx, client.IntegrationRequest{
			Name: fmt.Sprintf("tool-%03d", i), Freshness: "1m", Pattern: "push",
			Scope:   client.Scope{Classes: []string{"policy"}},
			Webhook: &client.Webhook{URL: fmt.Sprintf("%s/hook/%d", srv.URL, i), Secret: secret},
		})
		if err != nil {
			b.Fatal(err)
		}
	}

	var all []time.Duration
	i := 0
	for b.Loop() {
		i++
		body := fmt.Sprintf("Revision %d.", i)
		mu.Lock()
		want, start = body, time.Now()
		mu.Unlock()
		put(b, c, article("policy-fanout", "policy", "Fan-out policy", body))
		for range integrations {
			select {
			case <-arrived:
			case <-time.After(30 * time.Second):
				b.Fatalf("iteration %d: not every integration received the change", i)
			}
		}
		all = append(all, time.Since(start))
	}
	mu.Lock()
	defer mu.Unlock()
	reportLatency(b, lat, "")
	reportLatency(b, all, "all-")
}

// reportLatency reports the median and 99th percentile of lat in
// milliseconds, under metric names that start with prefix.
func reportLatency(b *testing.B, lat []time.Duration, prefix string) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), prefix+"p50-ms")
	b.ReportMetric(at(0.99), prefix+"p99-ms")
}
