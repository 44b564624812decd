package ivr

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fakes report everything the runner does as one ordered stream of
// events ("play a,b", "stop", "timer 5s", "join consult"). All of them are
// called from the Run goroutine, so the stream is in program order.

// fakeClock is a manual clock: timers fire only in Advance.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	post   func(string)
}

type fakeTimer struct {
	c    *fakeClock
	when time.Time
	ch   chan time.Time
}

func newFakeClock(post func(string)) *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC), post: post}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	t := &fakeTimer{c: c, when: c.now.Add(d), ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	if c.post != nil {
		c.post("timer " + d.String())
	}
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, x := range t.c.timers {
		if x == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			return true
		}
	}
	return false
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.when.After(c.now) {
			kept = append(kept, t)
			continue
		}
		t.ch <- c.now
	}
	c.timers = kept
}

// AdvanceToNext advances to the earliest pending timer and fires it; false
// when no timer is pending.
func (c *fakeClock) AdvanceToNext() bool {
	c.mu.Lock()
	if len(c.timers) == 0 {
		c.mu.Unlock()
		return false
	}
	next := c.timers[0].when
	for _, t := range c.timers[1:] {
		if t.when.Before(next) {
			next = t.when
		}
	}
	d := next.Sub(c.now)
	c.mu.Unlock()
	c.Advance(d)
	return true
}

// fakeMedia plays nothing: a playback lasts until the test calls finish or
// the runner calls StopPlay.
type fakeMedia struct {
	post   func(string)
	digits chan rune
	mu     sync.Mutex
	cur    chan struct{}
}

func (m *fakeMedia) Play(prompts []string) <-chan struct{} {
	ch := make(chan struct{})
	m.mu.Lock()
	m.cur = ch
	m.mu.Unlock()
	m.post("play " + strings.Join(prompts, ","))
	return ch
}

func (m *fakeMedia) StopPlay() {
	m.post("stop")
	m.finish()
}

func (m *fakeMedia) finish() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur == nil {
		return false
	}
	close(m.cur)
	m.cur = nil
	return true
}

func (m *fakeMedia) Digits() <-chan rune { return m.digits }

// fakeQueue reports Join; with block set it waits for ctx.
type fakeQueue struct {
	post  func(string)
	block bool
}

func (q *fakeQueue) Join(ctx context.Context, name string) error {
	q.post("join " + name)
	if q.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// harness runs a Runner in a goroutine and lets a script drive it.
type harness struct {
	t      *testing.T
	events chan string
	clock  *fakeClock
	media  *fakeMedia
	queue  *fakeQueue
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	res    Result
	err    error

	noGreeting bool // start the Runner with NoGreeting
}

const waitLimit = 2 * time.Second // real-time bound on a broken test, never reached when it passes

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, events: make(chan string, 1000), done: make(chan struct{})}
	post := func(ev string) { h.events <- ev }
	h.clock = newFakeClock(post)
	h.media = &fakeMedia{post: post, digits: make(chan rune)}
	h.queue = &fakeQueue{post: post}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	t.Cleanup(h.cancel)
	return h
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (h *harness) start(menus map[string]Menu, entry Action) {
	r := &Runner{Menus: menus, Media: h.media, Queue: h.queue, Clock: h.clock, Logger: testLogger(h.t), NoGreeting: h.noGreeting}
	go func() {
		defer close(h.done)
		h.res, h.err = r.Run(h.ctx, entry)
	}()
}

// wait waits for Run to return and reports events the script did not expect.
func (h *harness) wait() {
	h.t.Helper()
	select {
	case <-h.done:
	case <-time.After(waitLimit):
		h.cancel()
		<-h.done
		h.t.Fatalf("Run did not return; path so far %q", h.res.PathString())
	}
	var extra []string
	for {
		select {
		case ev := <-h.events:
			extra = append(extra, ev)
			continue
		default:
		}
		break
	}
	if len(extra) > 0 {
		h.t.Errorf("unexpected events after the script: %q", extra)
	}
}

// step is one line of a script.
type step func(h *harness)

// expect reads the next event; it must be ev.
func expect(ev string) step {
	return func(h *harness) {
		h.t.Helper()
		select {
		case got := <-h.events:
			if got != ev {
				h.t.Fatalf("event %q, want %q", got, ev)
			}
		case <-time.After(waitLimit):
			h.t.Fatalf("no event, want %q", ev)
		}
	}
}

// press sends keys; each send returns when the runner has read the key.
func press(keys string) step {
	return func(h *harness) {
		h.t.Helper()
		for _, k := range keys {
			select {
			case h.media.digits <- k:
			case <-time.After(waitLimit):
				h.t.Fatalf("runner did not read digit %q", k)
			}
		}
	}
}

// finish ends the current playback as if its last frame was sent.
func finish() step {
	return func(h *harness) {
		h.t.Helper()
		if !h.media.finish() {
			h.t.Fatal("finish: nothing playing")
		}
	}
}

// fire advances the clock to the pending timer.
func fire() step {
	return func(h *harness) {
		h.t.Helper()
		if !h.clock.AdvanceToNext() {
			h.t.Fatal("fire: no pending timer")
		}
	}
}

// cancel ends the call's context (the caller hung up).
func cancel() step { return func(h *harness) { h.cancel() } }

// seq flattens steps.
func seq(parts ...any) []step {
	var out []step
	for _, p := range parts {
		switch p := p.(type) {
		case step:
			out = append(out, p)
		case []step:
			out = append(out, p...)
		default:
			panic(fmt.Sprintf("seq: %T", p))
		}
	}
	return out
}

func mustAction(t testing.TB, s string) Action {
	t.Helper()
	a, err := ParseAction(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
