package media

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type countStream struct {
	mu        sync.Mutex
	deadlines []time.Time
}

func (c *countStream) Tick(d time.Time) {
	c.mu.Lock()
	c.deadlines = append(c.deadlines, d)
	c.mu.Unlock()
}

func TestSchedulerTicksEvery20ms(t *testing.T) { forClocks(t, testSchedulerTicksEvery20ms) }

func testSchedulerTicksEvery20ms(t *testing.T, mode string) {
	s := newScheduler(0, mode)
	defer s.Close()
	start := time.Now()
	streams := make([]*countStream, 40)
	removes := make([]func(), len(streams))
	for i := range streams {
		streams[i] = &countStream{}
		removes[i] = s.Add(streams[i])
	}
	if st := s.Stats(); st.Streams != 40 {
		t.Fatalf("Streams = %d", st.Streams)
	}
	ticks := func(c *countStream) int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.deadlines)
	}
	// Until every stream had 10 ticks (200 ms, longer on a busy machine).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if !slices.ContainsFunc(streams, func(c *countStream) bool { return ticks(c) < 10 }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("streams not ticked 10 times in 10 s: stats %+v", s.Stats())
		}
	}
	for _, r := range removes {
		r()
		r() // idempotent
	}
	elapsed := time.Since(start)
	phases := map[int64]int{}
	for i, c := range streams {
		c.mu.Lock()
		d := c.deadlines
		c.mu.Unlock()
		// One tick per 20 ms at most: a late shard never serves a slot twice
		// and is never more than a revolution (20 ms) behind.
		if most := int(elapsed/(20*time.Millisecond)) + 2; len(d) > most {
			t.Errorf("stream %d: %d ticks in %v, want at most %d", i, len(d), elapsed, most)
		}
		for j := 1; j < len(d); j++ {
			// Exactly 20 ms, or whole periods when a stalled shard dropped a tick.
			if gap := d[j].Sub(d[j-1]); gap <= 0 || gap%(20*time.Millisecond) != 0 {
				t.Fatalf("stream %d: deadline gap %v, want a multiple of 20ms", i, gap)
			}
		}
		if len(d) > 0 {
			phases[d[0].UnixNano()%int64(20*time.Millisecond)/int64(time.Millisecond)]++
		}
	}
	// 40 streams over 2 shards × 20 slots: one per slot and shard.
	if len(phases) < 10 {
		t.Errorf("streams not spread over slots: %v", phases)
	}
	st := s.Stats()
	if st.Streams != 0 || st.Ticks == 0 || st.Measured == 0 {
		t.Errorf("stats after remove: %+v", st)
	}
	var sum uint64
	for _, b := range st.Buckets {
		sum += b
	}
	if sum != st.Measured {
		t.Errorf("bucket sum %d != measured %d", sum, st.Measured)
	}
	t.Logf("lateness p50 ≤ %v, p99 ≤ %v, max %v over %d slot ticks", st.LatenessQuantile(0.5), st.LatenessQuantile(0.99), st.MaxLateness, st.Measured)
}

type funcStream func(time.Time)

func (f funcStream) Tick(d time.Time) { f(d) }

func TestSchedulerRemoveFromTickAndClose(t *testing.T) {
	forClocks(t, testSchedulerRemoveFromTickAndClose)
}

func testSchedulerRemoveFromTickAndClose(t *testing.T, mode string) {
	s := newScheduler(1, mode)
	var n atomic.Int32
	var remove func()
	var mu sync.Mutex
	mu.Lock()
	remove = s.Add(funcStream(func(time.Time) {
		if n.Add(1) == 3 {
			mu.Lock()
			remove()
			mu.Unlock()
		}
	}))
	mu.Unlock()
	// The shard's only other stream keeps time: once it ticked 10 times, the
	// first had 9 chances at least, whatever the machine's load.
	var clock countStream
	s.Add(&clock)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		clock.mu.Lock()
		n := len(clock.deadlines)
		clock.mu.Unlock()
		if n >= 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("clock stream ticked %d times in 10 s", n)
		}
	}
	if got := n.Load(); got != 3 {
		t.Errorf("ticked %d times, want 3 (removed from its own Tick)", got)
	}
	s.Close()
	s.Close()
	s.Add(funcStream(func(time.Time) { t.Error("ticked after Close") }))()
}

func TestLatenessQuantile(t *testing.T) {
	st := SchedulerStats{Measured: 100, MaxLateness: 30 * time.Millisecond}
	st.Buckets[0] = 90
	st.Buckets[2] = 9
	st.Buckets[6] = 1
	if q := st.LatenessQuantile(0.5); q != 500*time.Microsecond {
		t.Errorf("p50 = %v", q)
	}
	if q := st.LatenessQuantile(0.99); q != 2*time.Millisecond {
		t.Errorf("p99 = %v", q)
	}
	if q := st.LatenessQuantile(1); q != 30*time.Millisecond {
		t.Errorf("p100 = %v", q)
	}
	if (SchedulerStats{}).LatenessQuantile(0.99) != 0 {
		t.Error("empty stats quantile != 0")
	}
}

// TestSchedulerAfterSlot: the hook runs after each served slot, once its streams were
// ticked, on the shard's goroutine — what a batching sender (sendmmsg) relies on — and
// after empty slots too (a receiver draining its sockets then).
func TestSchedulerAfterSlot(t *testing.T) { forClocks(t, testSchedulerAfterSlot) }

func testSchedulerAfterSlot(t *testing.T, mode string) {
	s := newScheduler(1, mode)
	defer s.Close()
	var mu sync.Mutex
	pending, flushed, slots := 0, 0, 0
	s.AfterSlot(func() {
		mu.Lock()
		defer mu.Unlock()
		flushed += pending
		pending = 0
		slots++
	})
	for range 30 {
		s.Add(funcStream(func(time.Time) {
			mu.Lock()
			pending++
			mu.Unlock()
		}))
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		f, n := flushed, slots
		mu.Unlock()
		if f >= 300 {
			if n < 20 {
				t.Fatalf("%d slots flushed %d ticks: want every 1 ms slot served", n, f)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d ticks flushed in 10 s", f)
		}
	}
	s.AfterSlot(nil)
	mu.Lock()
	before := slots
	mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		p, n := pending, slots
		mu.Unlock()
		if p >= 60 { // ticks go on, the hook does not
			if n > before+1 { // one call may have been under way
				t.Fatalf("hook called %d times after removal", n-before)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no ticks after removing the hook")
		}
	}
}

func TestSchedulerAfterSlotWithoutStreams(t *testing.T) {
	forClocks(t, testSchedulerAfterSlotWithoutStreams)
}

func testSchedulerAfterSlotWithoutStreams(t *testing.T, mode string) {
	s := newScheduler(1, mode)
	defer s.Close()
	var calls atomic.Int64
	s.AfterSlot(func() { calls.Add(1) })
	for deadline := time.Now().Add(10 * time.Second); calls.Load() < 50; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls in 10 s with no stream: want one per 1 ms slot", calls.Load())
		}
	}
}
