// Package freshness measures how stale each integration's tool is against
// its freshness window.
package freshness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// Report is one measurement.
type Report struct {
	Window time.Duration
	// Staleness is the age of the oldest change in scope that the tool has
	// neither received by push nor fetched from the change feed; zero when
	// it is caught up.
	Staleness    time.Duration
	WithinWindow bool
	// OldestPending is the cursor of that change, or 0.
	OldestPending int64
}

// maxHybridScan bounds the change-log entries read to find the oldest
// change a hybrid tool must pull. Past it the measurement counts from the
// first entry after the scanned range, so it may understate staleness for
// a tool that is more than this many pushed changes behind on the feed.
const maxHybridScan = 4096

// Measure computes the staleness of one integration at now.
//
// What counts as received depends on the pattern:
//   - push: changes up to the push cursor were delivered, skipped or failed
//     for good. A failed change still counts as pending until the tool gets
//     a later version of the same article, or that article's later change
//     is skipped because the integration does not push it.
//   - pull: changes up to the pull cursor were fetched from the change feed.
//     A tool that has never read the feed has fetched nothing, so its
//     staleness runs from the oldest change in scope. Only a tool that
//     declared lookups is fresh without the feed, because every lookup
//     reads the current version at query time.
//   - hybrid: pushed changes count as received once delivered, and the rest
//     once fetched from the feed, with the same rule for a tool that has
//     never read it. A failed push that the tool has since read from the
//     feed counts as received.
//
// Changes after the pull cursor that retention removed count as pending
// for a pull tool, and for a hybrid tool that reads the feed, because the
// tool must reload (see prunedAfter).
func Measure(ctx context.Context, st store.Store, s *store.IntegrationState, now time.Time) (Report, error) {
	r := Report{Window: s.Freshness}
	var oldest *knowledge.Change
	consider := func(c *knowledge.Change) {
		if c != nil && (oldest == nil || c.Cursor < oldest.Cursor) {
			oldest = c
		}
	}

	if s.Pattern.Pushes() {
		c, err := st.OldestChangeAfter(ctx, &s.Integration, s.PushCursor, true)
		switch {
		case err == nil:
			consider(&c)
		case !errors.Is(err, store.ErrNotFound):
			return r, fmt.Errorf("measure push backlog: %w", err)
		}

		var fetched int64
		if s.Pattern == knowledge.PatternHybrid && s.PullSeen {
			fetched = s.PullCursor
		}
		f, err := st.OldestFailedChange(ctx, &s.Integration, fetched)
		switch {
		case err == nil:
			consider(&f)
		case !errors.Is(err, store.ErrNotFound):
			return r, fmt.Errorf("measure failed deliveries: %w", err)
		}
	}

	if s.Pattern.Pulls() && (s.PullSeen || !s.Lookups) {
		c, err := oldestPulled(ctx, st, s)
		if err != nil {
			return r, err
		}
		consider(c)
		// A hybrid tool that never read the feed has its pull cursor at
		// 0, and the removed entries may all be changes it got by push.
		if s.Pattern == knowledge.PatternPull || s.PullSeen {
			if c, err = prunedAfter(ctx, st, s.PullCursor); err != nil {
				return r, err
			}
			consider(c)
		}
	}

	if oldest != nil {
		r.OldestPending = oldest.Cursor
		r.Staleness = max(now.Sub(oldest.Time), 0)
	}
	r.WithinWindow = r.Staleness <= r.Window
	return r, nil
}

// oldestPulled returns the oldest change after the pull cursor that the
// tool must fetch itself, or nil. The pull cursor of a tool that has never
// read the feed is 0, so the scan starts at the oldest change.
func oldestPulled(ctx context.Context, st store.Store, s *store.IntegrationState) (*knowledge.Change, error) {
	if s.Pattern == knowledge.PatternPull {
		c, err := st.OldestChangeAfter(ctx, &s.Integration, s.PullCursor, false)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("measure pull backlog: %w", err)
		}
		return &c, nil
	}

	// Hybrid: skip the changes that push delivers.
	after := s.PullCursor
	for scanned := 0; scanned < maxHybridScan; {
		page, err := st.ReadChanges(ctx, after, 256, s.Scope)
		if err != nil {
			return nil, fmt.Errorf("measure pull backlog: %w", err)
		}
		for i := range page.Changes {
			if !s.PushesChange(&page.Changes[i]) {
				return &page.Changes[i], nil
			}
		}
		if len(page.Changes) == 0 || page.ScannedTo <= after {
			return nil, nil
		}
		scanned += len(page.Changes)
		after = page.ScannedTo
	}
	c, err := st.OldestChangeAfter(ctx, &s.Integration, after, false)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("measure pull backlog: %w", err)
	}
	return &c, nil
}

// prunedAfter returns a stand-in for the changes after cursor that
// retention removed before the tool read them, or nil when none was
// removed. The tool must reload, as the change feed's 410 requires.
// The stand-in has the cursor of the first removed entry and the time of
// the oldest kept one. The removed entries committed before that time, so
// the staleness measured from it is a lower bound.
func prunedAfter(ctx context.Context, st store.Store, cursor int64) (*knowledge.Change, error) {
	oldest, err := st.OldestCursor(ctx)
	if err != nil {
		return nil, fmt.Errorf("measure pruned backlog: %w", err)
	}
	if oldest <= cursor+1 {
		return nil, nil
	}
	page, err := st.ReadChanges(ctx, oldest-1, 1)
	if err != nil {
		return nil, fmt.Errorf("measure pruned backlog: %w", err)
	}
	if len(page.Changes) == 0 {
		return nil, nil
	}
	return &knowledge.Change{Cursor: cursor + 1, Time: page.Changes[0].Time}, nil
}
