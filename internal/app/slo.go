package app

import "context"

// startRecorder runs the freshness recorder until Shutdown. It shares the
// lifetime of the goroutines that follow other nodes' commits, so Shutdown
// stops it before it closes the store.
func (a *App) startRecorder() {
	if a.stopFollow == nil {
		ctx, cancel := context.WithCancel(context.Background())
		a.followCtx, a.stopFollow = ctx, cancel
	}
	ctx := a.followCtx
	a.following.Add(1)
	go func() {
		defer a.following.Done()
		a.SLO.Run(ctx)
	}()
}
