package resultcache

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// get calls Do with a computation that returns value with size and counts
// its calls in computed.
func get(t *testing.T, c *Cache, key Key, position int64, value string, size int64, computed *int) (string, bool) {
	t.Helper()
	v, hit, err := c.Do(context.Background(), key, position, func(context.Context) (any, int64, error) {
		*computed++
		return value, size, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v.(string), hit
}

func TestCacheHitAtSamePosition(t *testing.T) {
	c := New(Config{})
	computed := 0
	k := NewKey("search", "admin", "q=etcd")
	if v, hit := get(t, c, k, 7, "first", 10, &computed); hit || v != "first" {
		t.Fatalf("first Do = %q, hit %v; want a computed %q", v, hit, "first")
	}
	v, hit := get(t, c, k, 7, "second", 10, &computed)
	if !hit {
		t.Error("second Do at the same position missed")
	}
	if v != "first" {
		t.Errorf("second Do = %q, want the stored %q", v, "first")
	}
	if computed != 1 {
		t.Errorf("computed %d times, want 1", computed)
	}
}

func TestCacheNewerPositionDropsOlderEntries(t *testing.T) {
	c := New(Config{})
	computed := 0
	for i := range 3 {
		get(t, c, NewKey("q", strconv.Itoa(i)), 7, "old", 10, &computed)
	}
	get(t, c, NewKey("q", "new"), 8, "new", 10, &computed)
	st := c.Stats()
	if st.Entries != 1 {
		t.Errorf("entries after a newer position = %d, want 1", st.Entries)
	}
	if st.Bytes != 10 {
		t.Errorf("bytes after a newer position = %d, want 10", st.Bytes)
	}
	if st.Evictions != 3 {
		t.Errorf("evictions = %d, want 3", st.Evictions)
	}
}

func TestCacheKeepsNoResultOfOlderPosition(t *testing.T) {
	c := New(Config{})
	computed := 0
	get(t, c, NewKey("a"), 8, "a", 10, &computed)
	// A request that read the head before the commit at 8 finishes after
	// one that read 8: its result must not be kept.
	k := NewKey("b")
	get(t, c, k, 7, "b", 10, &computed)
	if st := c.Stats(); st.Entries != 1 {
		t.Errorf("entries = %d, want 1", st.Entries)
	}
	if _, hit := get(t, c, k, 7, "b", 10, &computed); hit {
		t.Error("a result of an older position was served")
	}
}

func TestCacheEntryBound(t *testing.T) {
	c := New(Config{MaxEntries: 2})
	computed := 0
	a, b, d := NewKey("a"), NewKey("b"), NewKey("d")
	get(t, c, a, 1, "a", 1, &computed)
	get(t, c, b, 1, "b", 1, &computed)
	get(t, c, a, 1, "a", 1, &computed) // a is now the most recently used
	get(t, c, d, 1, "d", 1, &computed)
	if st := c.Stats(); st.Entries != 2 {
		t.Errorf("entries = %d, want 2", st.Entries)
	}
	if _, hit := get(t, c, a, 1, "a", 1, &computed); !hit {
		t.Error("the most recently used entry was evicted")
	}
	if _, hit := get(t, c, b, 1, "b", 1, &computed); hit {
		t.Error("the least recently used entry was kept")
	}
}

func TestCacheByteBound(t *testing.T) {
	c := New(Config{MaxBytes: 100})
	computed := 0
	for i := range 5 {
		get(t, c, NewKey(strconv.Itoa(i)), 1, "x", 30, &computed)
	}
	st := c.Stats()
	if st.Bytes > 100 {
		t.Errorf("bytes = %d, above the bound 100", st.Bytes)
	}
	if st.Entries != 3 {
		t.Errorf("entries = %d, want 3 of 30 bytes each", st.Entries)
	}
	get(t, c, NewKey("large"), 1, "x", 101, &computed)
	if _, hit := get(t, c, NewKey("large"), 1, "x", 101, &computed); hit {
		t.Error("a result larger than MaxBytes was kept")
	}
}

func TestCacheOff(t *testing.T) {
	c := New(Config{MaxEntries: -1})
	computed := 0
	k := NewKey("a")
	get(t, c, k, 1, "a", 1, &computed)
	if _, hit := get(t, c, k, 1, "a", 1, &computed); hit {
		t.Error("a cache turned off served a hit")
	}
	if computed != 2 {
		t.Errorf("computed %d times, want 2", computed)
	}
}

func TestCacheKeepsNoError(t *testing.T) {
	c := New(Config{})
	k := NewKey("a")
	fail := errors.New("store down")
	_, _, err := c.Do(context.Background(), k, 1, func(context.Context) (any, int64, error) { return nil, 0, fail })
	if !errors.Is(err, fail) {
		t.Fatalf("Do error = %v, want %v", err, fail)
	}
	computed := 0
	if _, hit := get(t, c, k, 1, "a", 1, &computed); hit {
		t.Error("Do after an error served a hit")
	}
}

func TestCacheComputesConcurrentMissOnce(t *testing.T) {
	c := New(Config{})
	k := NewKey("a")
	release := make(chan struct{})
	var calls atomic.Int32
	compute := func(context.Context) (any, int64, error) {
		calls.Add(1)
		<-release
		return "a", 1, nil
	}
	const n = 8
	var wg sync.WaitGroup
	var hits atomic.Int32

	// The first request holds the flight until release closes.
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, _, err := c.Do(context.Background(), k, 1, compute); err != nil {
			t.Error(err)
		}
	}()

	// Wait until the first request has registered its flight.
	for {
		c.mu.Lock()
		_, ok := c.flights[k]
		c.mu.Unlock()
		if ok {
			break
		}
	}
	for range n - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, hit, err := c.Do(context.Background(), k, 1, compute)
			if err != nil || v != "a" {
				t.Errorf("Do = %v, %v; want a", v, err)
			}
			if hit {
				hits.Add(1)
			}
		}()
	}

	close(release)
	wg.Wait()
	if got := calls.Load(); got != 1 {
		t.Errorf("computed %d times, want 1", got)
	}
	if got := hits.Load(); got != n-1 {
		t.Errorf("hits = %d, want %d", got, n-1)
	}
}

func TestNewKeySeparatesParts(t *testing.T) {
	if NewKey("ab", "c") == NewKey("a", "bc") {
		t.Error(`NewKey("ab", "c") equals NewKey("a", "bc")`)
	}
	if NewKey("a") != NewKey("a") {
		t.Error("NewKey is not deterministic")
	}
}

// A computation that panics must not leave its key waiting for ever: the
// next request for it computes its own result.
func TestCachePanicEndsFlight(t *testing.T) {
	c := New(Config{})
	k := NewKey("search", "q=crash")
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("Do did not pass on the panic")
			}
		}()
		c.Do(context.Background(), k, 1, func(context.Context) (any, int64, error) { panic("boom") })
	}()
	computed := 0
	if v, hit := get(t, c, k, 1, "after", 1, &computed); hit || v != "after" || computed != 1 {
		t.Errorf("Do after a panic = %q, hit %v, computed %d times; want a computed %q", v, hit, computed, "after")
	}
}
