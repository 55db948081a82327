// Package testpg gives tests a PostgreSQL database: the URL from the
// environment and a schema of their own that is dropped when they end.
package testpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// URLVariable names the environment variable with the test database URL.
const URLVariable = "KHUB_TEST_POSTGRES_URL"

// URL returns the test database URL. Without one it skips the test, or
// fails it when CI is "true", because CI must run the PostgreSQL tests.
func URL(t testing.TB) string {
	t.Helper()
	url := os.Getenv(URLVariable)
	if url != "" {
		return url
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI: set it to a PostgreSQL URL such as postgres://postgres@127.0.0.1:5432/test?sslmode=disable", URLVariable)
	}
	t.Skipf("%s is not set: set it to a PostgreSQL URL to run the PostgreSQL tests", URLVariable)
	return ""
}

// Schema returns a new schema name, prefix and 12 random hex digits, and
// drops the schema with everything in it when the test ends. The drop runs
// after cleanups registered later, such as closing a store.
func Schema(t testing.TB, url, prefix string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	schema := prefix + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}
