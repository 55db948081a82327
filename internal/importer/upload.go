package importer

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
)

// Outcome is the effect of one write on the stored article.
type Outcome string

const (
	OutcomeCreated   Outcome = "created"
	OutcomeUpdated   Outcome = "updated"   // a new version was stored
	OutcomeUnchanged Outcome = "unchanged" // the content hash matched, so no version was stored
)

// Sink stores articles, usually through the khub API. Upload calls
// PutArticle from several goroutines at once.
type Sink interface {
	PutArticle(ctx context.Context, a knowledge.Article) (Outcome, error)
}

// DefaultWorkers is the number of concurrent uploads when the caller gives
// none.
const DefaultWorkers = 4

// Summary counts what an import did.
type Summary struct {
	Created   int
	Updated   int
	Unchanged int
	// Skipped lists the files that were not imported: first those Scan
	// skipped, in walk order, then those whose upload failed, by path.
	Skipped []Skip
	// NotMarkdown counts the files ignored because they are not Markdown.
	NotMarkdown int
	// Cancelled counts documents not sent, or sent without a confirmed
	// outcome, because the context ended.
	Cancelled int
	// DryRun is true when nothing was sent. Checked then counts the valid
	// documents.
	DryRun  bool
	Checked int
	// Elapsed is the time spent scanning and uploading.
	Elapsed time.Duration
}

// Upload sends the documents of res through sink with the given number of
// concurrent workers (DefaultWorkers when workers <= 0). A failed write
// becomes a Skip with the document's path and does not stop the others.
// When ctx ends, Upload stops sending, waits for the writes in flight and
// counts the rest in Summary.Cancelled.
//
// progress, when not nil, is called with (0, total) first and then after
// every document. Calls never overlap and done only grows, so progress
// need not be safe for concurrent use.
func Upload(ctx context.Context, res *Result, sink Sink, workers int, progress func(done, total int)) Summary {
	start := time.Now()
	sum := Summary{
		Skipped:     slices.Clone(res.Skipped),
		NotMarkdown: res.NotMarkdown,
	}
	docs := res.Documents
	total := len(docs)
	if workers <= 0 {
		workers = DefaultWorkers
	}
	workers = min(workers, total)
	if progress != nil {
		progress(0, total)
	}

	var (
		mu     sync.Mutex // guards sum, failed and done, and serializes progress
		failed []Skip
		done   int
	)
	record := func(doc Document, outcome Outcome, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil && ctx.Err() != nil:
			sum.Cancelled++
		case err != nil:
			failed = append(failed, Skip{Path: doc.Path, Reason: fmt.Sprintf("upload of %s failed: %v", doc.Article.ID, err)})
		case outcome == OutcomeCreated:
			sum.Created++
		case outcome == OutcomeUpdated:
			sum.Updated++
		case outcome == OutcomeUnchanged:
			sum.Unchanged++
		default:
			failed = append(failed, Skip{Path: doc.Path, Reason: fmt.Sprintf("upload of %s returned the unknown outcome %q", doc.Article.ID, outcome)})
		}
		done++
		if progress != nil {
			progress(done, total)
		}
	}

	jobs := make(chan Document)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for doc := range jobs {
				outcome, err := sink.PutArticle(ctx, doc.Article)
				record(doc, outcome, err)
			}
		})
	}
	sent := 0
send:
	for _, doc := range docs {
		// select picks at random among ready cases, so check ctx first to
		// stop promptly once it has ended.
		if ctx.Err() != nil {
			break
		}
		select {
		case jobs <- doc:
			sent++
		case <-ctx.Done():
			break send
		}
	}
	close(jobs)
	wg.Wait()

	sum.Cancelled += total - sent
	slices.SortFunc(failed, func(a, b Skip) int { return cmp.Compare(a.Path, b.Path) })
	sum.Skipped = append(sum.Skipped, failed...)
	sum.Elapsed = res.Elapsed + time.Since(start)
	return sum
}

// Failed returns the number of skipped files that are failures: those
// that could not be read, parsed or uploaded. Empty pages do not count.
func (s Summary) Failed() int {
	n := 0
	for _, sk := range s.Skipped {
		if !sk.Empty {
			n++
		}
	}
	return n
}

// DryRun returns the Summary of an import that sends nothing: the skipped
// files and the number of valid documents.
func (r *Result) DryRun() Summary {
	return Summary{
		Skipped:     slices.Clone(r.Skipped),
		NotMarkdown: r.NotMarkdown,
		DryRun:      true,
		Checked:     len(r.Documents),
		Elapsed:     r.Elapsed,
	}
}

// Print writes a report of the import for people: the counts, every
// skipped file with its reason, and the time taken. Write errors are
// ignored, as with fmt.Println.
func (s Summary) Print(w io.Writer) {
	if s.DryRun {
		fmt.Fprintf(w, "valid:         %d (dry run: nothing was sent)\n", s.Checked)
	} else {
		fmt.Fprintf(w, "imported:      %d (%d created, %d updated)\n", s.Created+s.Updated, s.Created, s.Updated)
		fmt.Fprintf(w, "unchanged:     %d\n", s.Unchanged)
	}
	if empty := len(s.Skipped) - s.Failed(); empty > 0 {
		fmt.Fprintf(w, "skipped:       %d (%d empty %s, which %s nothing to import)\n", len(s.Skipped), empty, plural(empty, "page", "pages"), plural(empty, "has", "have"))
	} else {
		fmt.Fprintf(w, "skipped:       %d\n", len(s.Skipped))
	}
	for _, sk := range s.Skipped {
		fmt.Fprintf(w, "  %s: %s\n", sk.Path, sk.Reason)
	}
	if s.Cancelled > 0 {
		fmt.Fprintf(w, "not sent:      %d (the import was cancelled)\n", s.Cancelled)
	}
	fmt.Fprintf(w, "not Markdown:  %d files ignored\n", s.NotMarkdown)
	fmt.Fprintf(w, "time:          %s\n", formatDuration(s.Elapsed))
}

// formatDuration writes short durations in milliseconds, durations under a
// minute in seconds with one decimal, and longer ones as "2m5s".
func formatDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	default:
		return d.Round(time.Second).String()
	}
}

// plural returns one when n is 1 and many otherwise.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
