package app_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
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
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
