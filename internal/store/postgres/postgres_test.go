package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/storetest"
	"github.com/khub-dev/khub/internal/testpg"
)

// urlVariable names the environment variable with the test database URL.
const urlVariable = testpg.URLVariable

// testURL returns the test database URL, or skips the test (fails in CI).
func testURL(t testing.TB) string {
	t.Helper()
	return testpg.URL(t)
}

// newSchema returns a new schema that is dropped when the test ends.
func newSchema(t testing.TB, url string) string {
	t.Helper()
	return testpg.Schema(t, url, "khub_test_")
}

// openTest opens a store on a new schema and closes it when the test ends.
// opts.Schema is replaced.
func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	url := testURL(t)
	opts.Schema = newSchema(t, url)
	s, err := Open(context.Background(), url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	testURL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t, Options{}) })
}

func TestOpenConcurrentSameSchema(t *testing.T) {
	url := testURL(t)
	schema := newSchema(t, url)
	ctx := context.Background()

	const nodes = 4
	stores := make([]*Store, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { stores[i], errs[i] = Open(ctx, url, Options{Schema: schema}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: Open: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}

	// The migration ran once, and goose's table is inside the schema.
	var applied int
	err := stores[0].pool.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.goose_db_version WHERE version_id = 1 AND is_applied`).Scan(&applied)
	if err != nil {
		t.Fatalf("read the goose version table in %s: %v", schema, err)
	}
	if applied != 1 {
		t.Errorf("migration 1 is recorded %d times, want once", applied)
	}

	// Every node sees the same tables and the same lock keys.
	for i, s := range stores {
		if s.changesOID != stores[0].changesOID || s.articlesOID != stores[0].articlesOID {
			t.Errorf("node %d: lock keys (%d, %d), want node 0's (%d, %d)", i,
				s.changesOID, s.articlesOID, stores[0].changesOID, stores[0].articlesOID)
		}
	}
	a := newTestArticle("shared")
	if _, err := stores[1].SaveArticle(ctx, a, store.SaveOptions{}); err != nil {
		t.Fatalf("SaveArticle on node 1: %v", err)
	}
	if _, err := stores[2].GetArticle(ctx, "shared"); err != nil {
		t.Errorf("GetArticle on node 2 of an article written on node 1: %v", err)
	}

	// Opening an up-to-date schema again applies nothing and succeeds.
	again, err := Open(ctx, url, Options{Schema: schema})
	if err != nil {
		t.Fatalf("Open of a migrated schema: %v", err)
	}
	again.Close()
}

func TestOpenInvalidSchema(t *testing.T) {
	// Validation runs before any connection, so no database is needed.
	for _, schema := range []string{"Khub", "khub-test", "1khub", "pg_khub", "khub.test", `khub"`, strings.Repeat("k", 64)} {
		_, err := Open(context.Background(), "postgres://127.0.0.1:1/none", Options{Schema: schema})
		if err == nil {
			t.Errorf("Open with schema %q succeeded, want an error", schema)
		} else if !strings.Contains(err.Error(), "is invalid") {
			t.Errorf("Open with schema %q: error = %v, want a message saying it is invalid", schema, err)
		}
	}
}

func TestOpenInvalidURL(t *testing.T) {
	_, err := Open(context.Background(), "postgres://user:secret@127.0.0.1:99999/x", Options{})
	if err == nil {
		t.Fatal("Open with an invalid port succeeded, want an error")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error %q contains the password", err)
	}
}

func TestMapError(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"no rows", pgx.ErrNoRows, store.ErrNotFound},
		{"wrapped no rows", fmt.Errorf("scan: %w", pgx.ErrNoRows), store.ErrNotFound},
		{"unique violation", &pgconn.PgError{Code: "23505"}, store.ErrConflict},
		{"serialization failure", &pgconn.PgError{Code: "40001"}, store.ErrConflict},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, store.ErrConflict},
		{"foreign key violation", &pgconn.PgError{Code: "23503"}, store.ErrNotFound},
	}
	for _, tc := range cases {
		got := mapError(tc.err)
		if !errors.Is(got, tc.want) {
			t.Errorf("%s: mapError = %v, want %v", tc.name, got, tc.want)
		}
	}

	other := &pgconn.PgError{Code: "42P01"}
	if got := mapError(other); got != error(other) {
		t.Errorf("undefined table: mapError = %v, want the error unchanged", got)
	}
	if got := mapError(nil); got != nil {
		t.Errorf("mapError(nil) = %v, want nil", got)
	}
	var pgErr *pgconn.PgError
	if !errors.As(mapError(&pgconn.PgError{Code: "23505"}), &pgErr) {
		t.Error("mapped unique violation lost the driver error")
	}
}
