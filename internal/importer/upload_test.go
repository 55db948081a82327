package importer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
)

// memorySink stores articles in a map and reports outcomes the way the hub
// does: unchanged when the content hash matches the stored one.
type memorySink struct {
	mu       sync.Mutex
	hashes   map[string]string // article id → content hash
	failIDs  map[string]bool   // ids whose write fails
	inFlight atomic.Int32
	maxSeen  atomic.Int32 // maximum number of writes in flight at once
	calls    atomic.Int32
}

func newMemorySink() *memorySink {
	return &memorySink{hashes: map[string]string{}, failIDs: map[string]bool{}}
}

func (s *memorySink) PutArticle(ctx context.Context, a knowledge.Article) (Outcome, error) {
	s.calls.Add(1)
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		old := s.maxSeen.Load()
		if n <= old || s.maxSeen.CompareAndSwap(old, n) {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failIDs[a.ID] {
		return "", errors.New("hub returned 422: title is required")
	}
	hash := a.ContentHash()
	old, ok := s.hashes[a.ID]
	s.hashes[a.ID] = hash
	switch {
	case !ok:
		return OutcomeCreated, nil
	case old == hash:
		return OutcomeUnchanged, nil
	default:
		return OutcomeUpdated, nil
	}
}

// testResult builds a Result with n valid documents.
func testResult(n int) *Result {
	res := &Result{NotMarkdown: 3, Skipped: []Skip{{Path: "scan/bad.md", Reason: "is not valid UTF-8"}}}
	for i := range n {
		a := knowledge.Article{
			ID:         fmt.Sprintf("doc-%03d", i),
			Title:      fmt.Sprintf("Document %d", i),
			Body:       "Body of document.\n",
			Collection: "kb",
			Class:      knowledge.ClassRunbook,
		}
		a.Normalize()
		res.Documents = append(res.Documents, Document{Path: fmt.Sprintf("docs/%03d.md", i), Article: a})
	}
	return res
}

func TestUploadCounts(t *testing.T) {
	sink := newMemorySink()
	res := testResult(50)
	sink.failIDs["doc-007"] = true
	sink.failIDs["doc-003"] = true

	var calls []int
	sum := Upload(context.Background(), res, sink, 8, func(done, total int) {
		if total != 50 {
			t.Errorf("progress total = %d, want 50", total)
		}
		calls = append(calls, done) // safe: Upload never calls progress concurrently
	})

	if sum.Created != 48 {
		t.Errorf("Created = %d, want 48", sum.Created)
	}
	if sum.Updated != 0 || sum.Unchanged != 0 {
		t.Errorf("Updated, Unchanged = %d, %d, want 0, 0", sum.Updated, sum.Unchanged)
	}
	if sum.NotMarkdown != 3 {
		t.Errorf("NotMarkdown = %d, want 3", sum.NotMarkdown)
	}
	if sum.Cancelled != 0 {
		t.Errorf("Cancelled = %d, want 0", sum.Cancelled)
	}
	wantSkips := []string{"scan/bad.md", "docs/003.md", "docs/007.md"}
	if len(sum.Skipped) != len(wantSkips) {
		t.Fatalf("skipped %v, want %v", sum.Skipped, wantSkips)
	}
	for i, want := range wantSkips {
		if sum.Skipped[i].Path != want {
			t.Errorf("skip %d path = %q, want %q", i, sum.Skipped[i].Path, want)
		}
	}
	if r := sum.Skipped[1].Reason; !strings.Contains(r, "doc-003") || !strings.Contains(r, "422") {
		t.Errorf("upload skip reason %q does not name the id and the error", r)
	}

	if len(calls) != 51 || calls[0] != 0 || calls[50] != 50 {
		t.Errorf("progress calls = %v, want 0 then 1..50", calls)
	}
	for i := 1; i < len(calls); i++ {
		if calls[i] != calls[i-1]+1 {
			t.Errorf("progress went from %d to %d", calls[i-1], calls[i])
			break
		}
	}
	if got := sink.maxSeen.Load(); got > 8 {
		t.Errorf("%d writes in flight at once, want at most 8 workers", got)
	}
}

func TestUploadSecondRunUnchanged(t *testing.T) {
	sink := newMemorySink()
	res := testResult(30)

	first := Upload(context.Background(), res, sink, 4, nil)
	if first.Created != 30 {
		t.Fatalf("first upload created %d, want 30", first.Created)
	}
	second := Upload(context.Background(), res, sink, 4, nil)
	if second.Unchanged != 30 {
		t.Errorf("second upload: %d unchanged, want 30", second.Unchanged)
	}
	if second.Created != 0 || second.Updated != 0 {
		t.Errorf("second upload: %d created, %d updated, want none", second.Created, second.Updated)
	}

	res.Documents[4].Article.Body = "Changed body.\n"
	third := Upload(context.Background(), res, sink, 4, nil)
	if third.Updated != 1 || third.Unchanged != 29 {
		t.Errorf("third upload: %d updated, %d unchanged, want 1 and 29", third.Updated, third.Unchanged)
	}
}

func TestUploadDefaultWorkers(t *testing.T) {
	sink := newMemorySink()
	sum := Upload(context.Background(), testResult(20), sink, 0, nil)
	if sum.Created != 20 {
		t.Errorf("Created = %d, want 20", sum.Created)
	}
	if got := sink.maxSeen.Load(); got > DefaultWorkers {
		t.Errorf("%d writes in flight at once, want at most %d", got, DefaultWorkers)
	}
}

func TestUploadEmpty(t *testing.T) {
	var calls int
	sum := Upload(context.Background(), &Result{NotMarkdown: 2}, newMemorySink(), 4, func(done, total int) { calls++ })
	if sum.Created+sum.Updated+sum.Unchanged+len(sum.Skipped) != 0 {
		t.Errorf("summary of an empty result = %+v", sum)
	}
	if sum.NotMarkdown != 2 {
		t.Errorf("NotMarkdown = %d, want 2", sum.NotMarkdown)
	}
	if calls != 1 {
		t.Errorf("progress called %d times, want once with (0, 0)", calls)
	}
}

// blockingSink cancels the context on its first write and then fails
// every write, as a client does once its context ends.
type blockingSink struct {
	cancel context.CancelFunc
	calls  atomic.Int32
}

func (s *blockingSink) PutArticle(ctx context.Context, a knowledge.Article) (Outcome, error) {
	if s.calls.Add(1) == 1 {
		s.cancel()
	}
	<-ctx.Done()
	return "", ctx.Err()
}

func TestUploadCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := &blockingSink{cancel: cancel}

	sum := Upload(ctx, testResult(100), sink, 2, nil)

	if sum.Cancelled != 100 {
		t.Errorf("Cancelled = %d, want all 100", sum.Cancelled)
	}
	if got := sink.calls.Load(); got > 2 {
		t.Errorf("%d writes started after cancellation, want at most the 2 in flight", got)
	}
	if len(sum.Skipped) != 1 {
		t.Errorf("skipped %v, want only the scan skip", sum.Skipped)
	}
}

func TestUploadUnknownOutcome(t *testing.T) {
	sink := sinkFunc(func(ctx context.Context, a knowledge.Article) (Outcome, error) { return "merged", nil })
	sum := Upload(context.Background(), testResult(1), sink, 1, nil)
	if len(sum.Skipped) != 2 || !strings.Contains(sum.Skipped[1].Reason, `unknown outcome "merged"`) {
		t.Errorf("skipped = %v, want the document with an unknown outcome", sum.Skipped)
	}
}

type sinkFunc func(ctx context.Context, a knowledge.Article) (Outcome, error)

func (f sinkFunc) PutArticle(ctx context.Context, a knowledge.Article) (Outcome, error) {
	return f(ctx, a)
}

func TestDryRun(t *testing.T) {
	res := testResult(5)
	res.Elapsed = 1500 * time.Millisecond
	sum := res.DryRun()
	if !sum.DryRun || sum.Checked != 5 {
		t.Errorf("DryRun, Checked = %v, %d, want true, 5", sum.DryRun, sum.Checked)
	}
	if sum.Created != 0 || len(sum.Skipped) != 1 || sum.NotMarkdown != 3 {
		t.Errorf("dry run summary = %+v", sum)
	}

	var out bytes.Buffer
	sum.Print(&out)
	for _, want := range []string{"valid:         5 (dry run: nothing was sent)", "scan/bad.md: is not valid UTF-8", "time:          1.5 s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSummaryPrint(t *testing.T) {
	sum := Summary{
		Created: 10, Updated: 2, Unchanged: 5,
		Skipped:     []Skip{{Path: "a/_index.md", Reason: "empty section page"}, {Path: "b.md", Reason: "is empty"}},
		NotMarkdown: 7,
		Cancelled:   1,
		Elapsed:     2*time.Minute + 5400*time.Millisecond,
	}
	var out bytes.Buffer
	sum.Print(&out)
	want := `imported:      12 (10 created, 2 updated)
unchanged:     5
skipped:       2
  a/_index.md: empty section page
  b.md: is empty
not sent:      1 (the import was cancelled)
not Markdown:  7 files ignored
time:          2m5s
`
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{350 * time.Millisecond, "350 ms"},
		{2100 * time.Millisecond, "2.1 s"},
		{59 * time.Second, "59.0 s"},
		{95 * time.Second, "1m35s"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.d); got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestUploadRunsWorkersConcurrently(t *testing.T) {
	const workers = 4
	var arrived atomic.Int32
	allArrived := make(chan struct{})
	timeout, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Each of the first writes waits until all workers are inside
	// PutArticle at once; fewer workers would stop here until the timeout.
	sink := sinkFunc(func(ctx context.Context, a knowledge.Article) (Outcome, error) {
		if n := arrived.Add(1); n == workers {
			close(allArrived)
		}
		select {
		case <-allArrived:
			return OutcomeCreated, nil
		case <-timeout.Done():
			return "", errors.New("timed out waiting for the other workers")
		}
	})

	sum := Upload(context.Background(), testResult(20), sink, workers, nil)
	if sum.Created != 20 {
		t.Errorf("Created = %d, want 20 (skipped: %v)", sum.Created, sum.Skipped)
	}
}
