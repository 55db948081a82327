package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/khub-dev/khub/internal/app"
	"github.com/khub-dev/khub/internal/resultcache"
)

type logFlags struct {
	format string
	level  string
}

func (l *logFlags) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&l.format, "log-format", envOr("KHUB_LOG_FORMAT", "text"), "log format: text or json (env KHUB_LOG_FORMAT)")
	cmd.Flags().StringVar(&l.level, "log-level", envOr("KHUB_LOG_LEVEL", "info"), "log level: debug, info, warn or error (env KHUB_LOG_LEVEL)")
}

func (l *logFlags) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q is invalid: use debug, info, warn or error", l.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(l.format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q is invalid: use text or json", l.format)
}

func newServeCmd() *cobra.Command {
	var cfg app.Config
	var logs logFlags
	var resultCacheMiB int64
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the hub on SQLite, or on PostgreSQL with several nodes",
		Long: `Run the hub: the HTTP API, the push dispatchers and the change feed.

The store is an SQLite database in the data directory unless --db gives a
PostgreSQL URL. Several nodes may share one PostgreSQL database: each push
integration is dispatched by one node at a time under a lease that another
node takes over when its holder stops renewing it (after --lease-ttl), and
every node serves the API and the change feed. With --db, give every node
the same --admin-token.

The admin token comes from --admin-token or KHUB_ADMIN_TOKEN. When neither is
set, the hub generates one on first start, writes it to DATA/admin.token with
mode 0600 and logs the path. SIGINT or SIGTERM stops accepting requests, lets
requests in flight finish, hands back webhook deliveries in flight (they are
sent again after a restart with the same webhook-id) and exits.`,
		Example: `  khub serve --data ./khub-data
  KHUB_ADMIN_TOKEN=... khub serve --data /var/lib/khub --addr 127.0.0.1:9090
  KHUB_ADMIN_TOKEN=... khub serve --db postgres://khub@db.internal:5432/khub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := logs.logger()
			if err != nil {
				return err
			}
			cfg.Logger = logger
			if resultCacheMiB < 1 || resultCacheMiB > 1<<20 {
				return fmt.Errorf("--result-cache-mib %d is invalid: give 1 to 1048576 (1 TiB), or turn the cache off with --result-cache-entries -1", resultCacheMiB)
			}
			if cfg.ResultCache.MaxEntries == 0 || cfg.ResultCache.MaxEntries < -1 {
				return fmt.Errorf("--result-cache-entries %d is invalid: give a positive number, or -1 to turn the cache off", cfg.ResultCache.MaxEntries)
			}
			cfg.ResultCache.MaxBytes = resultCacheMiB << 20
			// A shared database needs a token every node knows, so the
			// default data directory is not used to generate one.
			if cfg.DatabaseURL != "" && !cmd.Flags().Changed("data") && os.Getenv("KHUB_DATA") == "" {
				cfg.DataDir = ""
			}
			return serve(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data", envOr("KHUB_DATA", "khub-data"), "directory for the database and the generated admin token (env KHUB_DATA)")
	f.StringVar(&cfg.Addr, "addr", envOr("KHUB_ADDR", "127.0.0.1:8080"), "listen address HOST:PORT; keep 127.0.0.1 unless a proxy in front of khub terminates TLS (env KHUB_ADDR)")
	f.StringVar(&cfg.AdminToken, "admin-token", os.Getenv("KHUB_ADMIN_TOKEN"), "admin token, at least 16 characters (env KHUB_ADMIN_TOKEN; default: generated into DATA/admin.token)")
	allow, _ := strconv.ParseBool(os.Getenv("KHUB_ALLOW_PRIVATE_DESTINATIONS"))
	f.BoolVar(&cfg.AllowPrivate, "allow-private-destinations", allow, "allow webhooks to loopback, private and link-local addresses (env KHUB_ALLOW_PRIVATE_DESTINATIONS)")
	addStoreFlags(cmd, &cfg)
	f.StringVar(&cfg.Push.Node, "node-id", os.Getenv("KHUB_NODE_ID"), "name of this node in dispatch leases and logs (env KHUB_NODE_ID; default: host name, process id and random letters)")
	f.DurationVar(&cfg.Push.LeaseTTL, "lease-ttl", 15e9, "how long a node's dispatch lease lasts without renewal: the longest a dead node's push integrations wait before another node takes them over")
	f.DurationVar(&cfg.SLO.Interval, "slo-interval", 15e9, "how often every integration's staleness is sampled for its freshness history and alerts; an alert needs two samples in a row past the window")
	f.DurationVar(&cfg.SLO.Retention, "slo-retention", 192*3600e9, "how long staleness samples are kept")
	f.DurationVar(&cfg.ChangeRetention, "retention", 0, "how long change-log entries are kept, such as 720h; 0 keeps them forever. Tools behind the kept log get a resync-required event")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 20e9, "longest graceful stop before in-flight work is cut off")
	f.IntVar(&cfg.ResultCache.MaxEntries, "result-cache-entries", resultcache.DefaultMaxEntries, "search and lookup results kept in memory until the next commit; -1 turns the cache off")
	f.Int64Var(&resultCacheMiB, "result-cache-mib", resultcache.DefaultMaxBytes>>20, "memory for cached search and lookup results, in MiB")
	f.BoolVar(&cfg.NoTextIndex, "no-text-index", false, "rank SQLite searches with FTS5 instead of the in-memory index, which makes searches slower and saves memory about the size of the articles' text; ignored with --db")
	logs.addFlags(cmd)
	return cmd
}

// addStoreFlags adds the flags that select the PostgreSQL store.
func addStoreFlags(cmd *cobra.Command, cfg *app.Config) {
	f := cmd.Flags()
	f.StringVar(&cfg.DatabaseURL, "db", os.Getenv("KHUB_DATABASE_URL"), "PostgreSQL URL such as postgres://user@host:5432/khub; empty uses SQLite in --data (env KHUB_DATABASE_URL)")
	f.StringVar(&cfg.DatabaseSchema, "db-schema", envOr("KHUB_DATABASE_SCHEMA", "public"), "PostgreSQL schema for khub's tables, created when missing (env KHUB_DATABASE_SCHEMA)")
}

func serve(ctx context.Context, cfg app.Config) error {
	a, err := app.Open(cfg)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		a.Store.Close()
		return err
	}
	select {
	case <-ctx.Done():
		cfg.Logger.Info("stopping on signal")
	case err := <-a.Done():
		cfg.Logger.Error("HTTP server stopped", "error", err)
	}
	return a.Shutdown(context.Background())
}
