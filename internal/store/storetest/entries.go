package storetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
)

// testChangeEntries checks that ReadChangeEntries returns what ReadChanges
// returns, without the article versions, for every filter, page size and
// starting cursor.
func testChangeEntries(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedScoped(t, s)
	// A later version that leaves the scope of collection ops, and an
	// archival, so that the version of each entry decides its scope and
	// every change type appears.
	moved := newArticle("ops-runbook")
	moved.Collection = "hr"
	moved.Tags = []string{"dns"}
	moved.Metadata = map[string]string{"team": "sre", "region": "eu"}
	saveAt(t, s, moved, 10)
	archived := newArticle("hr-reference")
	archived.Collection = "hr"
	archived.Class = knowledge.ClassReference
	archived.Metadata = map[string]string{"team": "people", "region": "us"}
	archived.Status = knowledge.StatusArchived
	saveAt(t, s, archived, 11)
	h := head(t, s)

	for _, tc := range scopeCases {
		for _, limit := range []int{1, 2, 100} {
			for after := int64(0); after <= h; after++ {
				name := fmt.Sprintf("%s, limit %d, after %d", tc.name, limit, after)
				full, err := s.ReadChanges(ctx, after, limit, tc.filters...)
				if err != nil {
					t.Fatalf("%s: ReadChanges: %v", name, err)
				}
				entries, err := s.ReadChangeEntries(ctx, after, limit, tc.filters...)
				if err != nil {
					t.Fatalf("%s: ReadChangeEntries: %v", name, err)
				}
				if entries.ScannedTo != full.ScannedTo {
					t.Errorf("%s: ScannedTo = %d, want %d as ReadChanges", name, entries.ScannedTo, full.ScannedTo)
				}
				if got, want := changeKeys(entries.Changes), changeKeys(full.Changes); !reflect.DeepEqual(got, want) {
					t.Errorf("%s: entries = %v, want %v as ReadChanges", name, got, want)
					continue
				}
				for i, got := range entries.Changes {
					want := full.Changes[i]
					want.Article = knowledge.Article{}
					if got.Cursor != want.Cursor || got.Type != want.Type || !reflect.ValueOf(got.Article).IsZero() {
						t.Errorf("%s: entry %d = %+v, want %+v without the article", name, i, got, want)
					}
					wantTime(t, fmt.Sprintf("%s: entry %d Time", name, i), got.Time, want.Time)
				}
			}
		}
	}

	// A limit out of range means the default or the maximum, as for
	// ReadChanges.
	for _, limit := range []int{0, -1, 5000} {
		full, err := s.ReadChanges(ctx, 0, limit)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := s.ReadChangeEntries(ctx, 0, limit)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := changeKeys(entries.Changes), changeKeys(full.Changes); !reflect.DeepEqual(got, want) || entries.ScannedTo != full.ScannedTo {
			t.Errorf("limit %d: entries = %v to %d, want %v to %d", limit, got, entries.ScannedTo, want, full.ScannedTo)
		}
	}
}

// testArticleMeta checks that GetArticleMeta returns what GetArticle
// returns, with an empty body.
func testArticleMeta(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := knowledge.Article{
		ID:          "Policy.Remote-Work_2",
		Title:       "Remote work",
		Body:        "Line one.\n\nLine two with \"quotes\".\n",
		Collection:  "people",
		Class:       knowledge.ClassPolicy,
		Tags:        []string{"hr", "remote"},
		Metadata:    map[string]string{"region": "emea"},
		ReviewEvery: 90 * 24 * time.Hour,
		Owner:       "people-team",
	}
	saveAt(t, s, a, 0)
	a.Body = "The second version."
	a.Status = knowledge.StatusArchived
	saveAt(t, s, a, 1)
	saveAt(t, s, newArticle("plain"), 2)

	for _, id := range []string{a.ID, "plain"} {
		want, err := s.GetArticle(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want.Body = ""
		got, err := s.GetArticleMeta(ctx, id)
		if err != nil {
			t.Fatalf("GetArticleMeta(%q): %v", id, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GetArticleMeta(%q) = %+v, want %+v as GetArticle without the body", id, got, want)
		}
	}

	_, err := s.GetArticleMeta(ctx, "nope")
	wantErr(t, "GetArticleMeta of an unknown article", err, store.ErrNotFound)
}
