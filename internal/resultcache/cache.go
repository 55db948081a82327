// Package resultcache keeps the computed results of read requests, such as
// searches and lookups, in memory on one node, so that a request repeated
// before the next commit costs a map lookup instead of a full-text query.
//
// Every entry is stored under a key and a change-log position: the head
// cursor of the log, read before the result was computed. The caller puts
// the position into the key as well, so a request that reads a newer head
// never finds an entry computed before that head. When a request passes a
// newer position, the cache drops every entry of an older one at once, so
// memory goes to results that can still be served. The cache is bounded by a
// number of entries and by an estimate of their size in bytes, and evicts
// the least recently used entries first.
//
// Identical requests that miss at the same time compute the result once:
// the first computes it and the others wait for it.
package resultcache

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"sync"
)

// Default bounds.
const (
	DefaultMaxEntries = 10000
	DefaultMaxBytes   = 64 << 20
)

// Config bounds a cache. Zero values take the defaults; a negative value
// turns the cache off, so every request computes its result.
type Config struct {
	// MaxEntries is the number of results kept. The default is
	// DefaultMaxEntries.
	MaxEntries int
	// MaxBytes bounds the sum of the results' estimated sizes, in bytes.
	// A result larger than MaxBytes is not kept. The default is
	// DefaultMaxBytes (64 MiB).
	MaxBytes int64
}

// Key identifies a result: a SHA-256 digest of everything the result
// depends on. Build it with NewKey.
type Key [sha256.Size]byte

// NewKey returns the key of the parts, which are hashed with their
// lengths, so that no two different lists of parts share a key.
func NewKey(parts ...string) Key {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		l := uint64(len(p))
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(p))
	}
	var k Key
	h.Sum(k[:0])
	return k
}

// Stats are the cache's counters since it was created.
type Stats struct {
	Entries   int
	Bytes     int64
	Evictions uint64 // entries removed for the bounds or an older position
}

// Cache is a bounded map from keys to results. Its methods are safe for
// concurrent use. Values must not be changed once stored, because every
// hit returns the same value.
type Cache struct {
	maxEntries int
	maxBytes   int64
	off        bool

	mu        sync.Mutex
	position  int64
	lru       list.List // of *entry, most recently used first
	entries   map[Key]*list.Element
	bytes     int64
	evictions uint64
	flights   map[Key]*flight
}

type entry struct {
	key      Key
	position int64
	value    any
	size     int64
}

// flight is a computation that requests with the same key wait for.
type flight struct {
	done  chan struct{}
	value any
	err   error
}

// New returns an empty cache with the bounds of cfg.
func New(cfg Config) *Cache {
	c := &Cache{maxEntries: cfg.MaxEntries, maxBytes: cfg.MaxBytes,
		entries: map[Key]*list.Element{}, flights: map[Key]*flight{}}
	if c.maxEntries == 0 {
		c.maxEntries = DefaultMaxEntries
	}
	if c.maxBytes == 0 {
		c.maxBytes = DefaultMaxBytes
	}
	c.off = c.maxEntries < 0 || c.maxBytes < 0
	return c
}

// Do returns the result stored under key, or computes it with compute,
// stores it and returns it. position is the change-log position that the
// caller read before calling Do and that key contains. compute returns the
// result and its estimated size in bytes. hit reports whether the result
// came from the cache or from a computation that another request started.
// Errors are returned, not stored.
func (c *Cache) Do(ctx context.Context, key Key, position int64, compute func(context.Context) (any, int64, error)) (value any, hit bool, err error) {
	if c.off {
		v, _, err := compute(ctx)
		return v, false, err
	}

	c.mu.Lock()
	c.advance(position)
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		v := el.Value.(*entry).value
		c.mu.Unlock()
		return v, true, nil
	}
	if f, ok := c.flights[key]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		if f.err == nil {
			return f.value, true, nil
		}
		// The first request failed, perhaps because its client went
		// away, so this one computes its own result.
		v, _, err := compute(ctx)
		return v, false, err
	}
	f := &flight{done: make(chan struct{}), err: errComputePanicked}
	c.flights[key] = f
	c.mu.Unlock()
	// Deferred, so that a compute that panics still ends its flight: the
	// requests that wait for it then compute their own result instead of
	// waiting for ever.
	var size int64
	defer func() {
		c.mu.Lock()
		delete(c.flights, key)
		if f.err == nil {
			c.store(key, position, f.value, size)
		}
		c.mu.Unlock()
		close(f.done)
	}()
	value, size, err = compute(ctx)
	f.value, f.err = value, err
	return value, false, err
}

// errComputePanicked is a flight's error until its compute returns.
var errComputePanicked = errors.New("resultcache: the computation panicked")

// advance records that position is current and drops the entries of
// older positions, which no request can find any more. c.mu must be held.
func (c *Cache) advance(position int64) {
	if position <= c.position {
		return
	}
	c.position = position
	for el := c.lru.Back(); el != nil; {
		prev := el.Prev()
		if el.Value.(*entry).position < position {
			c.remove(el)
		}
		el = prev
	}
}

// store adds a result unless a newer position has been seen since it was
// computed or it is too large, then evicts the least recently used
// entries until the cache is within its bounds. c.mu must be held.
func (c *Cache) store(key Key, position int64, v any, size int64) {
	if position < c.position || size > c.maxBytes {
		return
	}
	if _, ok := c.entries[key]; ok {
		return
	}
	e := &entry{key: key, position: position, value: v, size: size}
	c.entries[key] = c.lru.PushFront(e)
	c.bytes += size
	for len(c.entries) > c.maxEntries || c.bytes > c.maxBytes {
		c.remove(c.lru.Back())
	}
}

// remove deletes one entry. c.mu must be held.
func (c *Cache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*entry)
	delete(c.entries, e.key)
	c.bytes -= e.size
	c.evictions++
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Entries: len(c.entries), Bytes: c.bytes, Evictions: c.evictions}
}
