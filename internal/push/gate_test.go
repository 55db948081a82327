package push

import (
	"context"
	"testing"
	"time"
)

func TestSendGateBoundsAndReleases(t *testing.T) {
	g := &sendGate{slots: make(chan struct{}, 2)}
	ctx := context.Background()
	first, ok := g.enter(ctx)
	if !ok {
		t.Fatal("first enter failed")
	}
	second, ok := g.enter(ctx)
	if !ok {
		t.Fatal("second enter failed")
	}

	// The gate is full, so a third enter waits until its context ends.
	short, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := g.enter(short); ok {
		t.Fatal("enter into a full gate succeeded, want it to wait until its context ends")
	}

	// Leaving twice frees one place only.
	first()
	first()
	if n := len(g.slots); n != 1 {
		t.Errorf("places taken after leaving twice = %d, want 1", n)
	}
	second()
	if n := len(g.slots); n != 0 {
		t.Errorf("places taken after both left = %d, want 0", n)
	}
}

func TestSendGateReleasesAfterHold(t *testing.T) {
	g := &sendGate{slots: make(chan struct{}, 1)}
	if _, ok := g.enter(context.Background()); !ok {
		t.Fatal("enter failed")
	}
	// The holder never leaves, so the place comes free after
	// sendGateHold.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	started := time.Now()
	leave, ok := g.enter(ctx)
	if !ok {
		t.Fatalf("enter did not get the place of a holder that never left within %s", waitTimeout)
	}
	leave()
	if waited := time.Since(started); waited < sendGateHold/2 {
		t.Errorf("enter got the place after %s, want about %s", waited, sendGateHold)
	}
}
