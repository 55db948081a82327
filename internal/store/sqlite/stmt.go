package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// maxPrepared bounds the prepared statements kept per pool, because scope
// filters give queries a varying number of placeholders. Queries beyond the
// bound run unprepared.
const maxPrepared = 512

// pool is a database/sql pool that prepares each distinct query once and
// reuses the statement on every connection. Without it the driver parses
// and plans the SQL text on every call, a large share of the cost of small
// queries such as lookups by id.
type pool struct {
	db *sql.DB

	mu      sync.RWMutex
	stmts   map[string]*sql.Stmt
	pending map[string]bool // queries being prepared in the background
	closed  bool

	// background ends and counts the prepares that cached starts, so that
	// close returns only after them. A prepare that still held a
	// connection after close could touch the database files after the
	// store was closed.
	background context.Context
	cancel     context.CancelFunc
	prepares   sync.WaitGroup
}

func newPool(db *sql.DB) *pool {
	ctx, cancel := context.WithCancel(context.Background())
	return &pool{db: db, stmts: make(map[string]*sql.Stmt), pending: make(map[string]bool), background: ctx, cancel: cancel}
}

// stmt returns the prepared statement for query, preparing it on first
// use, or nil when p is nil, the cache is full or preparing fails. A
// failed prepare is left to the unprepared call, which reports the same
// error.
func (p *pool) stmt(ctx context.Context, query string) *sql.Stmt {
	if p == nil {
		return nil
	}
	p.mu.RLock()
	st := p.stmts[query]
	p.mu.RUnlock()
	if st != nil {
		return st
	}
	p.mu.RLock()
	full := p.closed || len(p.stmts) >= maxPrepared
	p.mu.RUnlock()
	if full {
		return nil
	}
	// Prepared without the lock held: preparing waits for a connection,
	// which a transaction that is looking up its statements may hold.
	st, err := p.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if other := p.stmts[query]; other != nil || p.closed {
		st.Close()
		return other
	}
	p.stmts[query] = st
	return st
}

// cached returns the prepared statement for query without waiting, or nil.
// On a miss it prepares the statement in the background: the caller holds
// a connection in a transaction, and preparing through the pool needs a
// connection of its own, which the writer's pool of one would never give.
func (p *pool) cached(query string) *sql.Stmt {
	if p == nil {
		return nil
	}
	p.mu.RLock()
	st, pending := p.stmts[query], p.pending[query]
	p.mu.RUnlock()
	if st != nil || pending {
		return st
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stmts[query] != nil || p.pending[query] || p.closed || len(p.stmts) >= maxPrepared {
		return p.stmts[query]
	}
	p.pending[query] = true
	p.prepares.Add(1)
	go func() {
		defer p.prepares.Done()
		p.stmt(p.background, query)
		p.mu.Lock()
		delete(p.pending, query)
		p.mu.Unlock()
	}()
	return nil
}

func (p *pool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.db.QueryContext(ctx, query, args...)
}

func (p *pool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := p.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.db.QueryRowContext(ctx, query, args...)
}

func (p *pool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := p.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return p.db.ExecContext(ctx, query, args...)
}

// close releases the prepared statements and then closes the pool.
func (p *pool) close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.prepares.Wait()

	p.mu.Lock()
	for q, st := range p.stmts {
		st.Close()
		delete(p.stmts, q)
	}
	p.mu.Unlock()
	return p.db.Close()
}

// txn is a transaction whose queries use the pool's prepared statements,
// or none when p is nil.
// database/sql reuses a statement already prepared on the transaction's
// connection.
type txn struct {
	*sql.Tx
	p *pool
	// updates are the changes to the in-memory text index that the
	// transaction makes once it commits.
	updates []textUpdate
	// head is the cursor of the change the transaction logged, or 0.
	head int64
}

func (t *txn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.p.cached(query); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

func (t *txn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.p.cached(query); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}

func (t *txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.p.cached(query); st != nil {
		return t.Tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}
