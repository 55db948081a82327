// Package app assembles a running hub from its parts: the store, the push
// dispatchers, the HTTP API and the listener. The serve and demo commands
// and the end-to-end tests start hubs through it.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/khub-dev/khub/internal/api"
	"github.com/khub-dev/khub/internal/changelog"
	"github.com/khub-dev/khub/internal/hub"
	"github.com/khub-dev/khub/internal/push"
	"github.com/khub-dev/khub/internal/resultcache"
	"github.com/khub-dev/khub/internal/slo"
	"github.com/khub-dev/khub/internal/store"
	"github.com/khub-dev/khub/internal/store/postgres"
	"github.com/khub-dev/khub/internal/store/sqlite"
)

// Version is the khub version reported by the binary and in User-Agent.
var Version = "0.1.0-dev"

// Config is everything a hub needs to start. Validate it with Validate.
type Config struct {
	// DataDir is the directory of the SQLite database and the generated
	// admin token. With DatabaseURL set it is optional and contains only
	// the admin token file.
	DataDir string
	// DatabaseURL selects the PostgreSQL store, shared by every node of a
	// multi-node deployment. Empty means SQLite in DataDir.
	DatabaseURL string
	// DatabaseSchema is the PostgreSQL schema of the store; default public.
	DatabaseSchema string
	// Addr is the listen address; default 127.0.0.1:8080. Port 0 picks a
	// free port.
	Addr string
	// AdminToken authorizes admin calls; empty reads DataDir/admin.token or
	// generates it there on first start.
	AdminToken string
	// AllowPrivate lets webhooks reach loopback and private networks.
	AllowPrivate bool
	// EventSource is the CloudEvents source of pushed events.
	EventSource string
	// ShutdownTimeout bounds a graceful stop; default 20s.
	ShutdownTimeout time.Duration
	// ChangeRetention is the age after which change-log entries are
	// deleted, and 0 keeps them forever. Article versions are never pruned.
	// A push integration or a feed reader that falls behind the retained
	// log receives a resync event.
	ChangeRetention time.Duration
	// HeadPollInterval is the interval at which a node that shares its
	// store re-reads the head cursor; default 5s. The poll catches commits
	// of other nodes whose notification was lost across a reconnect.
	HeadPollInterval time.Duration
	// StreamHeartbeat is the time between heartbeats of an idle stream of
	// GET /v1/stream; default 15s.
	StreamHeartbeat time.Duration
	// ResultCache bounds this node's cache of search and lookup results.
	// Zero values take the defaults, and a negative value turns it off.
	ResultCache resultcache.Config
	// NoTextIndex leaves out the SQLite store's in-memory text index, so
	// that searches rank with FTS5 alone; see sqlite.Options.
	NoTextIndex bool
	// SLO is the freshness recorder's sampling interval (default 15s) and
	// sample retention (default 8 days). Logger and Metrics are filled in.
	SLO slo.Config
	// Push overrides dispatcher settings (backoff, timeouts); Source,
	// AllowPrivate and Logger are filled in from this config.
	Push   push.Config
	Logger *slog.Logger
}

// Validate fills defaults and checks the config. Errors name the setting.
func (c *Config) Validate() error {
	if c.DatabaseURL == "" && c.DataDir == "" {
		return errors.New("--data is required: give a directory for the hub's database, or --db with a PostgreSQL URL")
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return errors.New("--db is invalid: use a PostgreSQL URL such as postgres://user@host:5432/khub")
	}
	if c.DatabaseURL != "" && c.DataDir == "" && c.AdminToken == "" {
		return errors.New("--admin-token (or KHUB_ADMIN_TOKEN) is required with --db, so that every node accepts the same token. Alternatively, set --data to keep a generated token there")
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("--addr %q is invalid: use HOST:PORT such as 127.0.0.1:8080: %w", c.Addr, err)
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		return errors.New("--admin-token is too short: use at least 16 characters, or leave it empty to generate one")
	}
	if c.EventSource == "" {
		c.EventSource = "urn:khub"
	}
	if c.HeadPollInterval <= 0 {
		c.HeadPollInterval = 5 * time.Second
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 20 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// App is a hub that is open and, after Start, serving.
type App struct {
	cfg       Config
	Store     store.Store
	Hub       *hub.Hub
	Push      *push.Manager
	SLO       *slo.Recorder
	API       *api.Server
	Registry  *prometheus.Registry
	TokenFile string // where the admin token was read or written, if anywhere

	server   *http.Server
	listener net.Listener
	done     chan error
	// lock is the data directory's lock file, held while the SQLite store
	// is open.
	lock *os.File
	// followCtx and stopFollow bound the background goroutines: those that
	// follow other nodes' commits and the change-log pruner.
	followCtx  context.Context
	stopFollow context.CancelFunc
	following  sync.WaitGroup
}

// Open opens the data directory and builds the hub without serving yet.
func Open(cfg Config) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
	}
	a := &App{cfg: cfg, Registry: prometheus.NewRegistry()}
	if cfg.DatabaseURL == "" {
		lock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		a.lock = lock
		// One process owns the SQLite store, so its dispatch leases carry
		// a fixed name and a restart takes them back at once instead of
		// waiting for them to expire.
		if cfg.Push.Node == "" {
			cfg.Push.Node = "local"
			a.cfg.Push.Node = "local"
		}
	}
	if err := a.loadAdminToken(); err != nil {
		a.unlock()
		return nil, err
	}
	st, err := OpenStore(context.Background(), cfg)
	if err != nil {
		a.unlock()
		return nil, err
	}
	a.Store = st

	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	wake := &changelog.Broadcaster{}
	pc := cfg.Push
	pc.Source = cfg.EventSource
	pc.AllowPrivate = cfg.AllowPrivate
	pc.Logger = cfg.Logger
	pc.Metrics = push.NewMetrics(a.Registry)
	pc.Version = Version
	a.Push = push.NewManager(st, wake, pc)
	a.Hub = &hub.Hub{Store: st, Wake: wake, Push: a.Push, AllowPrivate: cfg.AllowPrivate, Logger: cfg.Logger}
	sc := cfg.SLO
	sc.Logger = cfg.Logger
	sc.Metrics = slo.NewMetrics(a.Registry)
	a.SLO = slo.New(a.Hub, sc)
	a.API = api.New(a.Hub, api.Config{AdminToken: a.cfg.AdminToken, Registry: a.Registry, Logger: cfg.Logger, Version: Version, StreamHeartbeat: cfg.StreamHeartbeat, ResultCache: cfg.ResultCache})
	return a, nil
}

// OpenStore opens the store that cfg selects and applies its pending
// migrations: PostgreSQL when DatabaseURL is set, else SQLite in DataDir.
func OpenStore(ctx context.Context, cfg Config) (store.Store, error) {
	if cfg.DatabaseURL != "" {
		st, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Schema: cfg.DatabaseSchema})
		if err != nil {
			// The URL may carry a password, so it stays out of the message.
			return nil, fmt.Errorf("open PostgreSQL store: %w", err)
		}
		return st, nil
	}
	st, err := sqlite.Open(filepath.Join(cfg.DataDir, "khub.db"), sqlite.Options{NoTextIndex: cfg.NoTextIndex, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("open store in %s: %w", cfg.DataDir, err)
	}
	return st, nil
}

// lockDataDir takes an exclusive lock on DIR/khub.lock, so that a second
// process cannot open the same SQLite store and dispatch the same
// integrations. The kernel drops the lock when the process dies.
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "khub.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data directory %s is in use by another khub process (lock %s): stop that process, or give this one another --data", dir, path)
	}
	return f, nil
}

// unlock releases the data directory's lock, if held.
func (a *App) unlock() {
	if a.lock != nil {
		a.lock.Close()
		a.lock = nil
	}
}

// Config returns the configuration with its defaults filled in.
func (a *App) Config() Config { return a.cfg }

// AdminToken returns the token that authorizes admin calls.
func (a *App) AdminToken() string { return a.cfg.AdminToken }

// loadAdminToken uses the configured token, else the one in the data
// directory, else generates one there with mode 0600.
func (a *App) loadAdminToken() error {
	if a.cfg.AdminToken != "" || a.cfg.DataDir == "" {
		return nil
	}
	path := filepath.Join(a.cfg.DataDir, "admin.token")
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		a.cfg.AdminToken = strings.TrimSpace(string(b))
		a.TokenFile = path
		if len(a.cfg.AdminToken) < 16 {
			return fmt.Errorf("admin token in %s is too short: delete the file to generate a new one", path)
		}
		return nil
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("read admin token: %w", err)
	}
	token := hub.NewAdminToken()
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("write admin token: %w", err)
	}
	a.cfg.AdminToken = token
	a.TokenFile = path
	a.cfg.Logger.Info("generated admin token", "path", path)
	return nil
}

// Start listens, starts the dispatchers and serves in the background.
func (a *App) Start(ctx context.Context) error {
	head, err := a.Store.HeadCursor(ctx)
	if err != nil {
		return fmt.Errorf("read change log head: %w", err)
	}
	a.Hub.Wake.Notify(head)

	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Addr, err)
	}
	a.listener = ln
	if l, ok := a.Store.(store.ChangeListener); ok {
		a.followChanges(l)
	}
	if a.cfg.ChangeRetention > 0 {
		a.startPruner()
	}
	if err := a.Push.Start(ctx); err != nil {
		ln.Close()
		return fmt.Errorf("start push dispatchers: %w", err)
	}
	a.startRecorder()
	a.server = &http.Server{
		Handler:           a.API,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		// Long polls extend their own write deadline.
		WriteTimeout:   60 * time.Second,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(a.cfg.Logger.Handler(), slog.LevelWarn),
	}
	// Streams never end by themselves, and Shutdown waits for the requests
	// of those that net/http still serves.
	a.server.RegisterOnShutdown(a.API.CloseStreams)
	a.done = make(chan error, 1)
	go func() { a.done <- a.server.Serve(ln) }()
	a.cfg.Logger.Info("khub serving", "addr", a.URL(), "data", a.cfg.DataDir, "version", Version, "allow_private_destinations", a.cfg.AllowPrivate)
	return nil
}

// followChanges wakes this node's dispatchers, long polls and streams for
// changes that other nodes commit: notifications from the store as they
// arrive, and a poll of the head cursor as a safety net.
func (a *App) followChanges(l store.ChangeListener) {
	if a.stopFollow == nil {
		ctx, cancel := context.WithCancel(context.Background())
		a.followCtx, a.stopFollow = ctx, cancel
	}
	ctx := a.followCtx
	a.following.Add(2)
	go func() {
		defer a.following.Done()
		delay := 100 * time.Millisecond
		for {
			err := l.ListenChanges(ctx, a.Hub.Wake.Notify)
			if ctx.Err() != nil {
				return
			}
			a.cfg.Logger.Warn("listening for other nodes' changes failed, reconnecting", "error", err, "retry_in", delay)
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, 5*time.Second)
		}
	}()
	go func() {
		defer a.following.Done()
		ticker := time.NewTicker(a.cfg.HeadPollInterval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			if head, err := a.Store.HeadCursor(ctx); err == nil {
				a.Hub.Wake.Notify(head)
			}
		}
	}()
}

// startPruner deletes change-log entries older than ChangeRetention, at
// start and then every tenth of the retention, but no more often than once
// a minute and at least once an hour. Nodes that share a store may all
// prune, because the deletes do not conflict.
func (a *App) startPruner() {
	if a.stopFollow == nil {
		ctx, cancel := context.WithCancel(context.Background())
		a.followCtx, a.stopFollow = ctx, cancel
	}
	ctx := a.followCtx
	every := min(max(a.cfg.ChangeRetention/10, time.Minute), time.Hour)
	a.following.Add(1)
	go func() {
		defer a.following.Done()
		for {
			before := time.Now().Add(-a.cfg.ChangeRetention)
			if n, err := a.Store.PruneChanges(ctx, before); err != nil {
				if ctx.Err() != nil {
					return
				}
				a.cfg.Logger.Error("prune change log failed, retrying", "error", err, "retry_in", every)
			} else if n > 0 {
				a.cfg.Logger.Info("pruned change log", "entries", n, "before", before.UTC().Format(time.RFC3339))
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
		}
	}()
}

// URL returns the base URL the hub serves on.
func (a *App) URL() string {
	if a.listener == nil {
		return "http://" + a.cfg.Addr
	}
	return "http://" + a.listener.Addr().String()
}

// Done is closed with the server's error when it stops serving.
func (a *App) Done() <-chan error { return a.done }

// Shutdown stops accepting requests, lets requests in flight finish, stops
// the dispatchers (an attempt in flight is cancelled and sent again after a
// restart with the same event id), and closes the store.
func (a *App) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if a.server != nil {
		if err := a.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop HTTP server: %w", err))
		}
		// Shutdown does not wait for streams on connections taken over
		// from the server, and they read the store until they end.
		a.API.CloseStreams()
	}
	if err := a.Push.Stop(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stop dispatchers: %w", err))
	}
	if a.stopFollow != nil {
		a.stopFollow()
		a.following.Wait()
	}
	if err := a.Store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	a.unlock()
	a.cfg.Logger.Info("khub stopped")
	return errors.Join(errs...)
}
