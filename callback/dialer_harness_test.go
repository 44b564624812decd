package callback

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// harness runs a Dialer on the fakes.
type harness struct {
	t      *testing.T
	clock  *testClock
	store  *memStore
	calls  *testCalls
	trunks *testTrunks
	d      *Dialer
	cancel context.CancelFunc
	runErr chan error
	loc    *time.Location
}

func shanghaiLoc(t testing.TB) *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// newHarness builds the fakes and a dialer at start (the clock), letting
// configure change the config; start runs it.
func newHarness(t *testing.T, start time.Time, configure func(*Config)) *harness {
	t.Helper()
	clock := newTestClock(start)
	h := &harness{t: t, clock: clock, store: newMemStore(), calls: newTestCalls(clock), trunks: newTestTrunks(), loc: shanghaiLoc(t)}
	cfg := Config{Store: h.store, Calls: h.calls, Trunks: h.trunks, Clock: clock, Location: h.loc,
		Scripts: func(s string) bool { return s == "satisfaction" },
		Defaults: Campaign{Window: Window{From: "00:00", To: "24:00"}, CPS: 100, MaxConcurrent: 10,
			Retry: RetryDelays{Busy: time.Minute, NoAnswer: 2 * time.Minute, Failed: 3 * time.Minute, Interrupted: 4 * time.Minute}}}
	if configure != nil {
		configure(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.d = d
	return h
}

func (h *harness) start() *harness {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.runErr = cancel, make(chan error, 1)
	go func() { h.runErr <- h.d.Run(ctx) }()
	h.t.Cleanup(h.stop)
	h.settle()
	return h
}

// stop ends Run (once) and checks the far end's invariants.
func (h *harness) stop() {
	h.t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.runErr:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatal("Run did not return")
	}
	h.calls.mu.Lock()
	defer h.calls.mu.Unlock()
	for _, v := range h.calls.violations {
		h.t.Error(v)
	}
}

// quiet reports whether the dialer has nothing left to do at this instant.
func (h *harness) quiet() bool {
	d := h.d
	seq := d.probe.seq.Load()
	if !d.probe.idle.Load() || len(d.wakeCh) > 0 || len(d.results) > 0 || h.clock.unread(d.probe.ticks.Load()) != 0 {
		return false
	}
	d.mu.Lock()
	notes := len(d.inbox)
	d.mu.Unlock()
	started, finished := h.calls.counts()
	return notes == 0 && started == d.probe.launched.Load() && finished == d.probe.handled.Load() &&
		d.probe.idle.Load() && d.probe.seq.Load() == seq
}

// settle waits (in real time) until the dialer is quiet.
func (h *harness) settle() {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !h.quiet() {
		if time.Now().After(deadline) {
			h.t.Fatal("dialer never settled")
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// runUntil advances the clock timer by timer, settling in between, until
// cond holds; it fails after limit of fake time.
func (h *harness) runUntil(limit time.Duration, what string, cond func() bool) {
	h.t.Helper()
	end := h.clock.Now().Add(limit)
	for {
		h.settle()
		if cond() {
			return
		}
		if h.clock.Now().After(end) || !h.clock.advanceToNext() {
			h.t.Fatalf("at %s: still waiting for %s", h.clock.Now().In(h.loc).Format(time.DateTime), what)
		}
	}
}

// runFor advances the clock by d, timer by timer.
func (h *harness) runFor(d time.Duration) {
	h.t.Helper()
	end := h.clock.Now().Add(d)
	for {
		h.settle()
		h.clock.mu.Lock()
		var next time.Time
		for _, t := range h.clock.timers {
			if next.IsZero() || t.at.Before(next) {
				next = t.at
			}
		}
		h.clock.mu.Unlock()
		if next.IsZero() || next.After(end) {
			h.clock.advanceTo(end)
			h.settle()
			return
		}
		h.clock.advanceTo(next)
	}
}

// create makes a campaign of n targets 13900000000+i with case ids c00, c01, ...
func (h *harness) create(c Campaign, n int) Campaign {
	h.t.Helper()
	if c.Name == "" {
		c.Name = "test"
	}
	if c.Script == "" {
		c.Script = "satisfaction"
	}
	if c.Trunk == "" {
		c.Trunk = "out"
	}
	var ts []Target
	for i := range n {
		ts = append(ts, Target{CaseID: fmt.Sprintf("c%02d", i), Phone: fmt.Sprintf("139%08d", i)})
	}
	got, refused, err := h.d.Create(context.Background(), c, ts)
	if err != nil || len(refused) > 0 {
		h.t.Fatalf("Create: %v %v", err, refused)
	}
	return got
}

// finalCount is the number of targets of campaign id in a final state.
func (h *harness) finalCount(id string) int {
	n := 0
	for _, t := range h.store.all(id) {
		if t.State == TargetDone || t.State == TargetFailed || t.State == TargetCancelled {
			n++
		}
	}
	return n
}
