package push

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// failingStore fails CommitDeliveries while failing is set.
type failingStore struct {
	store.Store
	failing atomic.Bool
}

var errWriteFailed = errors.New("disk I/O error")

func (s *failingStore) CommitDeliveries(ctx context.Context, commits []store.DeliveryCommit) ([]int, error) {
	if s.failing.Load() {
		return nil, errWriteFailed
	}
	return s.Store.CommitDeliveries(ctx, commits)
}

func TestMergeCommitKeepsNewestState(t *testing.T) {
	older := store.DeliveryCommit{
		IntegrationID: "a",
		Attempts:      []store.Attempt{{EventID: "evt_1"}},
		PushCursor:    5,
		Retry:         store.RetryState{Cursor: 6, Attempt: 1},
		LastError:     "timed out",
		LastErrorAt:   time.Unix(10, 0),
		LastSuccessAt: time.Unix(9, 0),
	}
	newer := store.DeliveryCommit{
		IntegrationID: "a",
		Attempts:      []store.Attempt{{EventID: "evt_6"}},
		PushCursor:    4,
		LastSuccessAt: time.Unix(11, 0),
	}
	mergeCommit(&older, &newer)
	if len(older.Attempts) != 2 || older.Attempts[0].EventID != "evt_1" || older.Attempts[1].EventID != "evt_6" {
		t.Errorf("attempts = %+v, want evt_1 then evt_6", older.Attempts)
	}
	if older.PushCursor != 5 {
		t.Errorf("PushCursor = %d, want 5, the higher", older.PushCursor)
	}
	if older.Retry != (store.RetryState{}) {
		t.Errorf("Retry = %+v, want the newer commit's, which is none", older.Retry)
	}
	if older.LastError != "timed out" || !older.LastErrorAt.Equal(time.Unix(10, 0)) {
		t.Errorf("last error = %q at %v, want the older one kept", older.LastError, older.LastErrorAt)
	}
	if !older.LastSuccessAt.Equal(time.Unix(11, 0)) {
		t.Errorf("LastSuccessAt = %v, want the newer one", older.LastSuccessAt)
	}
}

func TestRecorderRetriesFailedWrite(t *testing.T) {
	h := newHarness(t)
	h.addIntegrationURL("int-a", knowledge.PatternPush, knowledge.Scope{}, "http://127.0.0.1:1/hook", NewSecret())
	st := &failingStore{Store: h.st}
	st.failing.Store(true)
	rec := newRecorder(st, testConfig().Logger)
	rec.start()
	defer rec.close()

	slot := &recordSlot{}
	first := rec.submit(context.Background(), slot, store.DeliveryCommit{
		IntegrationID: "int-a", PushCursor: 1, Attempts: []store.Attempt{{EventID: "evt_1", Cursor: 1, Attempt: 1}},
	})
	if err := first.wait(context.Background()); !errors.Is(err, errWriteFailed) {
		t.Fatalf("first write: error = %v, want %v", err, errWriteFailed)
	}
	// Records handed over after the failure merge behind the failed ones.
	st.failing.Store(false)
	second := rec.submit(context.Background(), slot, store.DeliveryCommit{
		IntegrationID: "int-a", PushCursor: 2, Attempts: []store.Attempt{{EventID: "evt_2", Cursor: 2, Attempt: 1}},
	})
	if err := second.wait(context.Background()); err != nil {
		t.Fatalf("second write: %v", err)
	}
	if c := h.state("int-a").PushCursor; c != 2 {
		t.Errorf("push cursor = %d, want 2", c)
	}
	got := h.attempts("int-a")
	if len(got) != 2 || got[0].EventID != "evt_1" || got[1].EventID != "evt_2" {
		t.Errorf("attempts = %+v, want evt_1 then evt_2, each once", got)
	}
}

func TestRecorderDiscardDropsRecords(t *testing.T) {
	h := newHarness(t)
	h.addIntegrationURL("int-a", knowledge.PatternPush, knowledge.Scope{}, "http://127.0.0.1:1/hook", NewSecret())
	st := &failingStore{Store: h.st}
	st.failing.Store(true)
	rec := newRecorder(st, testConfig().Logger)
	rec.start()
	defer rec.close()

	slot := &recordSlot{}
	ticket := rec.submit(context.Background(), slot, store.DeliveryCommit{
		IntegrationID: "int-a", PushCursor: 1, Attempts: []store.Attempt{{EventID: "evt_1", Cursor: 1, Attempt: 1}},
	})
	if err := ticket.wait(context.Background()); err == nil {
		t.Fatal("write succeeded on a failing store")
	}
	rec.discard(slot)
	st.failing.Store(false)

	// A write of another slot goes through the same writer after the
	// discarded records would have been retried.
	other := rec.submit(context.Background(), &recordSlot{}, store.DeliveryCommit{IntegrationID: "int-a", LastSuccessAt: time.Now()})
	if err := other.wait(context.Background()); err != nil {
		t.Fatalf("write after discard: %v", err)
	}
	if c := h.state("int-a").PushCursor; c != 0 {
		t.Errorf("push cursor = %d after discarding its records, want 0", c)
	}
	if got := h.attempts("int-a"); len(got) != 0 {
		t.Errorf("attempts = %+v after discarding them, want none", got)
	}
}

func TestRecorderReportsUnknownIntegration(t *testing.T) {
	h := newHarness(t)
	h.addIntegrationURL("int-a", knowledge.PatternPush, knowledge.Scope{}, "http://127.0.0.1:1/hook", NewSecret())
	rec := newRecorder(h.st, testConfig().Logger)
	rec.start()
	defer rec.close()

	unknown := rec.submit(context.Background(), &recordSlot{}, store.DeliveryCommit{
		IntegrationID: "int-gone", PushCursor: 3, Attempts: []store.Attempt{{EventID: "evt_3", Cursor: 3, Attempt: 1}},
	})
	known := rec.submit(context.Background(), &recordSlot{}, store.DeliveryCommit{
		IntegrationID: "int-a", PushCursor: 3, Attempts: []store.Attempt{{EventID: "evt_3", Cursor: 3, Attempt: 1}},
	})
	if err := unknown.wait(context.Background()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown integration: error = %v, want store.ErrNotFound", err)
	}
	if err := known.wait(context.Background()); err != nil {
		t.Errorf("known integration: %v", err)
	}
	if c := h.state("int-a").PushCursor; c != 3 {
		t.Errorf("push cursor = %d, want 3", c)
	}
}

// TestRecorderSplitsLargeGroups hands over more attempts than one group
// takes, from several integrations at once, and checks that all of them
// are written, both while the recorder runs and by its close.
func TestRecorderSplitsLargeGroups(t *testing.T) {
	h := newHarness(t)
	const integrations, perSlot = 6, maxGroupAttempts/2 + 1
	submitAll := func(rec *recorder, first int64) []*flushTicket {
		var tickets []*flushTicket
		for i := range integrations {
			id := fmt.Sprintf("int-%d", i)
			attempts := make([]store.Attempt, perSlot)
			for k := range attempts {
				cursor := first + int64(k)
				attempts[k] = store.Attempt{EventID: fmt.Sprintf("evt_%d", cursor), Cursor: cursor, ArticleID: "a", Version: cursor,
					Attempt: 1, StatusCode: 204, StartedAt: time.Now(), Outcome: store.OutcomeDelivered}
			}
			tickets = append(tickets, rec.submit(context.Background(), &recordSlot{}, store.DeliveryCommit{
				IntegrationID: id, PushCursor: first + perSlot - 1, Attempts: attempts}))
		}
		return tickets
	}
	for i := range integrations {
		h.addIntegrationURL(fmt.Sprintf("int-%d", i), knowledge.PatternPush, knowledge.Scope{}, "http://127.0.0.1:1/hook", NewSecret())
	}

	rec := newRecorder(h.st, testConfig().Logger)
	rec.start()
	for _, ticket := range submitAll(rec, 1) {
		if err := ticket.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Handed over just before close, so close must write every group.
	tickets := submitAll(rec, 1+perSlot)
	rec.close()
	for _, ticket := range tickets {
		if !ticket.finished() {
			t.Fatal("close returned before every group was written")
		}
	}
	for i := range integrations {
		id := fmt.Sprintf("int-%d", i)
		if got := len(h.attempts(id)); got != 2*perSlot {
			t.Errorf("%s: %d attempts written, want %d", id, got, 2*perSlot)
		}
		if c := h.state(id).PushCursor; c != 2*perSlot {
			t.Errorf("%s: push cursor %d, want %d", id, c, 2*perSlot)
		}
	}
}

func TestRecorderWritesInlineWhenClosed(t *testing.T) {
	h := newHarness(t)
	h.addIntegrationURL("int-a", knowledge.PatternPush, knowledge.Scope{}, "http://127.0.0.1:1/hook", NewSecret())
	rec := newRecorder(h.st, testConfig().Logger)
	rec.start()
	rec.close()
	rec.close() // a second close does nothing

	ticket := rec.submit(context.Background(), &recordSlot{}, store.DeliveryCommit{IntegrationID: "int-a", PushCursor: 4})
	if !ticket.finished() {
		t.Fatal("hand-over to a closed recorder is not written before submit returns")
	}
	if err := ticket.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := h.state("int-a").PushCursor; c != 4 {
		t.Errorf("push cursor = %d, want 4", c)
	}
}

func TestTailSharesEncodedEvents(t *testing.T) {
	h := newHarness(t)
	// The tail starts at the cursor of its first reader, which must be
	// above 0, so one change comes before the three read.
	changes := h.savePolicies("p", 4)[1:]
	tl := &tail{st: h.st, wake: h.wake, pollEvery: time.Hour, source: testConfig().Source}
	if _, err := tl.read(context.Background(), changes[0].Cursor-1, 10, knowledge.Scope{}); err != nil {
		t.Fatal(err)
	}
	// The first read starts the tail, and the next one fills it.
	page, err := tl.read(context.Background(), changes[0].Cursor-1, 10, knowledge.Scope{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 3 {
		t.Fatalf("tail returned %d changes, want 3", len(page.Changes))
	}

	c := &page.Changes[1]
	want, err := BuildEvent(testConfig().Source, c)
	if err != nil {
		t.Fatal(err)
	}
	first, err := tl.event(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(first) != string(want) {
		t.Errorf("tail event =\n%s\nwant BuildEvent's\n%s", first, want)
	}
	again, err := tl.event(c)
	if err != nil {
		t.Fatal(err)
	}
	if &again[0] != &first[0] {
		t.Error("second event of the same change was encoded again, want the shared bytes")
	}

	outside := *c
	outside.Cursor += 100
	if _, err := tl.event(&outside); err != nil {
		t.Errorf("event of a change outside the tail: %v", err)
	}
}

func TestBatchPassesOverChangesOutOfScope(t *testing.T) {
	h := newHarness(t)
	h.settings = knowledge.DeliverySettings{BatchSize: 2}
	secret := NewSecret()
	rv := newBatchReceiver(t, secret)
	h.addIntegrationURL("int-a", knowledge.PatternPush, knowledge.Scope{Collections: []string{"hr"}}, rv.srv.URL, secret)
	var want []knowledge.Change
	var last knowledge.Change
	for i := range 7 {
		// Every third change is outside the scope: before, inside and
		// after a batch.
		if i%3 == 0 {
			last = h.save(article("other-"+string(rune('a'+i)), "sales", knowledge.ClassPolicy))
			continue
		}
		last = h.save(article("hr-"+string(rune('a'+i)), "hr", knowledge.ClassPolicy))
		want = append(want, last)
	}
	_, stop := h.start()
	h.waitCursor("int-a", last.Cursor)
	stop()

	_, events, _ := rv.snapshot()
	var got []string
	for _, ev := range events {
		got = append(got, ev.ID)
	}
	sameIDs(t, "event ids", got, eventIDs(want))
}

func TestTailReadsStoreWhenHeadMoves(t *testing.T) {
	h := newHarness(t)
	first := h.save(article("p-0", "hr", knowledge.ClassPolicy))
	tl := &tail{st: h.st, wake: h.wake, pollEvery: time.Hour, source: testConfig().Source}
	read := func() store.ChangePage {
		t.Helper()
		page, err := tl.read(context.Background(), first.Cursor, 10, knowledge.Scope{})
		if err != nil {
			t.Fatal(err)
		}
		return page
	}
	read() // starts the tail at first.Cursor and polls the store once

	// A commit without a notification waits for the next poll, an hour
	// away.
	res, err := h.st.SaveArticle(context.Background(), func() knowledge.Article {
		a := article("p-1", "hr", knowledge.ClassPolicy)
		a.Normalize()
		return a
	}(), store.SaveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if page := read(); len(page.Changes) != 0 {
		t.Fatalf("tail returned %d changes before the notification, want 0 until the next poll", len(page.Changes))
	}

	h.wake.Notify(res.Change.Cursor)
	page := read()
	if len(page.Changes) != 1 || page.Changes[0].Cursor != res.Change.Cursor {
		t.Fatalf("tail returned %v after the notification, want change %d", page.Changes, res.Change.Cursor)
	}
}
