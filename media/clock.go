package media

import (
	"os"
	"time"
)

// ClockEnv is the environment variable that selects the Scheduler's frame
// clock: set to "precise" (ModePrecise) it makes the shards sleep on their own
// threads with clock_nanosleep where available; any other value, or none, means
// ModePortable, a Go timer. It is read by NewScheduler, once per Scheduler.
//
// The timer is the default because it measured better where it matters: on a
// saturated two-core machine (2,000 IVR calls beside the load tester) the
// precise clock skipped 7.2 % of frames against 1.5 % and cost more CPU, since
// each wake-up of a locked thread must win a P back from busy goroutines; it is
// more punctual only on an idle machine (BENCHMARKS.md, issue 10).
const ClockEnv = "HOTLINE_MEDIA_CLOCK"

// ModePrecise is the Scheduler's Linux frame clock (Scheduler.Mode): each
// shard goroutine is locked to its thread and sleeps until the absolute slot
// deadline with clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME). The other
// mode is ModePortable: a time.Timer, whose wake-ups come from the Go
// runtime's netpoller (millisecond granularity, up to ~1 ms late on an idle
// machine).
const ModePrecise = "precise"

// slotClock is how a shard waits for its 1 ms slot deadlines. Its methods run
// on the shard goroutine; wait is called once per wake-up and must not allocate.
type slotClock interface {
	// start returns t0, the deadline of wheel tick 0.
	start() time.Time
	// wait blocks until deadline, the deadline of wheel tick n (t0 + n ms),
	// has passed, or until the Scheduler is closed; it reports false then.
	wait(n int64, deadline time.Time) bool
	// stop releases what start took.
	stop()
}

// clockMode returns the mode NewScheduler uses: ModePrecise when ClockEnv says
// "precise" (read here) and the precise clock works (Linux, clock_nanosleep
// passed its one check); ModePortable otherwise.
func clockMode() string {
	if os.Getenv(ClockEnv) == ModePrecise && preciseClockWorks() {
		return ModePrecise
	}
	return ModePortable
}

// newSlotClock returns a shard's clock in mode (a mode clockMode chose).
func newSlotClock(mode string, quit <-chan struct{}) slotClock {
	if mode == ModePrecise {
		return newPreciseClock(quit)
	}
	return &timerClock{quit: quit}
}

// timerClock is the portable clock: a Go timer reset to each deadline.
type timerClock struct {
	quit  <-chan struct{}
	timer *time.Timer
}

func (c *timerClock) start() time.Time {
	c.timer = time.NewTimer(time.Hour)
	return time.Now()
}

func (c *timerClock) wait(_ int64, deadline time.Time) bool {
	select { // a closed Scheduler stops even when the deadline has passed already
	case <-c.quit:
		return false
	default:
	}
	c.timer.Reset(time.Until(deadline)) // fires at once for a past deadline
	select {
	case <-c.quit:
		return false
	case <-c.timer.C:
		return true
	}
}

func (c *timerClock) stop() { c.timer.Stop() }
