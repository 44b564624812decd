package media

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stream is something the Scheduler paces: its Tick is called every 20 ms.
type Stream interface {
	// Tick is called on a scheduler goroutine with the stream's drift-free
	// deadline (t0 + n·20 ms). It must not block; sending one UDP packet is fine.
	Tick(deadline time.Time)
}

const (
	wheelSlots = int(FrameDuration / wheelTick) // 20 slots of 1 ms
	wheelTick  = time.Millisecond
)

// Lateness histogram bucket upper bounds; the last bucket is +Inf.
var latenessBounds = [...]time.Duration{
	500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond,
	5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond,
}

// LatenessBuckets is the number of histogram buckets in SchedulerStats.
const LatenessBuckets = len(latenessBounds) + 1

// SchedulerStats is a snapshot of a Scheduler's counters.
type SchedulerStats struct {
	Ticks   uint64 // Stream.Tick calls
	Streams int    // streams currently added
	// Skipped counts stream ticks dropped because a shard fell more than 20 ms
	// behind; such a stream resumes one frame later with a timestamp gap.
	Skipped uint64
	// Lateness is measured once per served wheel tick, after its streams were
	// ticked: it is the lateness of the last send of that slot relative to
	// its deadline, i.e. the worst send lateness of the slot.
	Measured    uint64                  // wheel ticks measured
	MaxLateness time.Duration           // worst lateness seen
	Buckets     [LatenessBuckets]uint64 // counts for ≤0.5, ≤1, ≤2, ≤5, ≤10, ≤20 ms, +Inf
}

// BucketBound returns the upper bound of histogram bucket i (the last is +Inf,
// reported as a negative duration).
func BucketBound(i int) time.Duration {
	if i < len(latenessBounds) {
		return latenessBounds[i]
	}
	return -1
}

// LatenessQuantile returns the upper bound of the histogram bucket holding the
// q-quantile (0 < q ≤ 1), e.g. q=0.99 for p99. For the +Inf bucket it returns
// MaxLateness. It returns 0 when nothing was measured.
func (st SchedulerStats) LatenessQuantile(q float64) time.Duration {
	if st.Measured == 0 {
		return 0
	}
	want := uint64(q * float64(st.Measured))
	want = max(1, want)
	var cum uint64
	for i, c := range st.Buckets {
		cum += c
		if cum >= want {
			if i < len(latenessBounds) {
				return latenessBounds[i]
			}
			break
		}
	}
	return st.MaxLateness
}

// Scheduler paces generated media for many streams with a few goroutines
// (shards) instead of a ticker per call. Each shard runs a timing wheel of 20
// slots of 1 ms; a stream lives in one slot of one shard (the least loaded, so
// phases spread) and is ticked every 20 ms. Deadlines are drift-free
// (t0 + n·1 ms); a late shard catches up slot by slot but never serves a slot
// twice in one pass, so no stream gets a burst of frames. Safe for concurrent use.
//
// The shards wait for their deadlines with a frame clock (Mode): a Go timer
// (ModePortable), or with HOTLINE_MEDIA_CLOCK=precise on Linux clock_nanosleep
// on the shard's own thread (ModePrecise; see ClockEnv).
type Scheduler struct {
	mode   string // ModePrecise or ModePortable
	shards []*shard
	wg     sync.WaitGroup
	quit   chan struct{}
	once   sync.Once

	afterSlot atomic.Pointer[func()]

	streams  atomic.Int64
	ticks    atomic.Uint64
	skipped  atomic.Uint64
	measured atomic.Uint64
	maxLate  atomic.Int64
	buckets  [LatenessBuckets]atomic.Uint64
}

type shard struct {
	s     *Scheduler
	mu    sync.Mutex
	slots [wheelSlots][]*schedEntry
	count int // guarded by mu
	n     atomic.Int64

	// The shard goroutine's own, read by tests once it has stopped.
	wakes      int64 // returns from clock.wait
	emptyWakes int64 // wake-ups before the next deadline (none expected)
}

type schedEntry struct {
	st      Stream
	removed atomic.Bool
}

// NewScheduler starts a scheduler with the given number of shard goroutines
// (shards <= 0 means 2). Close it to stop them. It reads HOTLINE_MEDIA_CLOCK
// (ClockEnv) once, here, to choose its Mode.
func NewScheduler(shards int) *Scheduler {
	return newScheduler(shards, clockMode())
}

// newScheduler is NewScheduler with the frame clock's mode given.
func newScheduler(shards int, mode string) *Scheduler {
	if shards <= 0 {
		shards = 2
	}
	s := &Scheduler{mode: mode, quit: make(chan struct{})}
	for range shards {
		sh := &shard{s: s}
		s.shards = append(s.shards, sh)
		s.wg.Add(1)
		go sh.run(newSlotClock(mode, s.quit))
	}
	return s
}

// Mode returns the shards' frame clock: ModePrecise or ModePortable.
func (s *Scheduler) Mode() string { return s.mode }

// Add schedules st and returns the function that removes it (idempotent).
// After remove returns, Tick is not called again except for one call already
// in progress on another goroutine. Adding to a closed Scheduler does nothing.
func (s *Scheduler) Add(st Stream) (remove func()) {
	select {
	case <-s.quit:
		return func() {}
	default:
	}
	sh := s.shards[0]
	for _, c := range s.shards[1:] {
		if c.n.Load() < sh.n.Load() {
			sh = c
		}
	}
	e := &schedEntry{st: st}
	sh.mu.Lock()
	slot := 0
	for i := range sh.slots {
		if len(sh.slots[i]) < len(sh.slots[slot]) {
			slot = i
		}
	}
	sh.slots[slot] = append(sh.slots[slot], e)
	sh.count++
	sh.n.Store(int64(sh.count))
	sh.mu.Unlock()
	s.streams.Add(1)

	var once sync.Once
	return func() {
		once.Do(func() {
			e.removed.Store(true)
			sh.mu.Lock()
			list := sh.slots[slot]
			for i, x := range list {
				if x == e {
					last := len(list) - 1
					list[i] = list[last]
					list[last] = nil
					sh.slots[slot] = list[:last]
					sh.count--
					sh.n.Store(int64(sh.count))
					break
				}
			}
			sh.mu.Unlock()
			s.streams.Add(-1)
		})
	}
}

// AfterSlot makes every shard call f after each 1 ms slot it serves, once the slot's
// streams (if any) were ticked, on the shard's goroutine. A sender whose Tick only queues
// its packet sends the slot's packets together there, in one system call (sendmmsg), and
// may take what its sockets received without waiting. f must not block and must be safe
// for concurrent use when the scheduler has more than one shard. Nil removes it.
func (s *Scheduler) AfterSlot(f func()) {
	if f == nil {
		s.afterSlot.Store(nil)
		return
	}
	s.afterSlot.Store(&f)
}

// Close stops the shard goroutines and waits for them. Streams are not told.
func (s *Scheduler) Close() {
	s.once.Do(func() { close(s.quit) })
	s.wg.Wait()
}

// Stats returns a snapshot of the counters.
func (s *Scheduler) Stats() SchedulerStats {
	st := SchedulerStats{
		Ticks:       s.ticks.Load(),
		Streams:     int(s.streams.Load()),
		Skipped:     s.skipped.Load(),
		Measured:    s.measured.Load(),
		MaxLateness: time.Duration(s.maxLate.Load()),
	}
	for i := range s.buckets {
		st.Buckets[i] = s.buckets[i].Load()
	}
	return st
}

func (s *Scheduler) observe(late time.Duration) {
	s.measured.Add(1)
	for {
		old := s.maxLate.Load()
		if int64(late) <= old || s.maxLate.CompareAndSwap(old, int64(late)) {
			break
		}
	}
	i := 0
	for i < len(latenessBounds) && late > latenessBounds[i] {
		i++
	}
	s.buckets[i].Add(1)
}

// run is the shard loop: sleep on clock until the next 1 ms deadline, then
// serve every slot that is due, each at most once.
func (sh *shard) run(clock slotClock) {
	defer sh.s.wg.Done()
	t0 := clock.start()
	defer clock.stop()
	var n int64 // next wheel tick to serve; its deadline is t0 + n ms
	var scratch []*schedEntry
	for clock.wait(n, t0.Add(time.Duration(n)*wheelTick)) {
		sh.wakes++
		due := int64(time.Since(t0) / wheelTick) // last tick whose deadline has passed
		if due < n {
			sh.emptyWakes++ // woken before the deadline: wait again
			continue
		}
		if behind := due - n + 1; behind > int64(wheelSlots) {
			// More than one revolution behind: drop the oldest deadlines
			// rather than give a stream two frames in one pass.
			// Each whole revolution skipped drops a frame of every
			// stream; the rest drops those of the first skip%20 slots.
			skip := behind - int64(wheelSlots)
			sh.mu.Lock()
			dropped := int(skip/int64(wheelSlots)) * sh.count
			for i := range skip % int64(wheelSlots) {
				dropped += len(sh.slots[(n+i)%int64(wheelSlots)])
			}
			sh.mu.Unlock()
			sh.s.skipped.Add(uint64(dropped))
			n += skip
		}
		for ; n <= due; n++ {
			deadline := t0.Add(time.Duration(n) * wheelTick)
			slot := int(n % int64(wheelSlots))
			sh.mu.Lock()
			scratch = append(scratch[:0], sh.slots[slot]...)
			sh.mu.Unlock()
			if len(scratch) == 0 {
				if f := sh.s.afterSlot.Load(); f != nil {
					(*f)()
				}
				continue
			}
			for _, e := range scratch {
				if !e.removed.Load() {
					e.st.Tick(deadline)
				}
			}
			if f := sh.s.afterSlot.Load(); f != nil {
				(*f)()
			}
			sh.s.ticks.Add(uint64(len(scratch)))
			sh.s.observe(time.Since(deadline))
			clear(scratch) // do not keep removed streams alive
		}
	}
}
