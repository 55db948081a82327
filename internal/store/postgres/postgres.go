// Package postgres is the store.Store back-end on PostgreSQL, through the
// pgx v5 driver and its connection pool, pgxpool.
//
// One Store owns one schema: Open creates it when missing, applies the
// embedded migrations with goose under a session advisory lock and puts the
// schema first on every pooled connection's search_path, so the SQL here
// names tables without a schema. Several hubs may share a database in
// separate schemas.
//
// Writes run in READ COMMITTED transactions. SaveArticle serializes writers
// of one article with a transaction-scoped advisory lock keyed by the article
// id, and allocates change-log cursors under a second advisory lock held to
// COMMIT, so cursors are committed in increasing order (see SaveArticle).
// Reads that need one snapshot use REPEATABLE READ, READ ONLY transactions.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/khub-dev/khub/internal/store"
)

// Options tune a Store. The zero value uses the public schema.
type Options struct {
	// Schema is the schema that holds the store's tables and goose's version
	// table. Open creates it when missing. "" means public. A name is 1 to
	// 63 bytes of a-z, 0-9 and '_', starts with a letter or '_', and does not
	// start with "pg_".
	Schema string
	// BeforeCommit, when set, is called by SaveArticle after the new change's
	// cursor is allocated and before COMMIT, while the change-log lock is
	// held. Tests use it to delay commits; it must not use the Store.
	BeforeCommit func()
}

// Store is a store.Store on one schema of a PostgreSQL database.
type Store struct {
	pool         *pgxpool.Pool
	schema       string
	beforeCommit func()
	// changesOID and articlesOID are the OIDs of the schema's changes and
	// articles tables. They are the first keys of the store's two-key
	// advisory locks, which makes the locks unique to this schema within
	// the database: (changesOID, 0) guards cursor allocation and
	// (articlesOID, hash of the id) serializes writers of one article.
	changesOID  int32
	articlesOID int32
	// channel is the notification channel of the schema's changes, named
	// by changeChannel.
	channel string
}

var _ store.Store = (*Store)(nil)

// schemaPattern accepts lower-case identifiers that need no quoting, so the
// schema name can go into goose's table name and into messages unchanged.
var schemaPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// validateSchema checks a schema name against Options.Schema's rules.
func validateSchema(schema string) error {
	if !schemaPattern.MatchString(schema) {
		return fmt.Errorf("postgres: schema %q is invalid: use 1 to 63 characters from a-z, 0-9 and '_', starting with a letter or '_'", schema)
	}
	if len(schema) >= 3 && schema[:3] == "pg_" {
		return fmt.Errorf("postgres: schema %q is invalid: names starting with pg_ are reserved by PostgreSQL", schema)
	}
	return nil
}

// defaultMaxConns is the pool size when the URL does not set one.
const defaultMaxConns = 16

// Open connects to the database at url (a PostgreSQL URL or key=value
// string as pgx accepts, including pool_ settings such as pool_max_conns),
// creates the schema when missing and applies pending migrations. It sets
// search_path on every connection, overriding any search_path in url.
// Several processes may open the same schema at once.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	schema := opts.Schema
	if schema == "" {
		schema = "public"
	}
	if err := validateSchema(schema); err != nil {
		return nil, err
	}
	// pgx leaves the password out of its parse errors.
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: the database URL is invalid: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	// pgxpool's default of max(4, CPUs) connections queues a hub's push
	// dispatchers, which each read and record on their own, behind one
	// another. pool_max_conns in url still wins.
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s := &Store{pool: pool, schema: schema, beforeCommit: opts.BeforeCommit}
	if err := s.setUp(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// setUp creates and migrates the schema, then loads the advisory lock keys.
func (s *Store) setUp(ctx context.Context) error {
	if err := s.ensureSchema(ctx); err != nil {
		return fmt.Errorf("postgres: create schema %q: %w", s.schema, err)
	}
	if err := migrate(ctx, s.pool, s.schema); err != nil {
		return fmt.Errorf("postgres: migrate schema %q: %w", s.schema, err)
	}
	var changes, articles uint32
	err := s.pool.QueryRow(ctx, `SELECT to_regclass($1)::oid, to_regclass($2)::oid`,
		pgx.Identifier{s.schema, "changes"}.Sanitize(),
		pgx.Identifier{s.schema, "articles"}.Sanitize(),
	).Scan(&changes, &articles)
	if err != nil {
		return fmt.Errorf("postgres: look up the tables of schema %q: %w", s.schema, err)
	}
	// The lock functions take int4 keys; the bits of the OID are kept.
	s.changesOID = int32(changes)
	s.articlesOID = int32(articles)
	s.channel = changeChannel(changes)
	return nil
}

// schemaLockClass is the first key of the advisory lock that serializes
// schema creation; the second is a hash of the schema name.
const schemaLockClass int32 = 0x6b687562 // "khub" in ASCII

// ensureSchema creates the schema unless it exists. Two sessions running
// CREATE SCHEMA IF NOT EXISTS at once can still collide on the catalog's
// unique index, so creators take an advisory lock first and the second one
// finds the schema there. The existence check comes first because CREATE
// SCHEMA needs the CREATE privilege on the database even when the schema
// exists, which a role limited to public may lack.
func (s *Store) ensureSchema(ctx context.Context) error {
	var exists bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, s.schema).Scan(&exists)
	if err != nil || exists {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, schemaLockClass, hash32(s.schema)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{s.schema}.Sanitize())
		return err
	})
}

// Close closes the connection pool, waiting for acquired connections to be
// released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// hash32 returns the FNV-1a hash of s as an advisory lock key.
func hash32(s string) int32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return int32(h.Sum32())
}

// write runs fn in one READ COMMITTED transaction and commits it unless fn
// returns an error.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return mapError(err)
	}
	// Rollback after a successful Commit does nothing.
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		return err
	}
	return mapError(tx.Commit(ctx))
}

// read runs fn in one REPEATABLE READ, READ ONLY transaction, so every query
// in fn sees the same snapshot of the database.
func (s *Store) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return mapError(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := fn(tx); err != nil {
		return err
	}
	return mapError(tx.Commit(ctx))
}

// SQLSTATE codes that mapError translates.
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

// mapError translates driver errors into the store's errors. No rows becomes
// store.ErrNotFound. A unique violation, a serialization failure or a
// detected deadlock becomes store.ErrConflict, because a concurrent write
// won. A foreign-key violation becomes store.ErrNotFound, because the
// referenced row is missing. The driver error stays in the chain, except for
// no rows, which adds nothing.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeUniqueViolation, codeSerializationFailure, codeDeadlockDetected:
			return fmt.Errorf("%w: %w", store.ErrConflict, err)
		case codeForeignKeyViolation:
			return fmt.Errorf("%w: %w", store.ErrNotFound, err)
		}
	}
	return err
}

// timeArg returns t in UTC as a timestamptz argument, or NULL for the zero
// time.
func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

// timeValue returns a scanned timestamptz in UTC, or the zero time for NULL.
func timeValue(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}
