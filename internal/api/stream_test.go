package api

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/knowledge"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/sqlite"
)

// TestChangeTailMatchesStore checks that reads through the shared tail
// return the same events and cursors as reads of the store, for readers
// at random positions with random scopes and limits, while the log grows
// past the tail's size.
func TestChangeTailMatchesStore(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "khub.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tail := &changeTail{st: st, size: 8}
	rng := rand.New(rand.NewPCG(1, 2))
	scopes := [][]knowledge.Scope{
		nil,
		{{Classes: []knowledge.Class{"runbook"}}},
		{{Classes: []knowledge.Class{"policy"}}, {Tags: []string{"db"}}},
		{{Metadata: map[string]string{"team": "ops"}}},
	}
	classes := []knowledge.Class{"runbook", "policy", "reference"}

	var head int64
	for round := range 60 {
		for range rng.IntN(4) {
			a := knowledge.Article{
				ID:         fmt.Sprintf("a-%d", rng.IntN(10)),
				Title:      "Title",
				Body:       fmt.Sprintf("Body %d.", round),
				Collection: "handbook",
				Class:      classes[rng.IntN(len(classes))],
			}
			if rng.IntN(2) == 0 {
				a.Tags = []string{"db"}
			}
			if rng.IntN(2) == 0 {
				a.Metadata = map[string]string{"team": "ops"}
			}
			a.Normalize()
			res, err := st.SaveArticle(ctx, a, store.SaveOptions{Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			head = max(head, res.Change.Cursor)
		}
		for range 5 {
			// Most readers are at or near the head, as caught-up streams are.
			after := head - int64(rng.IntN(3))
			if rng.IntN(4) == 0 {
				after = rng.Int64N(head + 1)
			}
			after = max(after, 0)
			scope := scopes[rng.IntN(len(scopes))]
			limit := 1 + rng.IntN(4)

			gotBuf, gotN, gotScanned, err := tail.read(ctx, after, head, limit, scope, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantBuf, wantN, wantScanned, err := readStore(ctx, st, after, limit, scope, nil)
			if err != nil {
				t.Fatal(err)
			}
			if gotN != wantN || gotScanned != wantScanned || !bytes.Equal(gotBuf, wantBuf) {
				t.Fatalf("round %d, after %d, limit %d, scope %+v: tail gave %d events to cursor %d:\n%s\nstore gave %d events to cursor %d:\n%s",
					round, after, limit, scope, gotN, gotScanned, gotBuf, wantN, wantScanned, wantBuf)
			}
		}
	}
	if tail.start == 0 {
		t.Error("the tail never dropped an entry; the test should grow the log past its size")
	}
}
