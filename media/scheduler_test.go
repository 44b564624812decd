package media

import (
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

func TestSchedulerTicksEvery20ms(t *testing.T) {
	s := NewScheduler(0)
	defer s.Close()
	streams := make([]*countStream, 40)
	removes := make([]func(), len(streams))
	for i := range streams {
		streams[i] = &countStream{}
		removes[i] = s.Add(streams[i])
	}
	if st := s.Stats(); st.Streams != 40 {
		t.Fatalf("Streams = %d", st.Streams)
	}
	time.Sleep(300 * time.Millisecond)
	for _, r := range removes {
		r()
		r() // idempotent
	}
	phases := map[int64]int{}
	for i, c := range streams {
		c.mu.Lock()
		d := c.deadlines
		c.mu.Unlock()
		if len(d) < 5 || len(d) > 16 { // ~15; fewer only if the machine stalls us
			t.Errorf("stream %d: %d ticks in 300 ms", i, len(d))
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
	s := NewScheduler(1)
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
	time.Sleep(150 * time.Millisecond)
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
