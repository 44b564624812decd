//go:build !linux

package media

// The precise clock is Linux's (clock_linux.go); elsewhere the Scheduler
// always uses the portable clock.

func preciseClockWorks() bool { return false }

func newPreciseClock(quit <-chan struct{}) slotClock { return &timerClock{quit: quit} }
