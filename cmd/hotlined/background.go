package main

import (
	"context"
	"sync/atomic"
	"time"
)

// background is a goroutine of the app (the campaign dialer, the retention job): made with
// the app, started by serve, stopped on shutdown, in either order: a stop before the start
// leaves it nothing to do. A nil *background is one that was never made.
type background struct {
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	started atomic.Bool
}

func newBackground() *background {
	b := &background{done: make(chan struct{})}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b
}

// start runs f on a goroutine of its own until its context is cancelled by stop (once;
// never after stop).
func (b *background) start(f func(ctx context.Context)) {
	if b == nil || b.ctx.Err() != nil || !b.started.CompareAndSwap(false, true) {
		return
	}
	go func() { defer close(b.done); f(b.ctx) }()
}

// stop cancels f's context and waits up to timeout for f to return; false if it did not.
func (b *background) stop(timeout time.Duration) bool {
	if b == nil {
		return true
	}
	b.cancel()
	if !b.started.Load() {
		return true
	}
	select {
	case <-b.done:
		return true
	case <-time.After(timeout):
		return false
	}
}
