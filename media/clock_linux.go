package media

import (
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// preciseClock sleeps in clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) on
// the shard's own thread: the kernel wakes the thread at the deadline (within
// the thread's timer slack, 50 µs by default) instead of the Go runtime's
// netpoller, whose sleeps are rounded to milliseconds. One system call, one
// wake-up per wait; no descriptor to close.
//
// Deadlines stay Go times (t0 + n ms). Go's monotonic clock is
// CLOCK_MONOTONIC on Linux, so the kernel deadline of tick n is mono0 + n ms,
// mono0 being CLOCK_MONOTONIC read just after t0: never before Go's deadline,
// and after it by the time between the two reads (well under a microsecond).
type preciseClock struct {
	quit  <-chan struct{}
	mono0 int64         // CLOCK_MONOTONIC at t0, in ns
	ts    unix.Timespec // the deadline being slept to; here so wait allocates nothing
}

func newPreciseClock(quit <-chan struct{}) slotClock { return &preciseClock{quit: quit} }

// preciseClockWorks checks once per process that clock_gettime and an
// absolute clock_nanosleep work (a sandbox or seccomp filter may refuse them).
var preciseClockWorks = sync.OnceValue(func() bool {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return false
	}
	for { // a deadline already passed: returns at once
		err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil)
		if err != unix.EINTR {
			return err == nil
		}
	}
})

// start locks the shard goroutine to its thread, which sleeps for it; the
// lock keeps the wake-up on the thread the kernel woke.
func (c *preciseClock) start() time.Time {
	runtime.LockOSThread()
	t0 := time.Now()
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) // checked by preciseClockWorks
	c.mono0 = ts.Nano()
	return t0
}

// wait sleeps until tick n's deadline, then looks at quit: Close is seen
// within one slot.
func (c *preciseClock) wait(n int64, _ time.Time) bool {
	c.ts = unix.NsecToTimespec(c.mono0 + n*int64(wheelTick))
	for {
		err := unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &c.ts, nil)
		if err == nil {
			break
		}
		if err != unix.EINTR { // EFAULT, EINVAL: checked at start, a bug here
			panic(fmt.Sprintf("media: clock_nanosleep: %v", err))
		}
	}
	select {
	case <-c.quit:
		return false
	default:
		return true
	}
}

func (c *preciseClock) stop() { runtime.UnlockOSThread() }
