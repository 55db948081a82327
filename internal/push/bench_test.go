package push

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/khub-dev/khub/internal/changelog"
	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/sqlite"
)

// The benchmarks in this file run the push engine ("khub") and two
// hand-written baselines, the loop of baseline_test.go ("naive") and the
// queue table of outbox_baseline_test.go ("outbox"), against a SQLite store
// in a temporary directory and webhook receivers on 127.0.0.1. Each
// iteration is a fixed workload, so -benchtime 1x already measures, and
// -benchtime Nx repeats the measured part N times.
const (
	// benchReceivers is the number of integrations, each with its own
	// receiver, in the fan-out benchmarks.
	benchReceivers = 100
	// sustainedChanges is the number of changes per iteration of
	// BenchmarkSustained100, written at sustainedRate changes per second.
	// That offers 100,000 deliveries/s to 100 receivers: twice the goal
	// with batches and 20 times the goal without. An engine falls behind,
	// so the measured rate is its capacity, unless the writes themselves,
	// which share the machine, fall behind first.
	sustainedChanges = 1500
	sustainedRate    = 1000
	// halfLoadDuration is the length of one iteration of
	// BenchmarkLatencyHalfLoad.
	halfLoadDuration = 6 * time.Second
	// drainChanges is the backlog of BenchmarkBacklogDrain. Seeding it
	// takes about 40 s at the store's 2,500 writes/s, once per run.
	drainChanges = 100_000
	// deadChanges changes per iteration of BenchmarkDeadDestination are
	// written at deadRate changes per second, 1,000 deliveries/s to 100
	// receivers, far below either engine's capacity.
	deadChanges = 20
	deadRate    = 10
	// deadTimeout bounds each attempt in BenchmarkDeadDestination. The
	// default of 15 s would make the naive run take 15 times as long.
	deadTimeout = time.Second
	// deadIndex is the position of the dead receiver among the 100. The
	// naive loop sends in this order, so the receivers after it wait for
	// its timeout on every change.
	deadIndex = benchReceivers / 2
	// benchWait bounds every wait for deliveries.
	benchWait = 5 * time.Minute
)

// benchEngine starts a delivery engine for a set of receivers.
type benchEngine struct {
	name  string
	start func(tb testing.TB, h *benchHub, sinks []*benchSink, opts benchOptions)
}

// benchOptions are the settings that both engines share.
type benchOptions struct {
	timeout time.Duration // bound of one attempt
	// retryWait is the naive loop's wait between attempts at one request,
	// and zero sends each request once. khub always retries, with backoff
	// from testConfig up to maxBackoff.
	retryWait  time.Duration
	maxBackoff time.Duration // khub only; zero keeps testConfig's
	batchSize  int           // khub only; events per request, 0 for one
}

var benchEngines = []benchEngine{
	{name: "khub", start: func(tb testing.TB, h *benchHub, sinks []*benchSink, opts benchOptions) {
		h.startKhub(tb, sinks, opts)
	}},
	{name: "naive", start: func(tb testing.TB, h *benchHub, sinks []*benchSink, opts benchOptions) {
		dests := make([]naiveDest, len(sinks))
		for i, s := range sinks {
			dests[i] = naiveDest{url: s.url, secret: s.secret}
		}
		startNaive(tb, h.st, h.wake, dests, opts.timeout, opts.retryWait)
	}},
	{name: "outbox", start: func(tb testing.TB, h *benchHub, sinks []*benchSink, opts benchOptions) {
		dests := make([]naiveDest, len(sinks))
		for i, s := range sinks {
			dests[i] = naiveDest{url: s.url, secret: s.secret}
		}
		startOutbox(tb, h.st, h.wake, dests, opts.timeout, opts.retryWait)
	}},
}

// batchEngines adds khub with batches of 100 events per request, for the
// benchmarks where batching changes what is measured. The outbox stays
// last: its workers may still deliver after its sub-benchmark reports,
// and those arrivals would count for the engine after it.
var batchEngines = append(append(benchEngines[:1:1], benchEngine{
	name: "khub-batch100",
	start: func(tb testing.TB, h *benchHub, sinks []*benchSink, opts benchOptions) {
		opts.batchSize = 100
		h.startKhub(tb, sinks, opts)
	},
}), benchEngines[1:]...)

// BenchmarkSustained100 writes changes for 100 push integrations, each with
// its own receiver, and reports the deliveries per second from the first
// write until the last change reached every receiver.
func BenchmarkSustained100(b *testing.B) {
	for _, e := range batchEngines {
		b.Run(e.name, func(b *testing.B) {
			h := newBenchHub(b)
			sinks := h.startSinks(b, benchReceivers)
			e.start(b, h, sinks, benchOptions{timeout: 5 * time.Second})
			h.warmUp(b, len(sinks))

			var delivered int
			var elapsed time.Duration
			cpu := startCPUMeter()
			for b.Loop() {
				n, d := h.measureThroughput(b, sustainedChanges, sustainedRate, len(sinks))
				delivered += n
				elapsed += d
			}
			b.ReportMetric(float64(delivered)/elapsed.Seconds(), "deliveries/s")
			cpu.report(b, delivered, "cpu-µs/delivery")
			h.reportDuplicates(b)
		})
	}
}

// BenchmarkLatencyHalfLoad measures the engine's sustained rate with one
// iteration of BenchmarkSustained100, then writes changes at half that rate
// and reports the latency from each change's commit time to its arrival at
// each receiver.
func BenchmarkLatencyHalfLoad(b *testing.B) {
	for _, e := range benchEngines {
		b.Run(e.name, func(b *testing.B) {
			h := newBenchHub(b)
			sinks := h.startSinks(b, benchReceivers)
			e.start(b, h, sinks, benchOptions{timeout: 5 * time.Second})
			h.warmUp(b, len(sinks))
			n, d := h.measureThroughput(b, sustainedChanges, sustainedRate, len(sinks))
			load := float64(n) / d.Seconds() / 2 // deliveries/s
			rate := load / float64(len(sinks))   // changes/s
			changes := max(int(rate*halfLoadDuration.Seconds()), 20)

			var lat []time.Duration
			cpu := startCPUMeter()
			for b.Loop() {
				h.tally.take()
				h.writeChanges(b, changes, rate)
				h.await(b, changes*len(sinks))
				lat = append(lat, h.latencies(b, h.tally.take())...)
			}
			b.ReportMetric(load, "load-deliveries/s")
			reportPercentiles(b, lat)
			cpu.report(b, len(lat), "cpu-µs/delivery")
			h.reportDuplicates(b)
		})
	}
}

// BenchmarkBacklogDrain commits drainChanges changes while one integration's
// receiver refuses connections, then starts the receiver on the same port
// and reports the time until every change has reached it. The first
// iteration of each engine uses a destination that was down during the
// writes. A later iteration adds a new one after the writes and, outside
// the timer, waits three backoff ceilings, long enough for a first failed
// attempt. That leaves the engine in the same state: at the start of the
// log and retrying.
func BenchmarkBacklogDrain(b *testing.B) {
	opts := benchOptions{
		timeout:    5 * time.Second,
		retryWait:  10 * time.Millisecond,
		maxBackoff: 100 * time.Millisecond,
	}
	h := newBenchHub(b)
	first := map[string]*benchSink{}
	for _, e := range batchEngines {
		if e.name == "outbox" {
			// Its workers claim and fail queue rows without pause while the
			// destination is down, which would load the machine during the
			// other engines' drains. It starts in its own turn instead and
			// stops at the end of it.
			continue
		}
		s := h.newSink(b)
		e.start(b, h, []*benchSink{s}, opts)
		first[e.name] = s
	}
	began := time.Now()
	h.writeChanges(b, drainChanges, 0)
	b.Logf("seeded %d changes in %s", drainChanges, time.Since(began).Round(time.Millisecond))

	for _, e := range batchEngines {
		b.Run(e.name, func(b *testing.B) {
			var drained time.Duration
			var events int
			cpu := startCPUMeter()
			for b.Loop() {
				s := first[e.name]
				first[e.name] = nil
				if s == nil {
					b.StopTimer()
					s = h.newSink(b)
					e.start(b, h, []*benchSink{s}, opts)
					// Long enough for a first attempt and a backoff.
					time.Sleep(3 * opts.maxBackoff)
					b.StartTimer()
				}
				h.tally.take()
				up := time.Now()
				s.startOn(b, s.addr)
				h.await(b, drainChanges)
				arrivals := h.tally.take()
				drained += lastArrival(arrivals).Sub(up)
				events += len(arrivals)
			}
			b.ReportMetric(drained.Seconds()/float64(b.N), "drain-s")
			b.ReportMetric(float64(events)/drained.Seconds(), "events/s")
			cpu.report(b, events, "cpu-µs/event")
			h.reportDuplicates(b)
		})
	}
}

// BenchmarkDeadDestination writes changes at a low rate for 100
// integrations and reports the latency of the healthy receivers in three
// cases: all 100 healthy, one receiver that never responds, so each attempt
// at it waits for deadTimeout, and one that refuses connections.
func BenchmarkDeadDestination(b *testing.B) {
	for _, e := range benchEngines {
		b.Run(e.name, func(b *testing.B) {
			for _, mode := range []string{"healthy", "hung", "refused"} {
				b.Run(mode, func(b *testing.B) {
					h := newBenchHub(b)
					sinks := make([]*benchSink, benchReceivers)
					healthy := benchReceivers
					for i := range sinks {
						sinks[i] = h.newSink(b)
						switch {
						case i == deadIndex && mode == "refused":
							healthy--
						case i == deadIndex && mode == "hung":
							sinks[i].hang = true
							sinks[i].startOn(b, sinks[i].addr)
							healthy--
						default:
							sinks[i].startOn(b, sinks[i].addr)
						}
					}
					e.start(b, h, sinks, benchOptions{timeout: deadTimeout})
					h.warmUp(b, healthy)

					var lat []time.Duration
					for b.Loop() {
						h.tally.take()
						h.writeChanges(b, deadChanges, deadRate)
						h.await(b, deadChanges*healthy)
						lat = append(lat, h.latencies(b, h.tally.take())...)
					}
					reportPercentiles(b, lat)
					h.reportDuplicates(b)
				})
			}
		})
	}
}

// benchHub is a store, its change-log broadcaster and the receivers of one
// benchmark, with the commit time of every change written.
type benchHub struct {
	st    *sqlite.Store
	wake  *changelog.Broadcaster
	tally *benchTally
	// manager dispatches the hub's push integrations. It is nil until the
	// first startKhub.
	manager *Manager

	mu       sync.Mutex
	commits  map[int64]time.Time // change cursor to commit time
	revision int                 // number of changes written
	nextID   int                 // number of integrations created
}

func newBenchHub(tb testing.TB) *benchHub {
	tb.Helper()
	st, err := sqlite.Open(filepath.Join(tb.TempDir(), "khub.db"), sqlite.Options{})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	h := &benchHub{
		st:      st,
		wake:    &changelog.Broadcaster{},
		tally:   &benchTally{},
		commits: map[int64]time.Time{},
	}
	tb.Cleanup(func() {
		for _, p := range h.tally.problemList() {
			tb.Error(p)
		}
	})
	return h
}

// startSinks starts n receivers on new loopback ports.
func (h *benchHub) startSinks(tb testing.TB, n int) []*benchSink {
	sinks := make([]*benchSink, n)
	for i := range sinks {
		sinks[i] = h.newSink(tb)
		sinks[i].startOn(tb, sinks[i].addr)
	}
	return sinks
}

// startKhub stores one push integration per receiver and dispatches them
// with the hub's manager. The first call starts the manager with opts, as
// a started hub does. Later calls add their integrations to it and ignore
// opts.
func (h *benchHub) startKhub(tb testing.TB, sinks []*benchSink, opts benchOptions) {
	tb.Helper()
	ctx := context.Background()
	var added []store.IntegrationState
	for _, s := range sinks {
		h.mu.Lock()
		h.nextID++
		id := fmt.Sprintf("bench-%04d", h.nextID)
		h.mu.Unlock()
		scope := knowledge.Scope{Classes: []knowledge.Class{knowledge.ClassPolicy}}
		scope.Normalize()
		err := h.st.CreateIntegration(ctx, knowledge.Integration{
			ID:            id,
			Name:          id,
			Pattern:       knowledge.PatternPush,
			Freshness:     time.Minute,
			Scope:         scope,
			Reasons:       []string{},
			WebhookURL:    s.url,
			WebhookSecret: s.secret,
			CreatedAt:     time.Now().UTC(),
			Delivery:      knowledge.DeliverySettings{BatchSize: opts.batchSize},
		})
		if err != nil {
			tb.Fatalf("create integration %s: %v", id, err)
		}
		state, err := h.st.GetIntegration(ctx, id)
		if err != nil {
			tb.Fatalf("get integration %s: %v", id, err)
		}
		added = append(added, state)
	}
	if h.manager != nil {
		for _, in := range added {
			h.manager.Add(ctx, in)
		}
		return
	}

	cfg := testConfig()
	// The hub's defaults, not the tests' short ones: a state re-read
	// every 5 s and records handed over after 64 deliveries or 1 s idle.
	cfg.StateRefresh, cfg.FlushDelay = 0, 0
	cfg.Timeout = opts.timeout
	// Enough attempts to retry through the longest outage here, so that no
	// change fails for good.
	cfg.MaxAttempts = 1_000_000
	if opts.maxBackoff > 0 {
		cfg.MaxBackoff = opts.maxBackoff
	}
	m := NewManager(h.st, h.wake, cfg)
	if err := m.Start(ctx); err != nil {
		tb.Fatalf("start manager: %v", err)
	}
	h.manager = m
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.Stop(ctx); err != nil {
			tb.Errorf("stop manager: %v", err)
		}
	})
}

// benchArticle returns revision rev of one of 50 policy articles, with a
// body of about 1 KiB.
func benchArticle(rev int) knowledge.Article {
	id := fmt.Sprintf("policy-%02d", rev%50)
	a := knowledge.Article{
		ID:         id,
		Title:      "Policy " + id,
		Body:       fmt.Sprintf("Revision %d.\n\n", rev) + benchBody,
		Collection: "hr",
		Class:      knowledge.ClassPolicy,
		Tags:       []string{"bench"},
	}
	a.Normalize()
	return a
}

var benchBody = strings.Repeat("Every employee keeps the access badge visible on site and reports a lost badge at once. ", 11)

// writeChanges commits n changes, one every 1/rate seconds from now, or one
// after another when rate is 0, and wakes the dispatchers after each, as
// the hub does. A write that falls behind its slot starts at once.
func (h *benchHub) writeChanges(tb testing.TB, n int, rate float64) {
	tb.Helper()
	start := time.Now()
	for i := range n {
		if rate > 0 {
			slot := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if wait := time.Until(slot); wait > 0 {
				time.Sleep(wait)
			}
		}
		h.mu.Lock()
		h.revision++
		rev := h.revision
		h.mu.Unlock()
		res, err := h.st.SaveArticle(context.Background(), benchArticle(rev), store.SaveOptions{})
		if err != nil {
			tb.Fatalf("save revision %d: %v", rev, err)
		}
		if !res.Changed {
			tb.Fatalf("save revision %d changed nothing", rev)
		}
		h.mu.Lock()
		h.commits[res.Change.Cursor] = res.Change.Time
		h.mu.Unlock()
		h.wake.Notify(res.Change.Cursor)
	}
}

// warmUp writes one change and waits until n receivers have it, so that
// connections exist before the measurement.
func (h *benchHub) warmUp(tb testing.TB, n int) {
	tb.Helper()
	h.writeChanges(tb, 1, 0)
	h.await(tb, n)
	h.tally.take()
}

// measureThroughput writes changes at rate changes per second and returns
// the deliveries to the given number of receivers and the time from the
// first write to the last arrival.
func (h *benchHub) measureThroughput(tb testing.TB, changes int, rate float64, receivers int) (int, time.Duration) {
	tb.Helper()
	h.tally.take()
	start := time.Now()
	h.writeChanges(tb, changes, rate)
	h.await(tb, changes*receivers)
	arrivals := h.tally.take()
	return len(arrivals), lastArrival(arrivals).Sub(start)
}

func (h *benchHub) await(tb testing.TB, n int) {
	tb.Helper()
	if err := h.tally.await(n, benchWait); err != nil {
		tb.Fatal(err)
	}
}

// latencies returns, for each arrival, the time since its change's commit
// time, which the store takes before the write transaction.
func (h *benchHub) latencies(tb testing.TB, arrivals []benchArrival) []time.Duration {
	tb.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]time.Duration, 0, len(arrivals))
	for _, a := range arrivals {
		committed, ok := h.commits[a.cursor]
		if !ok {
			tb.Fatalf("receiver %d got change %d, which the benchmark did not write", a.sink, a.cursor)
		}
		out = append(out, a.at.Sub(committed))
	}
	return out
}

// reportDuplicates reports, since its last call, the requests that
// repeated a change the receiver already had, which at-least-once delivery
// allows, and the changes that arrived after a later one, which break
// per-article order. Engines run one after the other, so the counts
// belong to the engine that just ran.
func (h *benchHub) reportDuplicates(b *testing.B) {
	h.tally.mu.Lock()
	defer h.tally.mu.Unlock()
	b.ReportMetric(float64(h.tally.duplicates), "duplicates")
	b.ReportMetric(float64(h.tally.outOfOrder), "out-of-order")
	h.tally.duplicates, h.tally.outOfOrder = 0, 0
}

// reportPercentiles reports the median and 99th percentile of lat in
// milliseconds.
func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		b.Fatal("no latencies measured")
	}
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// cpuMeter measures the CPU time of this process, user and system, from
// /proc/self/stat. It includes the receivers, which run in the same
// process, and reports nothing where that file does not exist (any system
// but Linux).
type cpuMeter struct {
	start time.Duration
	ok    bool
}

func startCPUMeter() cpuMeter {
	start, ok := processCPU()
	return cpuMeter{start: start, ok: ok}
}

// report reports the CPU time used since the meter started, divided by n,
// in microseconds. The benchmark timer does not stop it, so setup between
// iterations counts too.
func (m cpuMeter) report(b *testing.B, n int, unit string) {
	now, ok := processCPU()
	if !m.ok || !ok || n == 0 {
		return
	}
	b.ReportMetric(float64((now-m.start).Microseconds())/float64(n), unit)
}

// processCPU returns the user and system CPU time of this process.
func processCPU() (time.Duration, bool) {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// The command name, field 2, is in parentheses and may contain spaces,
	// so the fields are counted after the last ')'. The first of them is
	// field 3, so utime and stime, fields 14 and 15, are at 11 and 12.
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return 0, false
	}
	fields := strings.Fields(string(data[end+1:]))
	if len(fields) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	// Both count clock ticks of USER_HZ, which is 100 per second on Linux.
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

func lastArrival(arrivals []benchArrival) time.Time {
	var last time.Time
	for _, a := range arrivals {
		if a.at.After(last) {
			last = a.at
		}
	}
	return last
}

// benchSink is a webhook receiver on a loopback port. It verifies each
// request with the Standard Webhooks reference library, records the first
// arrival of each change in the hub's tally and responds 204 at once,
// unless hang is set.
type benchSink struct {
	index  int
	addr   string // host:port, reserved when the sink is made
	url    string
	secret string
	wh     *standardwebhooks.Webhook
	tally  *benchTally
	// hang makes every request wait without a response until the sender
	// gives up or the benchmark ends.
	hang    bool
	release chan struct{} // closed at cleanup to end hanging requests
	// last is the highest cursor received and seen every cursor received,
	// both guarded by tally.mu.
	last int64
	seen map[int64]bool
}

// newSink reserves a loopback port for a receiver and closes it, so that
// connections are refused until startOn.
func (h *benchHub) newSink(tb testing.TB) *benchSink {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen on loopback: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	secret := NewSecret()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		tb.Fatalf("reference library rejects the secret: %v", err)
	}
	h.tally.mu.Lock()
	h.tally.sinks++
	index := h.tally.sinks
	h.tally.mu.Unlock()
	return &benchSink{
		index:   index,
		addr:    addr,
		url:     "http://" + addr + "/hooks/khub",
		secret:  secret,
		wh:      wh,
		tally:   h.tally,
		release: make(chan struct{}),
	}
}

// startOn starts serving on addr and stops at cleanup.
func (s *benchSink) startOn(tb testing.TB, addr string) {
	tb.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatalf("listen on %s again: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(s)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	tb.Cleanup(func() {
		close(s.release)
		srv.Close()
	})
}

func (s *benchSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	if s.hang {
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body failed", http.StatusBadRequest)
		return
	}
	id := r.Header.Get(HeaderID)
	if err := s.wh.Verify(body, r.Header); err != nil {
		s.tally.problem(fmt.Sprintf("receiver %d: delivery %s fails Standard Webhooks verification: %v", s.index, id, err))
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	ids := []string{id}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/cloudevents-batch+json") {
		var events []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &events); err != nil {
			s.tally.problem(fmt.Sprintf("receiver %d: batch %s is not a JSON array of events: %v", s.index, id, err))
			http.Error(w, "invalid batch", http.StatusBadRequest)
			return
		}
		ids = ids[:0]
		for _, ev := range events {
			ids = append(ids, ev.ID)
		}
	}
	for _, id := range ids {
		cursor, err := strconv.ParseInt(strings.TrimPrefix(id, "evt_"), 10, 64)
		if err != nil {
			s.tally.problem(fmt.Sprintf("receiver %d: event id %q is not evt_ and a cursor", s.index, id))
			http.Error(w, "invalid event id", http.StatusBadRequest)
			return
		}
		s.tally.record(s, cursor, at)
	}
	w.WriteHeader(http.StatusNoContent)
}

// benchTally collects the arrivals at every receiver of a hub.
type benchTally struct {
	mu         sync.Mutex
	sinks      int
	arrivals   []benchArrival // first arrivals since the last take
	duplicates int
	outOfOrder int // arrivals below a cursor the receiver already had
	problems   []string
	want       int           // arrivals that close reached, or 0 when no caller waits
	reached    chan struct{} // closed when len(arrivals) reaches want
}

// benchArrival is the first arrival of a change at a receiver, by the
// receiver's clock.
type benchArrival struct {
	sink   int
	cursor int64
	at     time.Time
}

// record counts a request: a cursor the receiver has already had is a
// duplicate, and one below the highest it has had arrived out of log order.
func (t *benchTally) record(s *benchSink, cursor int64, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.seen[cursor] {
		t.duplicates++
		return
	}
	if s.seen == nil {
		s.seen = map[int64]bool{}
	}
	s.seen[cursor] = true
	if cursor < s.last {
		t.outOfOrder++
	}
	s.last = max(s.last, cursor)
	t.arrivals = append(t.arrivals, benchArrival{sink: s.index, cursor: cursor, at: at})
	if t.want > 0 && len(t.arrivals) >= t.want {
		close(t.reached)
		t.want = 0
	}
}

func (t *benchTally) problem(p string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.problems) < 10 {
		t.problems = append(t.problems, p)
	}
}

func (t *benchTally) problemList() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.problems)
}

// take returns the arrivals since the last take and starts a new count.
func (t *benchTally) take() []benchArrival {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.arrivals
	t.arrivals = nil
	return out
}

// await blocks until n arrivals have been counted since the last take, or
// returns an error after timeout.
func (t *benchTally) await(n int, timeout time.Duration) error {
	t.mu.Lock()
	if len(t.arrivals) >= n {
		t.mu.Unlock()
		return nil
	}
	reached := make(chan struct{})
	t.want, t.reached = n, reached
	t.mu.Unlock()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-reached:
		return nil
	case <-timer.C:
		t.mu.Lock()
		defer t.mu.Unlock()
		t.want = 0
		return fmt.Errorf("timed out after %s: %d of %d deliveries arrived", timeout, len(t.arrivals), n)
	}
}
