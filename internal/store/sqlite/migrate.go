package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"io/fs"

	"github.com/pressly/goose/v3"
)

// migrationFiles are the versioned schema changes, applied in the order of
// the number that starts each file name.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrate applies every pending migration, then rebuilds the search index
// if its analyzer is out of date. goose records applied versions in its
// goose_db_version table, so running it on an up-to-date file does nothing.
func migrate(ctx context.Context, db *sql.DB) error {
	dir, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectSQLite3, db, dir, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return err
	}
	if _, err := provider.Up(ctx); err != nil {
		return err
	}
	return rebuildSearchIndex(ctx, db)
}
