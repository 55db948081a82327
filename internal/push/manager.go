package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/khub-dev/khub/internal/changelog"
	"github.com/khub-dev/khub/internal/knowledge"
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
	// Timeout, InitialBackoff and MaxBackoff are the hub's defaults for
	// integrations whose delivery settings leave them zero. Zero here
	// means the defaults in package knowledge (15s, 5s, 1h).
	Timeout        time.Duration
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// RetryFor is the hub's default retry period of a change, counted from
	// its first failed attempt. Zero means knowledge.DefaultRetryFor (72h).
	RetryFor time.Duration
	// MaxAttempts, when positive, also ends a change's retries after that
	// many attempts. Zero leaves RetryFor alone in charge.
	MaxAttempts int
	// PauseAfter and ProbeEvery are the hub's defaults for the circuit
	// breaker: failed attempts in a row before pausing, and the wait
	// between probes while paused.
	PauseAfter int
	ProbeEvery time.Duration
	// StateRefresh is the interval at which a dispatcher re-reads its
	// integration, so that it picks up a resume, a rotated secret or new
	// settings made through any node. Default 5s.
	StateRefresh time.Duration
	// PageSize is the number of change-log entries read per query; default
	// 256.
	PageSize int
	// FlushEvery is the number of finished deliveries after which a
	// dispatcher hands its attempts and cursor to the manager's recorder.
	// The recorder writes those of all dispatchers in one transaction.
	// Default 64.
	FlushEvery int
	// FlushDelay is the maximum time a caught-up dispatcher keeps finished
	// deliveries before it hands them over; default 1s. A crash before
	// they are written sends them again, with the same webhook-ids.
	FlushDelay time.Duration
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
	// Node names this process in dispatch leases; default a name made of
	// the host name, the process id and random letters.
	Node string
	// LeaseTTL is the lifetime of a dispatch lease without renewal; default
	// 15s. It is also the time the integrations of a dead node wait before
	// another node takes them over. Leases are renewed every third of it.
	LeaseTTL time.Duration
}

// Defaults for Config.
const (
	DefaultPageSize     = 256
	DefaultFlushEvery   = 64
	DefaultFlushDelay   = time.Second
	DefaultLeaseTTL     = 15 * time.Second
	DefaultStateRefresh = 5 * time.Second
)

func (c Config) withDefaults() Config {
	if c.StateRefresh <= 0 {
		c.StateRefresh = DefaultStateRefresh
	}
	if c.PageSize <= 0 {
		c.PageSize = DefaultPageSize
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = DefaultFlushEvery
	}
	if c.FlushDelay <= 0 {
		c.FlushDelay = DefaultFlushDelay
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
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Node == "" {
		c.Node = defaultNode()
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	return c
}

// NOTE: leases are not fenced. A node stalled for longer than LeaseTTL
// (a long GC pause, a frozen VM) keeps sending until its next renewal
// fails, while another node has taken over, so a receiver may briefly get
// the same changes from both. Delivery stays at least once, with the same
// webhook-ids.
//
// Manager runs one dispatcher per push or hybrid integration whose
// dispatch lease this node holds. Several hubs may share one store: a lease
// loop takes free or expired leases, renews held ones and stops the
// dispatchers of leases it lost, so each integration is dispatched by one
// node at a time. Its methods are safe for concurrent use.
type Manager struct {
	st     store.Store
	wake   *changelog.Broadcaster
	cfg    Config
	client *http.Client
	tail   *tail
	// rec writes the delivery records of all dispatchers in shared
	// transactions.
	rec    *recorder
	states stateSnapshot
	// gate bounds the requests that are built and written at once.
	gate *sendGate

	mu      sync.Mutex
	base    context.Context // parent of the dispatchers; nil until Start
	stopped bool
	running map[string]*dispatcherHandle
	// removed contains the integrations removed on this node, so that a lease pass
	// racing the deletion does not start them again.
	removed map[string]bool
	// replays counts replays in flight, which Stop cancels and waits for.
	replays       sync.WaitGroup
	replayCancels []context.CancelFunc
	loopStop      context.CancelFunc
	loopDone      chan struct{}
	passMutex     sync.Mutex // one lease pass at a time
}

type dispatcherHandle struct {
	cancel context.CancelFunc
	done   chan struct{}
	d      *dispatcher
	// renewed is the time the lease was last taken or renewed. A
	// dispatcher whose lease could not be renewed for a whole TTL is
	// stopped, because another node may own the lease by then.
	renewed time.Time
}

// NewManager returns a manager that reads changes from st and wakes up on
// wake. Call Start to run it.
func NewManager(st store.Store, wake *changelog.Broadcaster, cfg Config) *Manager {
	cfg = cfg.withDefaults()
	return &Manager{
		st:   st,
		wake: wake,
		cfg:  cfg,
		// Attempts carry their own deadline from the integration's
		// settings, so the client's timeout is only a backstop.
		client:  netguard.NewHTTPClient(netguard.ClientConfig{AllowPrivate: cfg.AllowPrivate, Timeout: 2 * time.Minute}),
		running: map[string]*dispatcherHandle{},
		removed: map[string]bool{},
		// Half of StateRefresh, so that an idle dispatcher's periodic
		// wake-up, every StateRefresh, finds a poll at most that old.
		tail: &tail{st: st, wake: wake, pollEvery: cfg.StateRefresh / 2, source: cfg.Source},
		rec:  newRecorder(st, cfg.Logger),
		gate: newSendGate(),
	}
}

// settings returns an integration's delivery settings with every zero field
// filled from the hub's defaults, then from package knowledge's.
func (m *Manager) settings(in knowledge.DeliverySettings) knowledge.DeliverySettings {
	fill := func(v *time.Duration, hub time.Duration) {
		if *v <= 0 {
			*v = hub
		}
	}
	fill(&in.Timeout, m.cfg.Timeout)
	fill(&in.InitialBackoff, m.cfg.InitialBackoff)
	fill(&in.MaxBackoff, m.cfg.MaxBackoff)
	fill(&in.RetryFor, m.cfg.RetryFor)
	fill(&in.ProbeEvery, m.cfg.ProbeEvery)
	if in.PauseAfter <= 0 {
		in.PauseAfter = m.cfg.PauseAfter
	}
	return in.WithDefaults()
}

// Node returns the name this manager uses in dispatch leases.
func (m *Manager) Node() string { return m.cfg.Node }

// Start takes the leases it can and starts a dispatcher for each, then
// keeps a lease loop running. ctx bounds the first pass and passes its
// values to the dispatchers, which run until Stop or Remove whether or not
// ctx is cancelled.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.base != nil || m.stopped {
		m.mu.Unlock()
		return errors.New("push manager already started or stopped: create a new Manager")
	}
	m.base = context.WithoutCancel(ctx)
	loopCtx, cancel := context.WithCancel(m.base)
	m.loopStop = cancel
	m.loopDone = make(chan struct{})
	m.mu.Unlock()
	m.rec.start()

	if err := m.leasePass(ctx); err != nil {
		cancel()
		close(m.loopDone)
		m.rec.close()
		return err
	}
	m.mu.Lock()
	n := len(m.running)
	m.mu.Unlock()
	m.cfg.Logger.Info("push dispatchers started", "node", m.cfg.Node, "dispatchers", n)
	go m.leaseLoop(loopCtx)
	return nil
}

// leaseLoop runs a lease pass every third of the lease TTL until ctx ends.
func (m *Manager) leaseLoop(ctx context.Context) {
	defer close(m.loopDone)
	ticker := time.NewTicker(m.cfg.LeaseTTL / 3)
	defer ticker.Stop()
	var lastError string
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if err := m.leasePass(ctx); err != nil && ctx.Err() == nil {
			if err.Error() != lastError {
				m.cfg.Logger.Error("dispatch lease pass failed, retrying at the next pass", "node", m.cfg.Node, "error", err)
			}
			lastError = err.Error()
			continue
		}
		lastError = ""
	}
}

// leasePass lists the integrations, takes or renews the lease of each one
// that pushes, starts dispatchers for new leases and stops those whose
// lease was lost or whose integration is gone.
func (m *Manager) leasePass(ctx context.Context) error {
	m.passMutex.Lock()
	defer m.passMutex.Unlock()
	all, err := m.st.ListIntegrations(ctx)
	if err != nil {
		m.stopExpired()
		return fmt.Errorf("list integrations: %w", err)
	}
	seen := make(map[string]bool, len(all))
	var errs []error
	for _, in := range all {
		if !in.Pattern.Pushes() {
			continue
		}
		seen[in.ID] = true
		held, err := m.st.AcquireLease(ctx, in.ID, m.cfg.Node, m.cfg.LeaseTTL)
		if errors.Is(err, store.ErrNotFound) {
			seen[in.ID] = false
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("lease integration %s: %w", in.ID, err))
			continue
		}
		if held {
			m.startIfLeased(in)
		} else if m.stopOne(in.ID) {
			m.cfg.Logger.Info("push dispatcher stopped: lease taken by another node", "integration_id", in.ID, "node", m.cfg.Node)
		}
	}

	m.mu.Lock()
	var gone []string
	for id := range m.running {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	m.mu.Unlock()
	for _, id := range gone {
		m.stopOne(id)
	}
	m.stopExpired()
	return errors.Join(errs...)
}

// startIfLeased starts the integration's dispatcher unless it runs, or
// records the renewal when it does.
func (m *Manager) startIfLeased(in store.IntegrationState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.base == nil || m.stopped || m.removed[in.ID] {
		return
	}
	if h, ok := m.running[in.ID]; ok {
		h.renewed = m.cfg.Now()
		return
	}
	m.startLocked(in)
}

// stopExpired stops dispatchers whose lease went a whole TTL without a
// renewal, because another node may have taken it over.
func (m *Manager) stopExpired() {
	now := m.cfg.Now()
	m.mu.Lock()
	var expired []string
	for id, h := range m.running {
		if now.Sub(h.renewed) >= m.cfg.LeaseTTL {
			expired = append(expired, id)
		}
	}
	m.mu.Unlock()
	for _, id := range expired {
		if m.stopOne(id) {
			m.cfg.Logger.Warn("push dispatcher stopped: its lease could not be renewed", "integration_id", id, "node", m.cfg.Node)
		}
	}
}

// Add starts a dispatcher for an integration that was just created, if it
// pushes and this node gets its lease. Calls before Start or after Stop do
// nothing, because Start takes every lease it can.
func (m *Manager) Add(ctx context.Context, in store.IntegrationState) {
	if !in.Pattern.Pushes() {
		return
	}
	m.mu.Lock()
	started := m.base != nil && !m.stopped
	m.mu.Unlock()
	if !started {
		return
	}
	held, err := m.st.AcquireLease(ctx, in.ID, m.cfg.Node, m.cfg.LeaseTTL)
	if err != nil {
		m.cfg.Logger.Warn("lease of new integration failed, retrying at the next lease pass", "integration_id", in.ID, "error", err)
		return
	}
	if held {
		m.startIfLeased(in)
	}
}

func (m *Manager) startLocked(in store.IntegrationState) {
	ctx, cancel := context.WithCancel(m.base)
	d := newDispatcher(m, in)
	h := &dispatcherHandle{cancel: cancel, done: make(chan struct{}), d: d, renewed: m.cfg.Now()}
	m.running[in.ID] = h
	go func() {
		defer close(h.done)
		d.run(ctx)
	}()
}

// stopOne stops a running dispatcher, waits until it has written its
// pending records and reports whether one was running.
func (m *Manager) stopOne(id string) bool {
	m.mu.Lock()
	h := m.running[id]
	delete(m.running, id)
	m.mu.Unlock()
	if h == nil {
		return false
	}
	h.cancel()
	<-h.done
	return true
}

// Refresh makes the integration's dispatcher on this node re-read its
// settings, secrets and state from the store before its next request, and
// wakes it from a wait. Call it after changing them. Dispatchers on other
// nodes sharing the store see the change within Config.StateRefresh.
func (m *Manager) Refresh(id string) {
	m.mu.Lock()
	h := m.running[id]
	m.mu.Unlock()
	if h == nil {
		return
	}
	h.d.stale.Store(true)
	select {
	case h.d.poke <- struct{}{}:
	default:
	}
}

// Remove stops the integration's dispatcher and waits until it has
// written its pending records. Call it before deleting the integration.
func (m *Manager) Remove(id string) {
	m.mu.Lock()
	m.removed[id] = true
	m.mu.Unlock()
	m.stopOne(id)
	m.cfg.Metrics.forget(id)
}

// Stop ends the lease loop, cancels every dispatcher, including attempts in
// flight, waits until each has written its pending records or ctx is done,
// and releases the leases so other nodes take over at once. An attempt cut
// off by Stop is not recorded, so its change is sent again, with the same
// webhook-id, by the next node that dispatches the integration.
func (m *Manager) Stop(ctx context.Context) error {
	m.mu.Lock()
	m.stopped = true
	handles := m.running
	m.running = map[string]*dispatcherHandle{}
	loopStop, loopDone := m.loopStop, m.loopDone
	replayCancels := m.replayCancels
	m.replayCancels = nil
	m.mu.Unlock()

	for _, cancel := range replayCancels {
		cancel()
	}
	m.replays.Wait()

	if loopStop != nil {
		loopStop()
		<-loopDone
	}
	for _, h := range handles {
		h.cancel()
	}
	var stillRunning int
	for id, h := range handles {
		select {
		case <-h.done:
		case <-ctx.Done():
			stillRunning++
			continue
		}
		if err := m.st.ReleaseLease(ctx, id, m.cfg.Node); err != nil {
			m.cfg.Logger.Warn("release of dispatch lease failed, lease expires after its TTL", "integration_id", id, "error", err)
		}
	}
	// Dispatchers that did not stop in time write their last records
	// themselves, once the recorder is closed.
	m.rec.close()
	m.client.CloseIdleConnections()
	if stillRunning > 0 {
		return fmt.Errorf("%d push dispatchers did not stop in time: %w", stillRunning, ctx.Err())
	}
	return nil
}

// defaultNode returns host-pid-random, unique enough to tell the nodes of
// one deployment apart in leases and logs.
func defaultNode() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "khub"
	}
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	suffix := make([]byte, 6)
	for i := range suffix {
		suffix[i] = letters[rand.IntN(len(letters))]
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), suffix)
}
