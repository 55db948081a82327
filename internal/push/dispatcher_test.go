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
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

func TestDeliverInOrder(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	before := h.savePolicies("early", 3) // written before the hub starts
	_, stop := h.start()
	after := h.savePolicies("late", 3)

	rcv.waitSucceeded(6)
	h.waitCursor("int-a", after[2].Cursor)
	stop()
	want := eventIDs(append(before, after...))
	sameIDs(t, "delivered ids", ids(rcv.all()), want)

	s := h.state("int-a")
	if s.PushCursor != after[2].Cursor {
		t.Errorf("PushCursor = %d, want %d", s.PushCursor, after[2].Cursor)
	}
	if s.LastSuccessAt.IsZero() {
		t.Error("LastSuccessAt is not set")
	}
	attempts := h.attempts("int-a")
	if len(attempts) != 6 {
		t.Fatalf("recorded %d attempts, want 6", len(attempts))
	}
	for i, a := range attempts {
		checkAttempt(t, fmt.Sprintf("attempt %d", i), a, 1, store.OutcomeDelivered, http.StatusNoContent)
		if a.EventID != want[i] {
			t.Errorf("attempt %d has event id %s, want %s", i, a.EventID, want[i])
		}
	}
	delivered := rcv.all()[0].Event
	if delivered.Type != "khub.article.created" {
		t.Errorf("first event type = %q, want khub.article.created", delivered.Type)
	}
	if delivered.Subject != "early-0" {
		t.Errorf("first event subject = %q, want early-0", delivered.Subject)
	}
	if delivered.Data.Version != 1 {
		t.Errorf("first event data.version = %d, want 1", delivered.Data.Version)
	}
}

func TestRetryAfterServerErrors(t *testing.T) {
	const failures = 3
	h := newHarness(t)
	clock := &testClock{}
	h.cfg.Now = clock.Now
	rcv := newReceiver(t)
	// Each request moves the clock a second, so each retry must carry a
	// later webhook-timestamp.
	rcv.onRequest = func() { clock.Advance(time.Second) }
	rcv.setRespond(func(n int, w http.ResponseWriter, r *http.Request) int {
		if n <= failures {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	_, stop := h.start()
	changes := h.savePolicies("p", 3)

	rcv.waitSucceeded(3)
	h.waitCursor("int-a", changes[2].Cursor)
	stop()
	all := rcv.all()
	if len(all) != failures+3 {
		t.Fatalf("receiver got %d requests, want %d", len(all), failures+3)
	}
	sameIDs(t, "successful ids", ids(rcv.succeeded()), eventIDs(changes))
	first := all[:failures+1]
	for i, d := range first {
		if d.ID != EventID(&changes[0]) {
			t.Errorf("request %d has webhook-id %s, want %s", i, d.ID, EventID(&changes[0]))
		}
	}
	if !bodiesEqual(first) {
		t.Error("retries of one change carry different bodies")
	}
	for i := 1; i < len(first); i++ {
		prev, _ := strconv.ParseInt(first[i-1].Timestamp, 10, 64)
		cur, _ := strconv.ParseInt(first[i].Timestamp, 10, 64)
		if cur <= prev {
			t.Errorf("retry %d has webhook-timestamp %d, not after %d", i, cur, prev)
		}
	}

	attempts := h.attempts("int-a")
	if len(attempts) != failures+3 {
		t.Fatalf("recorded %d attempts, want %d", len(attempts), failures+3)
	}
	for i := range failures {
		a := attempts[i]
		checkAttempt(t, fmt.Sprintf("attempt %d", i), a, i+1, store.OutcomeRetrying, http.StatusInternalServerError)
		if a.Error != "HTTP 500 Internal Server Error" {
			t.Errorf("attempt %d error = %q, want HTTP 500 Internal Server Error", i, a.Error)
		}
	}
	checkAttempt(t, "successful attempt", attempts[failures], failures+1, store.OutcomeDelivered, http.StatusOK)
	s := h.state("int-a")
	if s.Retry != (store.RetryState{}) {
		t.Errorf("Retry = %+v after recovery, want none", s.Retry)
	}
	if s.LastError != "HTTP 500 Internal Server Error" {
		t.Errorf("LastError = %q, want the 500", s.LastError)
	}
	if !s.LastSuccessAt.After(s.LastErrorAt) {
		t.Errorf("LastSuccessAt %s is not after LastErrorAt %s", s.LastSuccessAt, s.LastErrorAt)
	}
}

func TestReceiverDownThenBack(t *testing.T) {
	h := newHarness(t)
	addr := closedPortAddr(t)
	secret := NewSecret()
	h.addIntegrationURL("int-a", knowledge.PatternPush, knowledge.Scope{}, "http://"+addr+"/hooks/khub", secret)
	_, stop := h.start()
	changes := h.savePolicies("down", 4)

	// Wait until several connection attempts failed and were recorded.
	h.waitState("int-a", "three refused attempts", func(s store.IntegrationState) bool {
		return s.Retry.Attempt >= 3
	})
	s := h.state("int-a")
	if !strings.Contains(s.LastError, "connection refused") {
		t.Errorf("LastError = %q, want connection refused", s.LastError)
	}
	if s.Retry.Cursor != changes[0].Cursor {
		t.Errorf("Retry.Cursor = %d, want the first change %d", s.Retry.Cursor, changes[0].Cursor)
	}
	changes = append(changes, h.savePolicies("still-down", 2)...)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again, so the receiver cannot come back: %v", addr, err)
	}
	rcv := newReceiverOn(t, ln, secret)
	changes = append(changes, h.savePolicies("back", 2)...)

	rcv.waitSucceeded(len(changes))
	h.waitCursor("int-a", changes[len(changes)-1].Cursor)
	stop()
	sameIDs(t, "delivered ids", ids(rcv.all()), eventIDs(changes))
}

func TestPermanentFailureMovesOn(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	rcv.setRespond(func(int, http.ResponseWriter, *http.Request) int { return http.StatusForbidden })
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	_, stop := h.start()
	changes := h.savePolicies("p", 3)

	rcv.waitFor("3 requests", func(all []delivery) bool { return len(all) >= 3 })
	h.waitState("int-a", "cursor past the last change", func(s store.IntegrationState) bool {
		return s.PushCursor == changes[2].Cursor
	})
	stop()
	sameIDs(t, "requested ids", ids(rcv.all()), eventIDs(changes))

	s := h.state("int-a")
	if s.LastError != "HTTP 403 Forbidden" {
		t.Errorf("LastError = %q, want HTTP 403 Forbidden", s.LastError)
	}
	if s.LastErrorAt.IsZero() {
		t.Error("LastErrorAt is not set")
	}
	if s.Retry != (store.RetryState{}) {
		t.Errorf("Retry = %+v, want none", s.Retry)
	}
	attempts := h.attempts("int-a")
	if len(attempts) != 3 {
		t.Fatalf("recorded %d attempts, want 3", len(attempts))
	}
	for i, a := range attempts {
		checkAttempt(t, fmt.Sprintf("attempt %d", i), a, 1, store.OutcomeFailed, http.StatusForbidden)
	}
}

func TestRedirectIsPermanentFailure(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	rcv.setRespond(func(n int, w http.ResponseWriter, r *http.Request) int {
		w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
		return http.StatusFound
	})
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	_, stop := h.start()
	changes := h.savePolicies("p", 1)

	h.waitState("int-a", "cursor past the change", func(s store.IntegrationState) bool {
		return s.PushCursor == changes[0].Cursor
	})
	stop()
	if n := len(rcv.all()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
	if s := h.state("int-a"); !strings.HasPrefix(s.LastError, "HTTP 302 Found: redirects are not followed") {
		t.Errorf("LastError = %q, want the 302 explained", s.LastError)
	}
}

func TestMaxAttemptsEndsChange(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxAttempts = 3
	rcv := newReceiver(t)
	rcv.setRespond(func(n int, w http.ResponseWriter, r *http.Request) int {
		if r.Header.Get("webhook-id") == "evt_1" {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	_, stop := h.start()
	changes := h.savePolicies("p", 2)

	rcv.waitSucceeded(1)
	h.waitCursor("int-a", changes[1].Cursor)
	stop()
	sameIDs(t, "requested ids", ids(rcv.all()), []string{"evt_1", "evt_1", "evt_1", EventID(&changes[1])})
	attempts := h.attempts("int-a")
	if len(attempts) != 4 {
		t.Fatalf("recorded %d attempts, want 4", len(attempts))
	}
	checkAttempt(t, "third attempt", attempts[2], 3, store.OutcomeFailed, http.StatusBadGateway)
}

func TestRetryAfterHeaderHonoured(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxBackoff = 5 * time.Second
	rcv := newReceiver(t)
	rcv.setRespond(func(n int, w http.ResponseWriter, r *http.Request) int {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			return http.StatusTooManyRequests
		}
		return http.StatusOK
	})
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	_, stop := h.start()
	changes := h.savePolicies("p", 1)

	rcv.waitSucceeded(1)
	h.waitCursor("int-a", changes[0].Cursor)
	stop()
	all := rcv.all()
	if len(all) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(all))
	}
	// Without Retry-After the wait would be at most InitialBackoff (1ms).
	// The webhook timestamp has one-second resolution, so the arrival
	// times are compared instead.
	if gap := all[1].At.Sub(all[0].At); gap < 950*time.Millisecond {
		t.Errorf("retry came %s after the 429, want at least the 1s of Retry-After", gap)
	}
}

func TestRetryAfterCappedAtMaxBackoff(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxBackoff = 20 * time.Millisecond
	rcv := newReceiver(t)
	rcv.setRespond(func(n int, w http.ResponseWriter, r *http.Request) int {
		if n == 1 {
			w.Header().Set("Retry-After", "3600")
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	_, stop := h.start()
	changes := h.savePolicies("p", 1)

	rcv.waitSucceeded(1)
	h.waitCursor("int-a", changes[0].Cursor)
	stop()
	all := rcv.all()
	if gap := all[1].At.Sub(all[0].At); gap > 2*time.Second {
		t.Errorf("retry came %s after the 503, want about MaxBackoff (20ms)", gap)
	}
}

func TestAttemptTimeoutRetried(t *testing.T) {
	h := newHarness(t)
	h.cfg.Timeout = 300 * time.Millisecond
	rcv := newReceiver(t)
	rcv.setRespond(func(n int, w http.ResponseWriter, r *http.Request) int {
		if n == 1 {
			<-r.Context().Done() // hangs until the attempt times out
		}
		return http.StatusOK
	})
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	_, stop := h.start()
	changes := h.savePolicies("p", 1)

	h.waitCursor("int-a", changes[0].Cursor)
	stop()
	// The receiver responds to every later attempt at once, but on a loaded
	// machine one may still miss the 300 ms, so the attempts between the
	// first and the delivered one may be more timeouts.
	attempts := h.attempts("int-a")
	if len(attempts) < 2 {
		t.Fatalf("recorded %d attempts, want a timeout and then a delivery", len(attempts))
	}
	for i, a := range attempts[:len(attempts)-1] {
		checkAttempt(t, "timed-out attempt", a, i+1, store.OutcomeRetrying, 0)
		if a.Error != "timed out after 300ms" {
			t.Errorf("attempt %d error = %q, want %q", i+1, a.Error, "timed out after 300ms")
		}
	}
	last := len(attempts) - 1
	checkAttempt(t, "last attempt", attempts[last], last+1, store.OutcomeDelivered, http.StatusOK)
}

func TestStopCancelsHangingAttempt(t *testing.T) {
	h := newHarness(t)
	h.cfg.Timeout = time.Minute
	rcv := newReceiver(t)
	arrived := make(chan struct{}, 1)
	rcv.onRequest = func() {
		select {
		case arrived <- struct{}{}:
		default:
		}
	}
	rcv.setRespond(func(n int, w http.ResponseWriter, r *http.Request) int {
		if n == 1 {
			<-r.Context().Done() // hangs until khub gives up on the request
		}
		return http.StatusOK
	})
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	_, stop := h.start()
	changes := h.savePolicies("p", 1)

	select {
	case <-arrived:
	case <-time.After(waitTimeout):
		t.Fatal("the first request never arrived")
	}
	began := time.Now()
	stop()
	took := time.Since(began)
	t.Logf("Stop returned %s after it was called with an attempt in flight", took)
	if took > 2*time.Second {
		t.Errorf("Stop took %s with an attempt in flight, want it prompt", took)
	}
	if n := len(h.attempts("int-a")); n != 0 {
		t.Errorf("recorded %d attempts for the interrupted request, want 0", n)
	}
	s := h.state("int-a")
	if s.PushCursor != 0 {
		t.Errorf("PushCursor after Stop = %d, want 0", s.PushCursor)
	}
	if s.Retry != (store.RetryState{}) {
		t.Errorf("Retry after Stop = %+v, want none", s.Retry)
	}
	if s.LastError != "" {
		t.Errorf("LastError after Stop = %q, want none", s.LastError)
	}

	_, stop = h.start()
	rcv.waitSucceeded(1)
	h.waitCursor("int-a", changes[0].Cursor)
	stop()
	sameIDs(t, "requested ids", ids(rcv.all()), []string{EventID(&changes[0]), EventID(&changes[0])})
	attempts := h.attempts("int-a")
	if len(attempts) != 1 {
		t.Fatalf("recorded %d attempts after restart, want 1", len(attempts))
	}
	checkAttempt(t, "attempt after restart", attempts[0], 1, store.OutcomeDelivered, http.StatusOK)
	if attempts[0].EventID != EventID(&changes[0]) {
		t.Errorf("attempt after restart has event id %s, want %s", attempts[0].EventID, EventID(&changes[0]))
	}
}

func TestRestartDeliversEachChangeOnce(t *testing.T) {
	h := newHarness(t)
	first, second := newReceiver(t), newReceiver(t)
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, first)
	h.addIntegration("int-b", knowledge.PatternPush, knowledge.Scope{}, second)
	_, stop := h.start()
	changes := h.savePolicies("before", 3)
	first.waitSucceeded(3)
	second.waitSucceeded(3)
	h.waitCursor("int-a", changes[2].Cursor)
	h.waitCursor("int-b", changes[2].Cursor)
	stop()

	// Six changes commit while the hub is down.
	changes = append(changes, h.savePolicies("while-down", 6)...)
	_, stop = h.start()
	first.waitSucceeded(9)
	second.waitSucceeded(9)
	h.waitCursor("int-a", changes[8].Cursor)
	h.waitCursor("int-b", changes[8].Cursor)
	stop()

	want := eventIDs(changes)
	sameIDs(t, "first receiver", ids(first.all()), want)
	sameIDs(t, "second receiver", ids(second.all()), want)
}

func TestDeadIntegrationDoesNotBlockHealthy(t *testing.T) {
	h := newHarness(t)
	dead, healthy := newReceiver(t), newReceiver(t)
	dead.setRespond(func(int, http.ResponseWriter, *http.Request) int { return http.StatusInternalServerError })
	h.addIntegration("int-dead", knowledge.PatternPush, knowledge.Scope{}, dead)
	h.addIntegration("int-ok", knowledge.PatternPush, knowledge.Scope{}, healthy)
	_, stop := h.start()
	changes := h.savePolicies("p", 5)

	healthy.waitSucceeded(5)
	h.waitCursor("int-ok", changes[4].Cursor)
	dead.waitFor("two attempts at the first change", func(all []delivery) bool { return len(all) >= 2 })
	stop()
	sameIDs(t, "healthy receiver", ids(healthy.all()), eventIDs(changes))
	for i, d := range dead.all() {
		if d.ID != EventID(&changes[0]) {
			t.Errorf("dead receiver request %d is %s, want only the first change %s", i, d.ID, EventID(&changes[0]))
		}
	}
	s := h.state("int-dead")
	if s.PushCursor != 0 {
		t.Errorf("dead PushCursor = %d, want 0", s.PushCursor)
	}
	if s.Retry.Cursor != changes[0].Cursor {
		t.Errorf("dead Retry.Cursor = %d, want %d", s.Retry.Cursor, changes[0].Cursor)
	}
}

func TestHybridPushesTimeSensitiveAndDeprecations(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	h.addIntegration("int-h", knowledge.PatternHybrid, knowledge.Scope{}, rcv)
	_, stop := h.start()

	runbook := article("restart-db", "ops", knowledge.ClassRunbook)
	h.save(runbook)
	runbook.Body = "Edited steps."
	h.save(runbook)
	policy := h.save(article("leave", "hr", knowledge.ClassPolicy))
	runbook.Status = knowledge.StatusDeprecated
	deprecation := h.save(runbook)

	rcv.waitSucceeded(2)
	h.waitState("int-h", "cursor at the head", func(s store.IntegrationState) bool {
		return s.PushCursor == deprecation.Cursor
	})
	stop()
	all := rcv.all()
	sameIDs(t, "hybrid ids", ids(all), []string{EventID(&policy), EventID(&deprecation)})
	if all[1].Event.Type != "khub.article.deprecated" {
		t.Errorf("second event type = %q, want khub.article.deprecated", all[1].Event.Type)
	}
	if all[1].Event.Data.Status != knowledge.StatusDeprecated {
		t.Errorf("second event data.status = %q, want deprecated", all[1].Event.Data.Status)
	}
}

func TestScopeLimitsDeliveries(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	h.addIntegration("int-hr", knowledge.PatternPush, knowledge.Scope{Collections: []string{"hr"}}, rcv)
	_, stop := h.start()

	inScope := h.save(article("leave", "hr", knowledge.ClassPolicy))
	h.save(article("deploy", "ops", knowledge.ClassPolicy))
	alsoInScope := h.save(article("onboarding", "hr", knowledge.ClassRunbook))
	last := h.save(article("oncall", "ops", knowledge.ClassRunbook))

	rcv.waitSucceeded(2)
	h.waitState("int-hr", "cursor at the head", func(s store.IntegrationState) bool {
		return s.PushCursor == last.Cursor
	})
	stop()
	sameIDs(t, "scoped ids", ids(rcv.all()), []string{EventID(&inScope), EventID(&alsoInScope)})
}

// TestLeavingScopeSendsRemoval moves an article out of two integrations'
// scope and checks that each gets a removal event that carries neither
// the new version's content nor its collection, and that later changes
// outside the scope are not sent.
func TestLeavingScopeSendsRemoval(t *testing.T) {
	h := newHarness(t)
	pushRcv, hybridRcv := newReceiver(t), newReceiver(t)
	hr := knowledge.Scope{Collections: []string{"hr"}}
	h.addIntegration("int-push", knowledge.PatternPush, hr, pushRcv)
	h.addIntegration("int-hybrid", knowledge.PatternHybrid, hr, hybridRcv)
	_, stop := h.start()

	a := article("onboarding", "hr", knowledge.ClassRunbook)
	created := h.save(a)
	a.Collection = "finance"
	a.Body = "Quarterly figures before release."
	moved := h.save(a)
	a.Body = "Edited outside the scope."
	last := h.save(a)

	pushRcv.waitSucceeded(2)
	hybridRcv.waitSucceeded(1)
	for _, id := range []string{"int-push", "int-hybrid"} {
		h.waitState(id, "cursor at the head", func(s store.IntegrationState) bool { return s.PushCursor == last.Cursor })
	}
	stop()

	pushed := pushRcv.all()
	sameIDs(t, "push ids", ids(pushed), []string{EventID(&created), EventID(&moved)})
	// A runbook is not time-sensitive, so hybrid sends only the removal.
	sameIDs(t, "hybrid ids", ids(hybridRcv.all()), []string{EventID(&moved)})
	for _, d := range []delivery{pushed[1], hybridRcv.all()[0]} {
		if d.Event.Type != RemovedEventType {
			t.Errorf("event %s type = %q, want %q", d.ID, d.Event.Type, RemovedEventType)
		}
		if d.Event.Subject != "onboarding" || d.Event.Data.ID != "onboarding" || d.Event.Data.Version != moved.Version {
			t.Errorf("event %s names %s (data %s@%d), want onboarding@%d", d.ID, d.Event.Subject, d.Event.Data.ID, d.Event.Data.Version, moved.Version)
		}
		for _, secret := range []string{"Quarterly", "finance", "runbook", "Article onboarding"} {
			if bytes.Contains(d.Body, []byte(secret)) {
				t.Errorf("removal %s carries %q from the version outside the scope: %s", d.ID, secret, d.Body)
			}
		}
	}
	// Delivery history records the removal type.
	for _, id := range []string{"int-push", "int-hybrid"} {
		var types []string
		for _, a := range h.attempts(id) {
			types = append(types, fmt.Sprintf("%d:%s", a.Cursor, a.Type))
		}
		if want := fmt.Sprintf("%d:removed", moved.Cursor); !slices.Contains(types, want) {
			t.Errorf("%s history %v, want %s", id, types, want)
		}
	}
}

func TestRetryStateResumesAfterRestart(t *testing.T) {
	h := newHarness(t)
	// The first manager must stop before the retry is due, with margin
	// for a loaded machine.
	h.cfg.InitialBackoff = time.Second
	h.cfg.MaxBackoff = time.Second
	h.cfg.Rand = func() float64 { return 0.999 }
	rcv := newReceiver(t)
	var mu sync.Mutex
	healthy := false
	rcv.setRespond(func(int, http.ResponseWriter, *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		if healthy {
			return http.StatusOK
		}
		return http.StatusServiceUnavailable
	})
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	_, stop := h.start()
	changes := h.savePolicies("p", 1)

	persisted := h.waitState("int-a", "a persisted retry", func(s store.IntegrationState) bool {
		return s.Retry.Cursor != 0
	})
	stop()
	if persisted.Retry.Cursor != changes[0].Cursor {
		t.Fatalf("persisted Retry.Cursor = %d, want %d", persisted.Retry.Cursor, changes[0].Cursor)
	}
	if persisted.Retry.Attempt != 1 {
		t.Fatalf("persisted Retry.Attempt = %d, want 1", persisted.Retry.Attempt)
	}
	if !persisted.Retry.DueAt.After(time.Now()) {
		t.Fatalf("persisted due time %s has already passed; the test needs it ahead", persisted.Retry.DueAt)
	}

	mu.Lock()
	healthy = true
	mu.Unlock()
	_, stop = h.start()
	rcv.waitSucceeded(1)
	h.waitCursor("int-a", changes[0].Cursor)
	stop()

	all := rcv.all()
	sameIDs(t, "requested ids", ids(all), []string{EventID(&changes[0]), EventID(&changes[0])})
	if all[1].At.Before(persisted.Retry.DueAt) {
		t.Errorf("retry after restart arrived at %s, before the persisted due time %s", all[1].At, persisted.Retry.DueAt)
	}
	if !bodiesEqual(all) {
		t.Error("the retry after restart carries a different body")
	}
	attempts := h.attempts("int-a")
	if len(attempts) != 2 {
		t.Fatalf("recorded %d attempts, want 2", len(attempts))
	}
	checkAttempt(t, "first attempt", attempts[0], 1, store.OutcomeRetrying, http.StatusServiceUnavailable)
	checkAttempt(t, "attempt after restart", attempts[1], 2, store.OutcomeDelivered, http.StatusOK)
	if s := h.state("int-a"); s.Retry != (store.RetryState{}) {
		t.Errorf("Retry = %+v after delivery, want none", s.Retry)
	}
}

func TestResumeContinuesAttemptCount(t *testing.T) {
	h := newHarness(t)
	h.cfg.MaxBackoff = time.Second // above the 100ms wait, which must not be capped
	rcv := newReceiver(t)
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	changes := h.savePolicies("p", 2)
	due := time.Now().Add(100 * time.Millisecond)
	err := h.st.CommitDelivery(context.Background(), store.DeliveryCommit{
		IntegrationID: "int-a",
		Retry:         store.RetryState{Cursor: changes[0].Cursor, Attempt: 4, DueAt: due},
		LastError:     "HTTP 503 Service Unavailable",
		LastErrorAt:   time.Now(),
	})
	if err != nil {
		t.Fatalf("seed retry state: %v", err)
	}

	_, stop := h.start()
	rcv.waitSucceeded(2)
	h.waitCursor("int-a", changes[1].Cursor)
	stop()
	if first := rcv.all()[0]; first.At.Before(due) {
		t.Errorf("resumed attempt arrived at %s, before its due time %s", first.At, due)
	}
	attempts := h.attempts("int-a")
	if len(attempts) != 2 {
		t.Fatalf("recorded %d attempts, want 2", len(attempts))
	}
	checkAttempt(t, "resumed attempt", attempts[0], 5, store.OutcomeDelivered, http.StatusNoContent)
	checkAttempt(t, "next change", attempts[1], 1, store.OutcomeDelivered, http.StatusNoContent)
}

func TestResumeWaitCappedAtMaxBackoff(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	changes := h.savePolicies("p", 1)
	err := h.st.CommitDelivery(context.Background(), store.DeliveryCommit{
		IntegrationID: "int-a",
		Retry:         store.RetryState{Cursor: changes[0].Cursor, Attempt: 2, DueAt: time.Now().Add(time.Hour)},
	})
	if err != nil {
		t.Fatalf("seed retry state: %v", err)
	}

	began := time.Now()
	_, stop := h.start()
	rcv.waitSucceeded(1)
	h.waitCursor("int-a", changes[0].Cursor)
	stop()
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("resumed delivery took %s, want about MaxBackoff (10ms)", took)
	}
	attempts := h.attempts("int-a")
	if len(attempts) != 1 {
		t.Fatalf("recorded %d attempts, want 1", len(attempts))
	}
	checkAttempt(t, "resumed attempt", attempts[0], 3, store.OutcomeDelivered, http.StatusNoContent)
}

func TestUnicodeBodyIdenticalAcrossRetries(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	rcv.setRespond(func(n int, w http.ResponseWriter, r *http.Request) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	_, stop := h.start()

	a := article("cafe-policy", "hr", knowledge.ClassPolicy)
	a.Title = "Café “quiet hours” 😀"
	a.Body = "Prices: 3.50 € and 0.1 + 0.2 ≠ 0.3; markup <b>&amp;</b> stays <&>; line\u2028separator"
	a.Metadata = map[string]string{}
	for i := range 50 {
		a.Metadata[fmt.Sprintf("k%02d", 49-i)] = fmt.Sprintf("%d.%03d “é” 😀 <&>", i, i*7)
	}
	change := h.save(a)

	rcv.waitSucceeded(1)
	h.waitCursor("int-a", change.Cursor)
	stop()
	all := rcv.all()
	if len(all) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(all))
	}
	if !bodiesEqual(all) {
		t.Fatal("retries carry different bodies")
	}
	body := all[0].Body
	if !json.Valid(body) {
		t.Fatalf("body is not valid JSON: %s", body)
	}
	if !bytes.Contains(body, []byte("<&>")) {
		t.Error("body escapes <&>")
	}
	stored, err := h.st.GetArticle(context.Background(), "cafe-policy")
	if err != nil {
		t.Fatalf("get article: %v", err)
	}
	rebuilt, err := BuildEvent(h.cfg.Source, &knowledge.Change{
		Cursor: change.Cursor, ArticleID: change.ArticleID, Version: change.Version,
		Type: change.Type, Time: change.Time, Article: stored,
	})
	if err != nil {
		t.Fatalf("BuildEvent: %v", err)
	}
	if !bytes.Equal(rebuilt, body) {
		t.Errorf("BuildEvent from the stored article differs from the delivered body:\n%s\n%s", rebuilt, body)
	}

	got := all[0].Event.Data
	if got.Title != a.Title {
		t.Errorf("title round-trips as %q, want %q", got.Title, a.Title)
	}
	if got.Body != a.Body {
		t.Errorf("body round-trips as %q, want %q", got.Body, a.Body)
	}
	if len(got.Metadata) != 50 {
		t.Fatalf("metadata has %d keys, want 50", len(got.Metadata))
	}
	for k, v := range a.Metadata {
		if got.Metadata[k] != v {
			t.Errorf("metadata %s = %q, want %q", k, got.Metadata[k], v)
		}
	}
}

func TestManagerAddAndRemove(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	m, stop := h.start()
	defer stop()

	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	m.Add(context.Background(), h.state("int-a"))
	m.Add(context.Background(), h.state("int-a")) // a second Add of a running integration is ignored
	changes := h.savePolicies("p", 2)
	rcv.waitSucceeded(2)
	h.waitCursor("int-a", changes[1].Cursor)

	m.Remove("int-a")
	if s := h.state("int-a"); s.PushCursor != changes[1].Cursor {
		t.Errorf("PushCursor after Remove = %d, want %d written by the stopping dispatcher", s.PushCursor, changes[1].Cursor)
	}
	late := h.savePolicies("after-remove", 1)
	// int-b sends to the same receiver, so its three deliveries show that
	// delivery is prompt, and a removed dispatcher that still ran would add
	// a second copy of the late change.
	h.addIntegration("int-b", knowledge.PatternPush, knowledge.Scope{}, rcv)
	m.Add(context.Background(), h.state("int-b"))
	rcv.waitSucceeded(5)
	h.waitCursor("int-b", late[0].Cursor)
	stop()
	all := ids(rcv.all())
	if len(all) != 5 {
		t.Errorf("receiver got requests %v, want 2 from int-a and 3 from int-b", all)
	}
	copies := 0
	for _, id := range all {
		if id == EventID(&late[0]) {
			copies++
		}
	}
	if copies != 1 {
		t.Errorf("late change arrived %d times, want once from int-b", copies)
	}
}

func TestManagerIgnoresPullIntegrations(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	h.addIntegration("int-pull", knowledge.PatternPull, knowledge.Scope{}, rcv)
	m, stop := h.start()
	m.Add(context.Background(), h.state("int-pull"))
	// A push integration added afterwards shows when deliveries happen.
	other := newReceiver(t)
	h.addIntegration("int-push", knowledge.PatternPush, knowledge.Scope{}, other)
	m.Add(context.Background(), h.state("int-push"))
	changes := h.savePolicies("p", 1)

	other.waitSucceeded(1)
	h.waitCursor("int-push", changes[0].Cursor)
	stop()
	if n := len(rcv.all()); n != 0 {
		t.Errorf("pull integration got %d webhook requests, want 0", n)
	}
}

func TestLogsOmitSecretsAndDeduplicate(t *testing.T) {
	h := newHarness(t)
	var logs lockedBuffer
	h.cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rcv := newReceiver(t)
	var signatures []string
	var mu sync.Mutex
	rcv.setRespond(func(n int, w http.ResponseWriter, r *http.Request) int {
		mu.Lock()
		signatures = append(signatures, r.Header.Get("webhook-signature"))
		mu.Unlock()
		if n <= 5 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	const pathToken, queryToken = "path-t0ken-abc", "query-t0ken-xyz"
	h.addIntegrationURL("int-a", knowledge.PatternPush, knowledge.Scope{},
		rcv.srv.URL+"/hooks/"+pathToken+"?token="+queryToken, rcv.secret)
	_, stop := h.start()
	changes := h.savePolicies("p", 1)
	rcv.waitSucceeded(1)
	h.waitCursor("int-a", changes[0].Cursor)
	stop()

	out := logs.String()
	secret := strings.TrimPrefix(rcv.secret, "whsec_")
	forbidden := []string{secret, pathToken, queryToken}
	mu.Lock()
	for _, sig := range signatures {
		forbidden = append(forbidden, strings.TrimPrefix(sig, "v1,"))
	}
	mu.Unlock()
	for _, f := range forbidden {
		if strings.Contains(out, f) {
			t.Errorf("logs contain %q:\n%s", f, out)
		}
	}
	if n := strings.Count(out, "webhook delivery failed; will retry"); n != 1 {
		t.Errorf("logged %d retry lines for five identical failures, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "webhook delivery recovered") || !strings.Contains(out, "failed_attempts=5") {
		t.Errorf("logs lack the recovery line with failed_attempts=5:\n%s", out)
	}
	for _, key := range []string{"integration_id=int-a", "event_id=evt_1", "attempt=1", "status=500", `error="HTTP 500 Internal Server Error"`} {
		if !strings.Contains(out, key) {
			t.Errorf("logs lack %s:\n%s", key, out)
		}
	}
}

func TestMetricsCountOutcomes(t *testing.T) {
	h := newHarness(t)
	reg := prometheus.NewRegistry()
	h.cfg.Metrics = NewMetrics(reg)
	rcv := newReceiver(t)
	rcv.setRespond(func(n int, w http.ResponseWriter, r *http.Request) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	m, stop := h.start()
	defer stop()
	changes := h.savePolicies("p", 2)
	rcv.waitSucceeded(2)
	h.waitState("int-a", "both changes recorded", func(s store.IntegrationState) bool {
		return s.PushCursor == changes[1].Cursor
	})

	counts := map[string]float64{
		store.OutcomeDelivered: 2,
		store.OutcomeRetrying:  1,
		store.OutcomeFailed:    0,
	}
	for outcome, want := range counts {
		got := metricValue(t, reg, "khub_push_deliveries_total", map[string]string{"integration_id": "int-a", "outcome": outcome})
		if got != want {
			t.Errorf("khub_push_deliveries_total{outcome=%q} = %v, want %v", outcome, got, want)
		}
	}
	if got := metricValue(t, reg, "khub_push_delivery_latency_seconds", map[string]string{"integration_id": "int-a"}); got != 2 {
		t.Errorf("latency histogram counted %v deliveries, want 2", got)
	}
	if got := metricValue(t, reg, "khub_push_attempt_duration_seconds", map[string]string{"integration_id": "int-a"}); got != 3 {
		t.Errorf("attempt duration histogram counted %v attempts, want 3", got)
	}

	m.Remove("int-a")
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if len(f.GetMetric()) != 0 {
			t.Errorf("%s keeps %d series after Remove, want 0", f.GetName(), len(f.GetMetric()))
		}
	}
}

// metricValue returns a counter's value or a histogram's sample count for
// the series with the given labels, or 0 when there is no such series.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue series
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return 0
}

func TestManagerStartTwice(t *testing.T) {
	h := newHarness(t)
	m, _ := h.start()
	if err := m.Start(context.Background()); err == nil {
		t.Error("second Start succeeded, want an error")
	}
}

// lockedBuffer is a bytes.Buffer that the log handler and the test can
// use from different goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var _ io.Writer = (*lockedBuffer)(nil)

func TestLeaseHandsOverBetweenNodes(t *testing.T) {
	h := newHarness(t)
	rcv := newReceiver(t)
	h.addIntegration("int-a", knowledge.PatternPush, knowledge.Scope{}, rcv)
	// Long enough that a busy test machine does not delay a renewal past
	// it; the handover below uses the lease release, not its expiry.
	h.cfg.LeaseTTL = time.Second

	h.cfg.Node = "node-a"
	_, stopA := h.start()
	h.cfg.Node = "node-b"
	_, stopB := h.start()
	defer stopB()

	first := h.savePolicies("before", 3)
	rcv.waitSucceeded(3)
	h.waitCursor("int-a", first[2].Cursor)

	// node-a holds the lease because it started first, and its clean stop
	// releases it, so node-b continues from the stored cursor.
	stopA()
	later := h.savePolicies("after", 2)
	rcv.waitSucceeded(5)
	h.waitCursor("int-a", later[1].Cursor)
	stopB()

	counts := map[string]int{}
	for _, id := range ids(rcv.all()) {
		counts[id]++
	}
	for _, c := range append(first, later...) {
		if n := counts[EventID(&c)]; n != 1 {
			t.Errorf("change %d arrived %d times, want once: one node dispatches at a time", c.Cursor, n)
		}
	}
}
