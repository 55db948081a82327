package importer

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when the test advances it.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.now = c.now.Add(d) }
func newTestProgress(tty bool) (*Progress, *bytes.Buffer, *fakeClock) {
	var out bytes.Buffer
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := NewProgress(&out, tty)
	p.now = clock.Now
	return p, &out, clock
}

func TestProgressTerminalThrottles(t *testing.T) {
	p, out, clock := newTestProgress(true)
	p.Update(0, 509)
	for done := 1; done <= 123; done++ {
		clock.Advance(10 * time.Millisecond) // 1.23 s in all
		p.Update(done, 509)
	}

	// One draw at the start and one per 100 ms of the 1.23 s.
	if draws := strings.Count(out.String(), "\r"); draws != 13 {
		t.Errorf("%d redraws in 1.23 s, want 13 (at most 10 a second)", draws)
	}
	last := out.String()[strings.LastIndex(out.String(), "\r")+1:]
	if want := "importing 120/509 (23%)  ~3.9 s left\x1b[K"; last != want {
		t.Errorf("last line = %q, want %q", last, want)
	}

	p.Update(509, 509) // the final state is drawn even inside the interval
	if !strings.HasSuffix(out.String(), "\rimporting 509/509 (100%)\x1b[K") {
		t.Errorf("final line missing: %q", out.String()[len(out.String())-40:])
	}
	p.Done()
	if !strings.HasSuffix(out.String(), "\n") {
		t.Error("Done did not end the line")
	}
}

func TestProgressLogEveryTenPercent(t *testing.T) {
	p, out, clock := newTestProgress(false)
	p.Update(0, 200)
	for done := 1; done <= 200; done++ {
		clock.Advance(time.Second)
		p.Update(done, 200)
	}
	p.Done()

	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 10 {
		t.Fatalf("%d lines, want 10:\n%s", len(lines), out.String())
	}
	if want := "importing 20/200 (10%)  ~3m0s left"; lines[0] != want {
		t.Errorf("first line = %q, want %q", lines[0], want)
	}
	if want := "importing 200/200 (100%)"; lines[9] != want {
		t.Errorf("last line = %q, want %q", lines[9], want)
	}
	if strings.Contains(out.String(), "\r") || strings.Contains(out.String(), "\x1b") {
		t.Error("output off a terminal contains control characters")
	}
}

func TestProgressSmallTotal(t *testing.T) {
	p, out, _ := newTestProgress(false)
	for done := 0; done <= 3; done++ {
		p.Update(done, 3)
	}
	if got := strings.Count(out.String(), "\n"); got != 3 {
		t.Errorf("%d lines for 3 documents, want 3:\n%s", got, out.String())
	}
}

func TestProgressZeroTotal(t *testing.T) {
	for _, tty := range []bool{true, false} {
		p, out, _ := newTestProgress(tty)
		p.Update(0, 0)
		p.Done()
		if out.Len() != 0 {
			t.Errorf("tty=%v: output %q for an empty import, want none", tty, out.String())
		}
	}
}
