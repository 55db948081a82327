package push

import (
	"context"
	"sync"
	"time"

	"github.com/khub-dev/khub/internal/store"
)

// stateSnapshot is the stored state of every integration, shared by the
// dispatchers' refreshes. Each dispatcher re-reads its integration every
// StateRefresh, so with one query each, 100 idle dispatchers cost 100
// queries per StateRefresh. With the snapshot they cost about one.
type stateSnapshot struct {
	mu sync.Mutex
	// started is the time, by the monotonic clock, at which the read of
	// byID began. Every write that returned before it is in byID.
	started time.Time
	byID    map[string]store.IntegrationState
	// loading is closed when the read in progress ends, and nil when none
	// runs.
	loading chan struct{}
}

// lookup returns the integration's state from a snapshot whose read began
// at or after notBefore, reading a new snapshot when the current one is
// older. found is false when the integration does not exist.
func (s *stateSnapshot) lookup(ctx context.Context, st store.Store, id string, notBefore time.Time) (in store.IntegrationState, found bool, err error) {
	for {
		s.mu.Lock()
		if s.byID != nil && !s.started.Before(notBefore) {
			in, found = s.byID[id]
			s.mu.Unlock()
			return in, found, nil
		}
		if wait := s.loading; wait != nil {
			s.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return store.IntegrationState{}, false, ctx.Err()
			}
		}
		done := make(chan struct{})
		s.loading = done
		s.mu.Unlock()

		started := time.Now()
		all, err := st.ListIntegrations(ctx)
		s.mu.Lock()
		s.loading = nil
		close(done)
		if err != nil {
			s.mu.Unlock()
			return store.IntegrationState{}, false, err
		}
		byID := make(map[string]store.IntegrationState, len(all))
		for _, in := range all {
			byID[in.ID] = in
		}
		s.byID, s.started = byID, started
		s.mu.Unlock()
	}
}
