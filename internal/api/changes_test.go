package api

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/khub-dev/khub/client"
	"github.com/khub-dev/khub/internal/knowledge"
)

// TestChangesPageEncoding checks that the change feed's encoder writes the
// bytes that writeJSON writes for the same page.
func TestChangesPageEncoding(t *testing.T) {
	base := time.Date(2025, time.March, 4, 5, 6, 7, 0, time.UTC)
	pages := map[string][]knowledge.Change{
		"empty": nil,
		"plain": {
			{Cursor: 1, ArticleID: "a000001", Version: 1, Type: knowledge.ChangeCreated, Time: base},
			{Cursor: 1 << 40, ArticleID: "kb.ops_runbook-2", Version: 12, Type: knowledge.ChangeUpdated, Time: base.Add(123456 * time.Microsecond)},
			{Cursor: 3, ArticleID: "z", Version: 2, Type: knowledge.ChangeArchived, Time: base.Add(time.Nanosecond)},
		},
		"escaped": {
			{Cursor: 7, ArticleID: `quote"back\slash`, Version: 1, Type: "line\nbreak", Time: base},
			{Cursor: 8, ArticleID: "<html>&</html>", Version: 1, Type: "ünïcode\u2028", Time: base},
		},
		"zones": {
			{Cursor: 9, ArticleID: "a", Version: 1, Type: knowledge.ChangeCreated, Time: base.In(time.FixedZone("CET", 3600))},
			{Cursor: 10, ArticleID: "b", Version: 1, Type: knowledge.ChangeCreated, Time: time.Date(1, 1, 1, 0, 0, 0, 0, time.FixedZone("", -90*60))},
		},
	}
	for name, changes := range pages {
		t.Run(name, func(t *testing.T) {
			const next = 42
			want := client.ChangesPage{Changes: make([]client.Change, len(changes)), Next: next}
			for i, c := range changes {
				want.Changes[i] = client.Change{Cursor: c.Cursor, ArticleID: c.ArticleID, Version: c.Version, Type: string(c.Type), Time: c.Time}
			}
			rec := httptest.NewRecorder()
			writeJSON(rec, 200, want)
			if got := string(appendChangesPage(nil, changes, next)); got != rec.Body.String() {
				t.Errorf("appendChangesPage wrote\n%s\nwant what encoding/json writes:\n%s", got, rec.Body.String())
			}
		})
	}
}
