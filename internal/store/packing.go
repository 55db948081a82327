package store

import (
	"encoding/json"
	"fmt"

	"github.com/khub-dev/khub/internal/knowledge"
)

// Delivery rows. A request that carried one event is stored as one row per
// attempt. A batched request that delivered several events is stored as
// one packed row. It holds the request's shared fields once: webhook-id,
// attempt number, status, latency, start time and outcome. It also holds
// the cursors of its first and last events, and the events themselves as
// a JSON array of PackedEvent. Back-ends unpack such a row into one
// Attempt per event, so callers never see the difference.
//
// Writing one row per event cost as much CPU as sending the event, and on
// two cores capped batched delivery below 50,000 events per second.
//
// Only commits that move the push cursor are packed, so the packed rows of
// one integration cover disjoint cursor ranges in increasing order: the
// push cursor only moves forward, and one dispatcher at a time delivers
// an integration. Back-ends rely on that to find the packed row that may
// hold a given cursor with one index lookup (the last row that starts at
// or before it). Replays write attempts only and are never packed.

// PackedEvent is one event of a packed delivery row. The short JSON names
// keep the rows small; both back-ends query the "a" and "c" members.
type PackedEvent struct {
	Cursor    int64  `json:"c"`
	ArticleID string `json:"a"`
	Version   int64  `json:"v"`
	Type      string `json:"t"`
}

// DeliveryRow is one row to insert: an attempt, and for a packed row the
// first cursor and the events. A packed row's Attempt has the cursor of
// its last event and no article, version or change type of its own.
type DeliveryRow struct {
	Attempt
	FirstCursor int64  // 0 when not packed
	Events      []byte // JSON array of PackedEvent, nil when not packed
}

// PackedValues returns the values of the first_cursor and events columns
// of the row, both nil unless it is packed.
func (r *DeliveryRow) PackedValues() (firstCursor, events any) {
	if r.Events == nil {
		return nil, nil
	}
	return r.FirstCursor, string(r.Events)
}

// PrepareDeliveries checks that each commit's attempts belong to its
// integration and returns each commit's rows, as PackAttempts makes them.
// Back-ends call it before their write transaction, so that the encoding
// holds no lock.
func PrepareDeliveries(commits []DeliveryCommit) ([][]DeliveryRow, error) {
	rows := make([][]DeliveryRow, len(commits))
	for i := range commits {
		c := &commits[i]
		for _, a := range c.Attempts {
			if a.IntegrationID != "" && a.IntegrationID != c.IntegrationID {
				return nil, fmt.Errorf("commit delivery: attempt of integration %q in a commit of integration %q", a.IntegrationID, c.IntegrationID)
			}
		}
		var err error
		if rows[i], err = PackAttempts(c); err != nil {
			return nil, err
		}
	}
	return rows, nil
}

// PackAttempts returns the rows for a commit's attempts, in order. Runs of
// two or more delivered attempts of one request become one packed row,
// unless the commit writes attempts only.
func PackAttempts(c *DeliveryCommit) ([]DeliveryRow, error) {
	rows := make([]DeliveryRow, 0, len(c.Attempts))
	for i := 0; i < len(c.Attempts); {
		j := i + 1
		if !c.AttemptsOnly && c.Attempts[i].Outcome == OutcomeDelivered {
			for j < len(c.Attempts) && sameRequest(&c.Attempts[j-1], &c.Attempts[j]) {
				j++
			}
		}
		if j-i == 1 {
			rows = append(rows, DeliveryRow{Attempt: c.Attempts[i]})
			i = j
			continue
		}
		events := make([]PackedEvent, j-i)
		for k, a := range c.Attempts[i:j] {
			events[k] = PackedEvent{Cursor: a.Cursor, ArticleID: a.ArticleID, Version: a.Version, Type: string(a.Type)}
		}
		data, err := json.Marshal(events)
		if err != nil {
			return nil, fmt.Errorf("pack delivery events of integration %q: %w", c.IntegrationID, err)
		}
		row := c.Attempts[j-1]
		row.ArticleID, row.Version, row.Type = "", 0, ""
		rows = append(rows, DeliveryRow{Attempt: row, FirstCursor: c.Attempts[i].Cursor, Events: data})
		i = j
	}
	return rows, nil
}

// sameRequest reports whether b continues a packed run that a is in: both
// delivered by the same attempt of the same request, b at a later cursor.
func sameRequest(a, b *Attempt) bool {
	return b.Outcome == OutcomeDelivered && b.EventID == a.EventID && b.Attempt == a.Attempt &&
		b.StartedAt.Equal(a.StartedAt) && b.StatusCode == a.StatusCode && b.Latency == a.Latency &&
		b.Error == a.Error && b.Cursor > a.Cursor
}

// UnpackAttempts appends the attempts of a stored row to out, newest
// first as delivery history lists them. row holds the row's shared fields
// and events its packed events, or nil for a row of one event. A non-empty
// articleID keeps only that article's events, and limit caps len(out).
func UnpackAttempts(out []Attempt, row Attempt, events []byte, articleID string, limit int) ([]Attempt, error) {
	if events == nil {
		if len(out) < limit {
			out = append(out, row)
		}
		return out, nil
	}
	var packed []PackedEvent
	if err := json.Unmarshal(events, &packed); err != nil {
		return nil, fmt.Errorf("delivery %d of integration %q: packed events: %w", row.ID, row.IntegrationID, err)
	}
	for i := len(packed) - 1; i >= 0 && len(out) < limit; i-- {
		e := packed[i]
		if articleID != "" && e.ArticleID != articleID {
			continue
		}
		a := row
		a.Cursor, a.ArticleID, a.Version, a.Type = e.Cursor, e.ArticleID, e.Version, knowledge.ChangeType(e.Type)
		out = append(out, a)
	}
	return out, nil
}
