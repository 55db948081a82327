package postgres

import (
	"context"
	"embed"
	"hash/fnv"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrationFiles are the versioned schema changes, applied in the order of
// the number that starts each file name.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Seconds between attempts to take the migration lock, and the number of
// attempts: a node waits at most 5 minutes for another node's migrations.
const (
	migrationLockPeriod   = 1
	migrationLockAttempts = 300
)

// migrate applies every pending migration to schema. goose records applied
// versions in the schema's own goose_db_version table and holds a session
// advisory lock while it runs, so nodes that start at once apply each
// migration exactly once and the others wait for it.
// It then rebuilds the search documents if their analyzer is out of date.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	dir, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(migrationLockID(schema)),
		lock.WithLockTimeout(migrationLockPeriod, migrationLockAttempts),
	)
	if err != nil {
		return err
	}
	// Closing db releases its connections to the pool and leaves the pool
	// open.
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, dir,
		goose.WithDisableGlobalRegistry(true),
		goose.WithSessionLocker(locker),
		// The schema name passed validateSchema, so it needs no quoting.
		goose.WithTableName(schema+".goose_db_version"),
	)
	if err != nil {
		return err
	}
	if _, err := provider.Up(ctx); err != nil {
		return err
	}
	return rebuildSearchIndex(ctx, pool)
}

// migrationLockID returns the advisory lock key of schema's migrations. It
// differs per schema, so stores in other schemas of the same database
// migrate without waiting for each other.
func migrationLockID(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("khub migrations " + schema))
	return int64(h.Sum64())
}
