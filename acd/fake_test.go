package acd

import (
	"container/heap"
	"sync"
	"time"
)

// fakeClock runs timers synchronously, in time order, from Advance/Step.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers fakeTimers
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 2, 8, 30, 0, 0, time.UTC)}
}

type fakeTimer struct {
	c    *fakeClock
	when time.Time
	seq  uint64
	f    func()
	idx  int // -1 when fired or stopped
}

type fakeTimers []*fakeTimer

func (h fakeTimers) Len() int { return len(h) }
func (h fakeTimers) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}
func (h fakeTimers) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *fakeTimers) Push(x any) {
	t := x.(*fakeTimer)
	t.idx = len(*h)
	*h = append(*h, t)
}
func (h *fakeTimers) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	t.idx = -1
	return t
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, when: c.now.Add(max(d, 0)), seq: c.seq, f: f}
	heap.Push(&c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.idx < 0 {
		return false
	}
	heap.Remove(&t.c.timers, t.idx)
	return true
}

// Step fires the next timer due at or before limit; it reports whether one fired.
func (c *fakeClock) Step(limit time.Time) bool {
	c.mu.Lock()
	if len(c.timers) == 0 || c.timers[0].when.After(limit) {
		c.mu.Unlock()
		return false
	}
	t := heap.Pop(&c.timers).(*fakeTimer)
	if t.when.After(c.now) {
		c.now = t.when
	}
	c.mu.Unlock()
	t.f()
	return true
}

// Advance moves time forward by d, firing due timers in order.
func (c *fakeClock) Advance(d time.Duration) {
	limit := c.Now().Add(d)
	for c.Step(limit) {
	}
	c.mu.Lock()
	if limit.After(c.now) {
		c.now = limit
	}
	c.mu.Unlock()
}

func (c *fakeClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// fakeOut records the ACD's output; the optional function fields react.
type fakeOut struct {
	mu       sync.Mutex
	offers   []Offer
	cancels  []Offer
	events   []Event
	left     map[string]ExitReason
	noRecord bool

	onOffer  func(Offer)
	onCancel func(Offer)
	onEvent  func(Event)
	onLeft   func(string, ExitReason)
}

func (f *fakeOut) Offer(o Offer) {
	f.mu.Lock()
	if !f.noRecord {
		f.offers = append(f.offers, o)
	}
	f.mu.Unlock()
	if f.onOffer != nil {
		f.onOffer(o)
	}
}

func (f *fakeOut) CancelOffer(o Offer) {
	f.mu.Lock()
	if !f.noRecord {
		f.cancels = append(f.cancels, o)
	}
	f.mu.Unlock()
	if f.onCancel != nil {
		f.onCancel(o)
	}
}

func (f *fakeOut) Event(e Event) {
	f.mu.Lock()
	if !f.noRecord {
		f.events = append(f.events, e)
	}
	f.mu.Unlock()
	if f.onEvent != nil {
		f.onEvent(e)
	}
}

func (f *fakeOut) Left(id string, r ExitReason) {
	f.mu.Lock()
	if f.left == nil {
		f.left = map[string]ExitReason{}
	}
	f.left[id] = r
	f.mu.Unlock()
	if f.onLeft != nil {
		f.onLeft(id, r)
	}
}

// take returns and clears the recorded offers.
func (f *fakeOut) takeOffers() []Offer {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.offers
	f.offers = nil
	return o
}

func (f *fakeOut) takeCancels() []Offer {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.cancels
	f.cancels = nil
	return o
}

func (f *fakeOut) eventsOf(t EventType) []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var r []Event
	for _, e := range f.events {
		if e.Type == t {
			r = append(r, e)
		}
	}
	return r
}
