package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/khub-dev/khub/internal/store"
)

func runLeases(t *testing.T, open opener) {
	subtest(t, "HeldUntilExpiry", open, testLeaseHeld)
	subtest(t, "Expiry", open, testLeaseExpiry)
	subtest(t, "SubSecondTTL", open, testLeaseSubSecond)
	subtest(t, "Release", open, testLeaseRelease)
	subtest(t, "PerIntegration", open, testLeasePerIntegration)
	subtest(t, "DeletedWithIntegration", open, testLeaseDeleted)
	subtest(t, "UnknownIntegration", open, testLeaseUnknownIntegration)
	subtest(t, "InvalidArguments", open, testLeaseInvalid)
	subtest(t, "ConcurrentNodes", open, testLeaseConcurrent)
}

// leaseTTL outlasts every test, so a lease taken with it stays valid.
const leaseTTL = time.Hour

// acquire calls AcquireLease and fails the test on error.
func acquire(t *testing.T, s store.Store, id, node string, ttl time.Duration) bool {
	t.Helper()
	held, err := s.AcquireLease(context.Background(), id, node, ttl)
	if err != nil {
		t.Fatalf("AcquireLease(%q, %q, %v): %v", id, node, ttl, err)
	}
	return held
}

// wantLease fails the test unless AcquireLease returns want.
func wantLease(t *testing.T, name string, s store.Store, id, node string, ttl time.Duration, want bool) {
	t.Helper()
	if got := acquire(t, s, id, node, ttl); got != want {
		t.Errorf("%s: AcquireLease(%q, %q) = %v, want %v", name, id, node, got, want)
	}
}

// release calls ReleaseLease and fails the test on error.
func release(t *testing.T, s store.Store, id, node string) {
	t.Helper()
	if err := s.ReleaseLease(context.Background(), id, node); err != nil {
		t.Fatalf("ReleaseLease(%q, %q): %v", id, node, err)
	}
}

// acquireAfterExpiry retries AcquireLease for node every 2ms until it
// succeeds or 5s pass, and reports whether it succeeded. Store clocks and
// the test's clock differ, so the test cannot know the exact moment.
func acquireAfterExpiry(t *testing.T, s store.Store, id, node string) bool {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if acquire(t, s, id, node, leaseTTL) {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

func testLeaseHeld(t *testing.T, s store.Store) {
	createIntegration(t, s, fullIntegration("bot"))
	wantLease(t, "first acquire by a", s, "bot", "a", leaseTTL, true)
	wantLease(t, "acquire by b while a holds it", s, "bot", "b", leaseTTL, false)
	wantLease(t, "renewal by a", s, "bot", "a", leaseTTL, true)
	wantLease(t, "acquire by b after a renewed", s, "bot", "b", leaseTTL, false)
}

func testLeaseExpiry(t *testing.T, s store.Store) {
	createIntegration(t, s, fullIntegration("bot"))
	wantLease(t, "acquire by a for 1ms", s, "bot", "a", time.Millisecond, true)
	if !acquireAfterExpiry(t, s, "bot", "b") {
		t.Fatal("b did not take a's 1ms lease within 5s")
	}
	wantLease(t, "acquire by a after b took over", s, "bot", "a", leaseTTL, false)

	// A ttl of 0 expires at once, so another node may take it right away.
	release(t, s, "bot", "b")
	wantLease(t, "acquire by a for 0", s, "bot", "a", 0, true)
	wantLease(t, "acquire by b of a lease for 0", s, "bot", "b", leaseTTL, true)
}

// testLeaseSubSecond checks that a ttl below one second is not rounded down
// to 0, so a lease for 900ms rejects other nodes while it runs.
func testLeaseSubSecond(t *testing.T, s store.Store) {
	createIntegration(t, s, fullIntegration("bot"))
	const ttl = 900 * time.Millisecond
	start := time.Now()
	wantLease(t, "acquire by a for 900ms", s, "bot", "a", ttl, true)
	held := acquire(t, s, "bot", "b", leaseTTL)
	if elapsed := time.Since(start); elapsed >= ttl {
		t.Skipf("the two calls took %v, longer than the 900ms ttl", elapsed)
	}
	if held {
		t.Error("b took a's 900ms lease at once, want it rejected until the lease expires")
	}
}

func testLeaseRelease(t *testing.T, s store.Store) {
	createIntegration(t, s, fullIntegration("bot"))
	wantLease(t, "acquire by a", s, "bot", "a", leaseTTL, true)

	// A release by a node that does not hold the lease changes nothing.
	release(t, s, "bot", "b")
	wantLease(t, "acquire by b after its own release", s, "bot", "b", leaseTTL, false)

	release(t, s, "bot", "a")
	wantLease(t, "acquire by b after a released", s, "bot", "b", leaseTTL, true)
	wantLease(t, "acquire by a after b took over", s, "bot", "a", leaseTTL, false)

	// Releasing twice, or without any lease, is not an error.
	release(t, s, "bot", "a")
	release(t, s, "fresh", "a")
}

func testLeasePerIntegration(t *testing.T, s store.Store) {
	createIntegration(t, s, fullIntegration("bot"))
	createIntegration(t, s, fullIntegration("other"))
	wantLease(t, "acquire bot by a", s, "bot", "a", leaseTTL, true)
	wantLease(t, "acquire other by b", s, "other", "b", leaseTTL, true)
	release(t, s, "other", "b")
	wantLease(t, "acquire bot by b after releasing other", s, "bot", "b", leaseTTL, false)
}

func testLeaseDeleted(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, fullIntegration("bot"))
	wantLease(t, "acquire by a", s, "bot", "a", leaseTTL, true)
	if err := s.DeleteIntegration(ctx, "bot"); err != nil {
		t.Fatalf("DeleteIntegration: %v", err)
	}
	held, err := s.AcquireLease(ctx, "bot", "a", leaseTTL)
	wantErr(t, "AcquireLease after delete", err, store.ErrNotFound)
	if held {
		t.Error("AcquireLease after delete reported the lease held")
	}

	// A new integration with the same id starts without a lease.
	createIntegration(t, s, fullIntegration("bot"))
	wantLease(t, "acquire of the recreated integration by b", s, "bot", "b", leaseTTL, true)
}

func testLeaseUnknownIntegration(t *testing.T, s store.Store) {
	ctx := context.Background()
	held, err := s.AcquireLease(ctx, "nope", "a", leaseTTL)
	wantErr(t, "AcquireLease", err, store.ErrNotFound)
	if held {
		t.Error("AcquireLease of an unknown integration reported the lease held")
	}
	if err := s.ReleaseLease(ctx, "nope", "a"); err != nil {
		t.Errorf("ReleaseLease of an unknown integration: %v, want nil", err)
	}
}

func testLeaseInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	createIntegration(t, s, fullIntegration("bot"))
	if held, err := s.AcquireLease(ctx, "bot", "", leaseTTL); err == nil || held {
		t.Errorf("AcquireLease with an empty node = %v, %v; want false and an error", held, err)
	}
	if held, err := s.AcquireLease(ctx, "bot", "a", -time.Second); err == nil || held {
		t.Errorf("AcquireLease with a negative ttl = %v, %v; want false and an error", held, err)
	}
	// The rejected calls took nothing.
	wantLease(t, "acquire by b", s, "bot", "b", leaseTTL, true)
}

// testLeaseConcurrent races nodes for one free lease: exactly one wins.
func testLeaseConcurrent(t *testing.T, s store.Store) {
	createIntegration(t, s, fullIntegration("bot"))
	const nodes = 8
	held := make([]bool, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			held[i], errs[i] = s.AcquireLease(context.Background(), "bot", fmt.Sprintf("node%d", i), leaseTTL)
		})
	}
	wg.Wait()
	winners := 0
	for i := range nodes {
		if errs[i] != nil {
			t.Errorf("node%d: AcquireLease: %v", i, errs[i])
		}
		if held[i] {
			winners++
		}
	}
	if winners != 1 {
		t.Errorf("%d nodes hold the lease, want 1", winners)
	}
}
