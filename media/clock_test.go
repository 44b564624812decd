package media

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// forClocks runs test as a subtest with each frame clock (ModePortable,
// ModePrecise); tests choose the mode, HOTLINE_MEDIA_CLOCK is ignored. The
// precise clock is skipped where it is unavailable.
func forClocks(t *testing.T, test func(t *testing.T, mode string)) {
	t.Helper()
	for _, mode := range []string{ModePortable, ModePrecise} {
		t.Run(mode, func(t *testing.T) {
			if mode == ModePrecise && !preciseClockWorks() {
				t.Skipf("no precise clock on %s", runtime.GOOS)
			}
			checkLeaks(t)
			test(t, mode)
		})
	}
}

func TestClockEnv(t *testing.T) {
	t.Setenv(ClockEnv, "")
	s := NewScheduler(1)
	s.Close()
	if s.Mode() != ModePortable {
		t.Errorf("%s unset: Mode = %s, want the portable clock by default", ClockEnv, s.Mode())
	}

	t.Setenv(ClockEnv, ModePrecise)
	want := ModePortable
	if preciseClockWorks() {
		want = ModePrecise
	}
	if runtime.GOOS == "linux" && want != ModePrecise {
		t.Error("clock_nanosleep refused on Linux")
	}
	s = NewScheduler(1)
	s.Close()
	if s.Mode() != want {
		t.Errorf("%s=precise: Mode = %s, want %s", ClockEnv, s.Mode(), want)
	}
}

// tickLog records, in order, each Tick of the streams sharing it: the
// deadline given and when the Tick ran.
type tickLog struct {
	mu        sync.Mutex
	deadlines []time.Time
	at        []time.Time
	per       map[int][]time.Time // deadlines by stream
}

func (l *tickLog) stream(i int) Stream {
	return funcStream(func(d time.Time) {
		now := time.Now()
		l.mu.Lock()
		l.deadlines = append(l.deadlines, d)
		l.at = append(l.at, now)
		l.per[i] = append(l.per[i], d)
		l.mu.Unlock()
	})
}

func (l *tickLog) minTicks(streams int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	least := -1
	for i := range streams {
		if n := len(l.per[i]); least < 0 || n < least {
			least = n
		}
	}
	return least
}

// One shard, one stream per slot: the shard serves one slot per 1 ms
// deadline, in order, never before its deadline, and every wake-up of its
// clock serves at least one slot (at most one wake-up per slot).
func TestSchedulerDeadlinesEveryMillisecond(t *testing.T) {
	forClocks(t, testSchedulerDeadlinesEveryMillisecond)
}

func testSchedulerDeadlinesEveryMillisecond(t *testing.T, mode string) {
	s := newScheduler(1, mode)
	log := &tickLog{per: map[int][]time.Time{}}
	for i := range wheelSlots {
		s.Add(log.stream(i))
	}
	waitFor(t, "10 ticks of every stream", func() bool { return log.minTicks(wheelSlots) >= 10 })
	s.Close()

	sh := s.shards[0]
	if sh.emptyWakes != 0 {
		t.Errorf("%d of %d wake-ups came before the next deadline", sh.emptyWakes, sh.wakes)
	}
	steps := 0
	for i := 1; i < len(log.deadlines); i++ {
		// 1 ms, or whole milliseconds when a stalled shard dropped slots.
		if gap := log.deadlines[i].Sub(log.deadlines[i-1]); gap <= 0 || gap%time.Millisecond != 0 {
			t.Fatalf("tick %d: deadline step %v, want a multiple of 1ms", i, gap)
		} else if gap == time.Millisecond {
			steps++
		}
	}
	for i, d := range log.deadlines {
		if log.at[i].Before(d) {
			t.Fatalf("tick %d ran %v before its deadline", i, d.Sub(log.at[i]))
		}
	}
	for i, d := range log.per {
		for j := 1; j < len(d); j++ {
			if gap := d[j].Sub(d[j-1]); gap <= 0 || gap%FrameDuration != 0 {
				t.Fatalf("stream %d: deadline gap %v, want a multiple of 20ms", i, gap)
			}
		}
	}
	t.Logf("%d ticks, %d steps of exactly 1 ms, %d wake-ups", len(log.deadlines), steps, sh.wakes)
}

// A stream whose Tick stalls the shard for 3 periods: the shard catches up
// without giving any stream two frames for one period, and Skipped counts
// exactly the frames the streams missed.
func TestSchedulerSkipsWhenShardBlocked(t *testing.T) {
	forClocks(t, testSchedulerSkipsWhenShardBlocked)
}

func testSchedulerSkipsWhenShardBlocked(t *testing.T, mode string) {
	s := newScheduler(1, mode)
	log := &tickLog{per: map[int][]time.Time{}}
	const streams = 2 * wheelSlots
	var stall atomic.Bool
	for i := range streams {
		st := log.stream(i)
		if i == 0 {
			record := st
			st = funcStream(func(d time.Time) {
				record.Tick(d)
				if stall.CompareAndSwap(true, false) {
					time.Sleep(3 * FrameDuration) // the stall under test
				}
			})
		}
		s.Add(st)
	}
	// Every stream ticked before the stall, so that each frame it misses
	// shows as a gap in its deadlines.
	waitFor(t, "a tick of every stream", func() bool { return log.minTicks(streams) >= 2 })
	stall.Store(true)
	waitFor(t, "a skip", func() bool { return s.Stats().Skipped > 0 })
	after := log.minTicks(streams)
	waitFor(t, "every stream ticked after the stall", func() bool { return log.minTicks(streams) >= after+2 })
	s.Close()

	var missed uint64
	for i, d := range log.per {
		for j := 1; j < len(d); j++ {
			gap := d[j].Sub(d[j-1])
			if gap <= 0 || gap%FrameDuration != 0 {
				t.Fatalf("stream %d: deadline gap %v, want a multiple of 20ms", i, gap)
			}
			missed += uint64(gap/FrameDuration) - 1
		}
	}
	if st := s.Stats(); st.Skipped != missed {
		t.Errorf("Skipped = %d, streams missed %d frames", st.Skipped, missed)
	}
}

// Close stops the shards within a slot or two and leaves no goroutine
// (forClocks checks leaks); a scheduler's Add after Close does nothing.
func TestSchedulerClosePromptly(t *testing.T) { forClocks(t, testSchedulerClosePromptly) }

func testSchedulerClosePromptly(t *testing.T, mode string) {
	s := newScheduler(2, mode)
	var ticks atomic.Int64
	for range 10 {
		s.Add(funcStream(func(time.Time) { ticks.Add(1) }))
	}
	waitFor(t, "ticks", func() bool { return ticks.Load() >= 20 })
	start := time.Now()
	s.Close()
	took := time.Since(start)
	t.Logf("Close took %v", took)
	if took > time.Second { // a hang, not a slow machine
		t.Errorf("Close took %v", took)
	}
	n := ticks.Load()
	s.Add(funcStream(func(time.Time) { ticks.Add(1) }))
	if ticks.Load() != n {
		t.Error("ticked after Close")
	}
}

// A clock's wait allocates nothing (it runs once per slot).
func TestSlotClockWaitAllocs(t *testing.T) { forClocks(t, testSlotClockWaitAllocs) }

func testSlotClockWaitAllocs(t *testing.T, mode string) {
	quit := make(chan struct{})
	c := newSlotClock(mode, quit)
	t0 := c.start()
	defer c.stop()
	var n int64
	allocs := testing.AllocsPerRun(100, func() {
		n++
		if !c.wait(n, t0.Add(time.Duration(n)*wheelTick)) {
			t.Fatal("wait reported quit")
		}
	})
	if allocs != 0 {
		t.Errorf("wait allocates %v times", allocs)
	}
	close(quit)
	if c.wait(n+1, t0.Add(time.Duration(n+1)*wheelTick)) {
		t.Error("wait after quit reported a deadline")
	}
}
