package push

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

func TestGoneDisablesUntilResumed(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	var gone sync.Mutex
	answerGone := true
	rcv.setRespond(func(n int, w http.ResponseWriter, r *http.Request) int {
		gone.Lock()
		defer gone.Unlock()
		if answerGone {
			return http.StatusGone
		}
		return http.StatusNoContent
	})
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{Classes: []knowledge.Class{knowledge.ClassPolicy}}, rcv)
	_, stop := h.start()
	defer stop()
	changes := h.savePolicies("p", 2)

	st := h.waitState("int-a", "disabled after 410", func(s store.IntegrationState) bool {
		return s.State == knowledge.StateDisabled
	})
	if !strings.Contains(st.StateReason, "410") {
		t.Errorf("state reason = %q, want it to name the 410", st.StateReason)
	}
	if st.PushCursor >= changes[0].Cursor {
		t.Errorf("push cursor = %d, want the gone change %d kept waiting", st.PushCursor, changes[0].Cursor)
	}
	// The operations event is written just after the state.
	ops := h.waitOps("int-a", "disabled")
	if ops.Metadata["event"] != "disabled" {
		t.Errorf("operations event = %q, want disabled", ops.Metadata["event"])
	}
	requests := len(rcv.all())

	gone.Lock()
	answerGone = false
	gone.Unlock()
	if err := h.st.SetDeliveryState(context.Background(), "int-a", knowledge.StateActive, "resumed by a test", time.Now()); err != nil {
		t.Fatal(err)
	}
	h.waitCursor("int-a", changes[1].Cursor)
	all := ids(rcv.all())
	sameIDs(t, "requests after resume", all[requests:], eventIDs(changes))
}

func TestPauseAfterFailuresThenResume(t *testing.T) {
	h := newHarness(t)
	h.cfg.PauseAfter = 3
	h.cfg.ProbeEvery = 20 * time.Millisecond
	rcv := newReceiver(t)
	rcv.setRespond(func(n int, w http.ResponseWriter, r *http.Request) int {
		if n <= 5 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{Classes: []knowledge.Class{knowledge.ClassPolicy}}, rcv)
	_, stop := h.start()
	defer stop()
	changes := h.savePolicies("p", 1)

	h.waitCursor("int-a", changes[0].Cursor)
	st := h.waitState("int-a", "active again", func(s store.IntegrationState) bool {
		return s.State == knowledge.StateActive && !s.StateSince.IsZero()
	})
	h.waitOps("int-a", "resumed")
	if st.StateSince.IsZero() {
		t.Error("StateSince is zero after a pause and a resume")
	}
	versions, err := h.st.ListVersions(context.Background(), OpsArticleID("int-a"))
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, v := range versions {
		events = append(events, v.Metadata["event"])
	}
	if strings.Join(events, ",") != "paused,resumed" {
		t.Errorf("operations events = %v, want paused then resumed", events)
	}
}

func TestRetryForEndsChange(t *testing.T) {
	h := newHarness(t)
	clock := &testClock{}
	h.cfg.Now = clock.Now
	h.cfg.MaxAttempts = 0
	h.settings = knowledge.DeliverySettings{RetryFor: time.Minute}
	rcv := newReceiver(t)
	rcv.onRequest = func() { clock.Advance(25 * time.Second) }
	rcv.setRespond(func(n int, w http.ResponseWriter, r *http.Request) int {
		if r.Header.Get("webhook-id") == "evt_1" {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	_, stop := h.start()
	changes := h.savePolicies("p", 2)
	h.waitCursor("int-a", changes[1].Cursor)
	stop()

	// Each request moves the clock 25s, so after the third the first
	// failure is 75s old, past the minute, and the change is given up.
	sameIDs(t, "requested ids", ids(rcv.all()), []string{"evt_1", "evt_1", "evt_1", EventID(&changes[1])})
	attempts := h.attempts("int-a")
	checkAttempt(t, "last attempt of the first change", attempts[2], 3, store.OutcomeFailed, http.StatusBadGateway)
	ops := h.waitOps("int-a", "exhausted")
	if ops.Metadata["event"] != "exhausted" {
		t.Errorf("operations event = %q, want exhausted", ops.Metadata["event"])
	}
}

// batchReceiver accepts batches of CloudEvents, verifies each request with
// the Standard Webhooks library under any of its secrets, and records the
// event ids and subjects in arrival order.
type batchReceiver struct {
	t        *testing.T
	srv      *httptest.Server
	verifier []*standardwebhooks.Webhook
	mu       sync.Mutex
	requests int
	types    []string
	events   []batchEvent
}

type batchEvent struct {
	ID      string            `json:"id"`
	Subject string            `json:"subject"`
	Data    knowledge.Article `json:"data"`
}

func newBatchReceiver(t *testing.T, secrets ...string) *batchReceiver {
	rv := &batchReceiver{t: t}
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		rv.verifier = append(rv.verifier, wh)
	}
	rv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		for _, wh := range rv.verifier {
			if err := wh.Verify(body, r.Header); err != nil {
				t.Errorf("request %s fails verification: %v", r.Header.Get("webhook-id"), err)
				http.Error(w, "invalid signature", http.StatusUnauthorized)
				return
			}
		}
		var evs []batchEvent
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/cloudevents-batch+json") {
			if err := json.Unmarshal(body, &evs); err != nil {
				t.Errorf("batch body: %v", err)
			}
		} else {
			var ev batchEvent
			if err := json.Unmarshal(body, &ev); err != nil {
				t.Errorf("event body: %v", err)
			}
			evs = []batchEvent{ev}
		}
		rv.mu.Lock()
		rv.requests++
		rv.types = append(rv.types, r.Header.Get("Content-Type"))
		rv.events = append(rv.events, evs...)
		rv.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rv.srv.Close)
	return rv
}

func (rv *batchReceiver) snapshot() (requests int, events []batchEvent, types []string) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.requests, append([]batchEvent(nil), rv.events...), append([]string(nil), rv.types...)
}

func TestBatchSendsEventsInOrder(t *testing.T) {
	h := newHarness(t)
	h.settings = knowledge.DeliverySettings{BatchSize: 10}
	secret := NewSecret()
	rv := newBatchReceiver(t, secret)
	h.addIntegrationURL("int-a", knowledge.PatternPush, knowledge.Scope{}, rv.srv.URL, secret)
	changes := h.savePolicies("p", 25)
	_, stop := h.start()
	h.waitCursor("int-a", changes[24].Cursor)
	stop()

	requests, events, types := rv.snapshot()
	if requests != 3 {
		t.Errorf("requests = %d, want 3 for 25 events in batches of 10", requests)
	}
	for _, ct := range types {
		if !strings.HasPrefix(ct, "application/cloudevents-batch+json") {
			t.Errorf("Content-Type = %q, want application/cloudevents-batch+json", ct)
		}
	}
	var got []string
	for _, ev := range events {
		got = append(got, ev.ID)
	}
	sameIDs(t, "event ids", got, eventIDs(changes))
}

func TestCoalesceSendsNewestVersion(t *testing.T) {
	h := newHarness(t)
	h.settings = knowledge.DeliverySettings{Coalesce: true}
	secret := NewSecret()
	rv := newBatchReceiver(t, secret)
	h.addIntegrationURL("int-a", knowledge.PatternPush, knowledge.Scope{}, rv.srv.URL, secret)
	var last knowledge.Change
	for i := range 3 {
		for _, id := range []string{"alpha", "beta"} {
			a := article(id, "handbook", knowledge.ClassPolicy)
			a.Body = strings.Repeat("revision ", i+1)
			last = h.save(a)
		}
	}
	_, stop := h.start()
	h.waitCursor("int-a", last.Cursor)
	stop()

	_, events, _ := rv.snapshot()
	if len(events) != 2 {
		t.Fatalf("received %d events, want 2, the newest of each article", len(events))
	}
	for _, ev := range events {
		if ev.Data.Version != 3 {
			t.Errorf("%s arrived at version %d, want 3", ev.Subject, ev.Data.Version)
		}
	}
}

func TestRotatedSecretSignsWithBoth(t *testing.T) {
	h := newHarness(t)
	oldSecret, newSecret := NewSecret(), NewSecret()
	// The receiver verifies every request under the old and the new
	// secret, as receivers on either side of the rotation would.
	rv := newBatchReceiver(t, oldSecret, newSecret)
	h.addIntegrationURL("int-a", knowledge.PatternPush, knowledge.Scope{}, rv.srv.URL, oldSecret)
	if err := h.st.RotateSecret(context.Background(), "int-a", newSecret, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, stop := h.start()
	changes := h.savePolicies("p", 2)
	h.waitCursor("int-a", changes[1].Cursor)
	stop()
	if requests, _, _ := rv.snapshot(); requests != 2 {
		t.Errorf("requests = %d, want 2", requests)
	}
}

func TestReplayResendsSameIDs(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	m, stop := h.start()
	defer stop()
	changes := h.savePolicies("p", 3)
	h.waitCursor("int-a", changes[2].Cursor)

	started, err := m.Replay(context.Background(), "int-a", ReplayRange{FromCursor: changes[1].Cursor})
	if err != nil {
		t.Fatal(err)
	}
	if started.FromCursor != changes[1].Cursor || started.ToCursor != changes[2].Cursor {
		t.Errorf("replay range = %d to %d, want %d to %d", started.FromCursor, started.ToCursor, changes[1].Cursor, changes[2].Cursor)
	}
	rcv.waitSucceeded(5)
	sameIDs(t, "requests", ids(rcv.all()), append(eventIDs(changes), eventIDs(changes[1:])...))

	_, err = m.Replay(context.Background(), "int-a", ReplayRange{FromCursor: changes[2].Cursor + 1})
	if !errors.Is(err, ErrNothingToReplay) {
		t.Errorf("replay past the push cursor: error %v, want ErrNothingToReplay", err)
	}
}

// waitOps waits until the integration's operations article reports event,
// or fails the test after waitTimeout.
func (h *harness) waitOps(integrationID, event string) knowledge.Article {
	h.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		a, err := h.st.GetArticle(context.Background(), OpsArticleID(integrationID))
		if err == nil && a.Metadata["event"] == event {
			return a
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("operations article of %s: %v, event %q; want event %q", integrationID, err, a.Metadata["event"], event)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPrunedBacklogSendsOneResync(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	ctx := context.Background()
	old := time.Now().Add(-48 * time.Hour)
	for _, id := range []string{"a", "b", "c"} {
		a := article(id, "hr", knowledge.ClassPolicy)
		a.Normalize()
		if _, err := h.st.SaveArticle(ctx, a, store.SaveOptions{Now: old}); err != nil {
			t.Fatal(err)
		}
	}
	latest := h.save(article("d", "hr", knowledge.ClassPolicy))
	if n, err := h.st.PruneChanges(ctx, time.Now().Add(-time.Hour)); err != nil || n != 3 {
		t.Fatalf("PruneChanges = %d, %v; want 3 entries removed", n, err)
	}

	_, stop := h.start()
	h.waitCursor("int-a", latest.Cursor)
	stop()
	sameIDs(t, "requests", ids(rcv.all()), []string{"resync_" + strconv.FormatInt(latest.Cursor, 10), EventID(&latest)})
	if got := rcv.all()[0].Event.Type; got != ResyncEventType {
		t.Errorf("first event type = %q, want %q", got, ResyncEventType)
	}
	if st := h.state("int-a"); !strings.HasPrefix(st.LastError, "resync required") {
		t.Errorf("last error = %q, want it to say a resync is required", st.LastError)
	}
}
