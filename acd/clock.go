package acd

import "time"

// Clock is the source of time for the ACD; tests inject a fake.
//
// AfterFunc behaves like [time.AfterFunc]: f runs once, on its own goroutine,
// after d. The ACD never holds its lock while calling anything but Now,
// AfterFunc and Timer.Stop, and f re-takes the lock itself, so a fake clock
// may also run f synchronously from its Advance method (as long as Advance is
// not called from inside an [Outbox] method).
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending [Clock.AfterFunc] call.
type Timer interface {
	// Stop prevents the call if it has not started; it reports whether it did.
	// The ACD also guards every timer with a generation check, so a Stop that
	// loses the race with the timer is harmless.
	Stop() bool
}

// SystemClock returns the Clock of the time package.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }
func (systemClock) AfterFunc(d time.Duration, f func()) Timer {
	return time.AfterFunc(d, f)
}
