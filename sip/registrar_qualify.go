package sip

// The registrar's background work: expiry sweeping and qualify (OPTIONS keep-alive) pings.

import (
	"context"
	"slices"
	"sync"
	"time"
)

const (
	// sweepEvery is how often expired bindings and stale table entries are removed.
	sweepEvery = time.Second
	// qualifyParallel bounds the qualify pings in flight.
	qualifyParallel = 64
)

// Start runs expiry sweeping and, when configured, qualify pings, until ctx is done or
// Stop is called. It returns at once; calling it again while running does nothing.
func (r *Registrar) Start(ctx context.Context) {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	if r.cancel != nil {
		return
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.wg.Add(1)
	go r.loop(ctx, sweepEvery, r.sweep)
	if r.cfg.QualifyInterval > 0 && r.cfg.Pinger != nil {
		r.wg.Add(1)
		go r.loop(ctx, r.cfg.QualifyInterval, func() { r.qualify(ctx) })
	} else if r.cfg.QualifyInterval > 0 {
		r.log.Info("qualify disabled: no Pinger (the server's is Server.Ping)")
	}
}

// Stop ends what Start started and waits for it; pings in flight are cancelled.
// The registrar keeps answering REGISTERs; Start may be called again.
func (r *Registrar) Stop() {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.wg.Wait()
	r.cancel = nil
}

func (r *Registrar) loop(ctx context.Context, every time.Duration, f func()) {
	defer r.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// sweep removes expired bindings (OnChange "expired") and forgets stale nonce-counts and
// lockout entries.
func (r *Registrar) sweep() {
	now := r.cfg.Now()
	r.mu.Lock()
	for user, list := range r.users {
		if slices.ContainsFunc(list, func(e *binding) bool { return !now.Before(e.Expires) }) {
			r.expireUserLocked(user, now)
		}
	}
	r.uses.prune(now, r.cfg.NonceTTL)
	r.locks.prune(now, &r.cfg)
	r.mu.Unlock()
	r.notify()
}

// qualify pings every binding once (QualifyParallel at a time) and waits for the answers.
// A binding that fails QualifyFailures times in a row is dropped (OnChange "unreachable");
// an answer resets the count. Pings cut short by ctx count for nothing.
func (r *Registrar) qualify(ctx context.Context) {
	r.mu.Lock()
	var todo []*binding
	for _, list := range r.users {
		for _, e := range list {
			if !e.pinging {
				e.pinging = true
				todo = append(todo, e)
			}
		}
	}
	r.mu.Unlock()

	sem := make(chan struct{}, qualifyParallel)
	var wg sync.WaitGroup
	for _, e := range todo {
		r.mu.Lock()
		b := e.Binding
		b.Contact = *e.Contact.Clone()
		b.Path = slices.Clone(e.Path)
		r.mu.Unlock()
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			r.mu.Lock()
			e.pinging = false
			r.mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			pctx, cancel := context.WithTimeout(ctx, r.cfg.QualifyTimeout)
			err := r.cfg.Pinger(pctx, b)
			cancel()
			r.qualified(ctx, e, err)
		}()
	}
	wg.Wait()
}

// qualified applies the result of one ping.
func (r *Registrar) qualified(ctx context.Context, e *binding, err error) {
	r.mu.Lock()
	e.pinging = false
	list := r.users[e.User]
	if ctx.Err() != nil || !slices.Contains(list, e) {
		r.mu.Unlock()
		return
	}
	if err == nil {
		e.failures = 0
		r.mu.Unlock()
		return
	}
	e.failures++
	r.log.Debug("qualify failed", "user", e.User, "contact", e.Contact.String(), "source", e.Source.String(),
		"failures", e.failures, "error", err)
	if e.failures < r.cfg.QualifyFailures {
		r.mu.Unlock()
		return
	}
	r.setLocked(e.User, slices.DeleteFunc(slices.Clone(list), func(o *binding) bool { return o == e }))
	r.unreachable.Add(1)
	r.queueLocked(e.User, ReasonUnreachable)
	r.log.Info("binding unreachable, dropped", "user", e.User, "contact", e.Contact.String(),
		"source", e.Source.String(), "failures", e.failures, "error", err)
	r.mu.Unlock()
	r.notify()
}
