package importer

import (
	"fmt"
	"io"
	"time"
)

// redrawInterval is the minimum time between two redraws on a terminal,
// so that the line changes at most ten times a second.
const redrawInterval = 100 * time.Millisecond

// Progress reports import progress as "importing 123/509 (24%)  ~2.1 s
// left". On a terminal it redraws one line in place, at most ten times a
// second. Elsewhere, such as in a log file or CI output, it prints a line
// each time another 10 percent is done.
//
// Its Update method fits Upload's progress argument. A Progress is not safe
// for concurrent use; Upload never calls it concurrently.
type Progress struct {
	w   io.Writer
	tty bool
	now func() time.Time // replaced in tests

	start      time.Time
	lastDraw   time.Time
	lastDecile int // tenths of the total already reported off a terminal
	drawn      bool
}

// NewProgress returns a Progress that writes to w. isTTY selects in-place
// redrawing, which needs a terminal.
func NewProgress(w io.Writer, isTTY bool) *Progress {
	return &Progress{w: w, tty: isTTY, now: time.Now}
}

// Update records that done of total documents are finished. The first
// call starts the clock for the time estimate.
func (p *Progress) Update(done, total int) {
	now := p.now()
	if p.start.IsZero() {
		p.start = now
	}
	if total <= 0 {
		return
	}
	if p.tty {
		if p.drawn && done < total && now.Sub(p.lastDraw) < redrawInterval {
			return
		}
		// \x1b[K clears what a longer previous line left on the right.
		fmt.Fprintf(p.w, "\r%s\x1b[K", p.line(done, total, now))
		p.lastDraw, p.drawn = now, true
		return
	}
	decile := done * 10 / total
	if decile <= p.lastDecile {
		return
	}
	p.lastDecile = decile
	fmt.Fprintf(p.w, "%s\n", p.line(done, total, now))
	p.drawn = true
}

// Done ends the progress line on a terminal so that later output starts
// on a line of its own.
func (p *Progress) Done() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}

// line formats the progress text. The estimate assumes the remaining
// documents take as long on average as the finished ones.
func (p *Progress) line(done, total int, now time.Time) string {
	text := fmt.Sprintf("importing %d/%d (%d%%)", done, total, done*100/total)
	if done > 0 && done < total {
		elapsed := now.Sub(p.start)
		left := time.Duration(float64(elapsed) / float64(done) * float64(total-done))
		text += fmt.Sprintf("  ~%s left", formatDuration(left))
	}
	return text
}
