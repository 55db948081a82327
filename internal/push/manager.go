package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/khub-dev/khub/internal/changelog"
	"github.com/khub-dev/khub/internal/netguard"
	"github.com/khub-dev/khub/internal/store"
)

// Config configures the dispatchers. Zero fields take the defaults below.
type Config struct {
	// Source is the CloudEvents source of every event, such as
	// "urn:khub:hub:<id>".
	Source string
	// AllowPrivate lets webhooks reach loopback and private networks.
	AllowPrivate bool
	// Timeout bounds one attempt; default 15s.
	Timeout time.Duration
	// InitialBackoff is the ceiling of the first retry wait; default 2s.
	InitialBackoff time.Duration
	// MaxBackoff caps every retry wait, Retry-After included; default 10m.
	MaxBackoff time.Duration
	// MaxAttempts is the number of attempts per change before it fails;
	// default 30.
	MaxAttempts int
	// PageSize is the number of change-log entries read per query; default
	// 256.
	PageSize int
	// FlushEvery is the number of finished deliveries after which attempts
	// and the cursor are written to the store; default 64.
	FlushEvery int
	// Version is the khub version sent in the User-Agent header
	// "khub/<Version>"; default "dev".
	Version string
	Logger  *slog.Logger
	// Metrics receives delivery metrics; nil records none.
	Metrics *Metrics
	// Now returns the current time for timestamps, signatures and due
	// times; default time.Now.
	Now func() time.Time
	// Rand returns the jitter fraction in [0, 1); default math/rand/v2.
	Rand func() float64
}

// Defaults for Config.
//
// NOTE: with these defaults, the 29 waits between 30 attempts have
// ceilings that add up to about 3.6 hours, and full jitter halves that on
// average, so a receiver that is down for longer loses changes. A larger
// MaxBackoff or MaxAttempts keeps trying for longer.
const (
	DefaultTimeout        = 15 * time.Second
	DefaultInitialBackoff = 2 * time.Second
	DefaultMaxBackoff     = 10 * time.Minute
	DefaultMaxAttempts    = 30
	DefaultPageSize       = 256
	DefaultFlushEvery     = 64
)

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.InitialBackoff <= 0 {
		c.InitialBackoff = DefaultInitialBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	c.MaxBackoff = max(c.MaxBackoff, c.InitialBackoff)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}

	if c.PageSize <= 0 {
		c.PageSize = DefaultPageSize
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = DefaultFlushEvery
	}

	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	return c
}

// Manager runs one dispatcher per push or hybrid integration. Its methods
// are safe for concurrent use.
type Manager struct {
	st     store.Store
	wake   *changelog.Broadcaster
	cfg    Config
	client *http.Client

	mu      sync.Mutex
	base    context.Context // parent of the dispatchers; nil until Start
	stopped bool
	running map[string]*dispatcherHandle
}

type dispatcherHandle struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// NewManager returns a manager that reads changes from st and wakes up on
// wake. Call Start to run it.
func NewManager(st store.Store, wake *changelog.Broadcaster, cfg Config) *Manager {
	cfg = cfg.withDefaults()
	return &Manager{
		st:      st,
		wake:    wake,
		cfg:     cfg,
		client:  netguard.NewHTTPClient(netguard.ClientConfig{AllowPrivate: cfg.AllowPrivate, Timeout: cfg.Timeout}),
		running: map[string]*dispatcherHandle{},
	}
}

// Start loads the integrations from the store and starts a dispatcher for
// each one whose pattern pushes. ctx bounds the loading and passes its
// values to the dispatchers, which run until Stop or Remove whether or
// not ctx is cancelled.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.base != nil || m.stopped {
		return errors.New("push manager already started or stopped: create a new Manager")
	}
	all, err := m.st.ListIntegrations(ctx)
	if err != nil {
		return fmt.Errorf("list integrations: %w", err)
	}
	m.base = context.WithoutCancel(ctx)
	for _, in := range all {
		if in.Pattern.Pushes() {
			m.startLocked(in)
		}
	}
	m.cfg.Logger.Info("push dispatchers started", "dispatchers", len(m.running))
	return nil
}

// Add starts a dispatcher for an integration that was just created. It
// ignores integrations that do not push or already run, and calls before
// Start or after Stop, because Start loads every stored integration.
func (m *Manager) Add(in store.IntegrationState) {
	if !in.Pattern.Pushes() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.base == nil || m.stopped {
		return
	}
	if _, ok := m.running[in.ID]; ok {
		return
	}
	m.startLocked(in)
}

func (m *Manager) startLocked(in store.IntegrationState) {
	ctx, cancel := context.WithCancel(m.base)
	h := &dispatcherHandle{cancel: cancel, done: make(chan struct{})}
	m.running[in.ID] = h
	d := newDispatcher(m, in)
	go func() {
		defer close(h.done)
		d.run(ctx)
	}()
}

// Remove stops the integration's dispatcher and waits until it has
// written its pending records. Call it before deleting the integration.
func (m *Manager) Remove(id string) {
	m.mu.Lock()
	h := m.running[id]
	delete(m.running, id)
	m.mu.Unlock()
	if h == nil {
		return
	}
	h.cancel()
	<-h.done
	m.cfg.Metrics.forget(id)
}

// Stop cancels every dispatcher, including attempts in flight, and waits
// until each has written its pending records or ctx is done. An attempt
// cut off by Stop is not recorded, so its change is sent again, with the
// same webhook-id, after a restart.
func (m *Manager) Stop(ctx context.Context) error {
	m.mu.Lock()
	m.stopped = true
	handles := m.running
	m.running = map[string]*dispatcherHandle{}
	m.mu.Unlock()

	for _, h := range handles {
		h.cancel()
	}
	var stillRunning int
	for _, h := range handles {
		select {
		case <-h.done:
			continue
		default:
		}
		select {
		case <-h.done:
		case <-ctx.Done():
			stillRunning++
		}
	}
	m.client.CloseIdleConnections()
	if stillRunning > 0 {
		return fmt.Errorf("%d push dispatchers did not stop in time: %w", stillRunning, ctx.Err())
	}
	return nil
}
