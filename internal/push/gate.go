package push

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"
)

// sendGateHold is the longest time one request keeps its place in the
// send gate. A request that takes longer to write, to a slow or remote
// receiver, gives its place up, so it delays the others by at most this.
const sendGateHold = 5 * time.Millisecond

// sendGate bounds the number of dispatchers that build, sign and write a
// request at the same time to twice GOMAXPROCS. A commit wakes every
// caught-up dispatcher at once. Without the bound, their requests advance
// one step each in turn through the scheduler's run queue, so nearly
// every delivery of the commit finishes at the end of the burst. With it,
// they finish in waves, the first ones early. In three paired runs of
// BenchmarkLatencyHalfLoad on 2 cores busy with other jobs, the gate cut
// the median latency by half or more. On a quieter machine the difference
// was within the noise.
type sendGate struct {
	slots chan struct{}
}

func newSendGate() *sendGate {
	return &sendGate{slots: make(chan struct{}, 2*runtime.GOMAXPROCS(0))}
}

// enter waits for a place and returns the function that gives it up, or
// false when ctx ends first. The function may be called more than once
// and from any goroutine, and runs by itself after sendGateHold.
func (g *sendGate) enter(ctx context.Context) (func(), bool) {
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, false
	}
	var left atomic.Bool
	leave := func() {
		if left.CompareAndSwap(false, true) {
			<-g.slots
		}
	}
	timer := time.AfterFunc(sendGateHold, leave)
	return func() {
		timer.Stop()
		leave()
	}, true
}
