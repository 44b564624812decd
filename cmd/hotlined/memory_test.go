package main

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// After a burst of allocation (a call storm: a churning live set of ~100 MiB), the first
// quiet interval returns the storm's heap to the kernel; a steady load does not trigger it.
func TestMemoryReleaserAfterABurst(t *testing.T) {
	debug.FreeOSMemory() // what other tests of this binary left is not this test's burst
	r := newMemoryReleaser(prometheus.NewRegistry())
	now := time.Unix(0, 0)
	tick := func() { now = now.Add(releaseEvery); r.check(now) }
	tick() // baseline
	tick() // quiet and small: nothing to do
	if n := testutil.ToFloat64(r.runs); n != 0 {
		t.Fatalf("%v releases before any burst", n)
	}
	keep := make([][]byte, 100)
	for i := range 1500 { // 1.5 GiB allocated, 100 MiB live at any time
		b := make([]byte, 1<<20)
		b[0] = byte(i)
		keep[i%len(keep)] = b
	}
	tick() // the busy interval sets the peak
	if n := testutil.ToFloat64(r.runs); n != 0 {
		t.Fatalf("%v releases during the burst (the load had not fallen)", n)
	}
	runtime.KeepAlive(keep)
	keep = nil
	tick() // the first quiet interval
	if n := testutil.ToFloat64(r.runs); n != 1 {
		t.Fatalf("%v releases after the burst, want 1", n)
	}
	if b := testutil.ToFloat64(r.released); b < 64<<20 {
		t.Fatalf("%.0f MiB returned, want at least 64", b/(1<<20))
	}
	tick()
	if n := testutil.ToFloat64(r.runs); n != 1 {
		t.Fatalf("%v releases: a quiet interval after a release must not release again", n)
	}
	for range releaseFollowUp / releaseEvery {
		tick()
	}
	if n := testutil.ToFloat64(r.runs); n != 2 {
		t.Fatalf("%v releases %s after the fall, want 2 (the follow-up)", n, releaseFollowUp+releaseEvery)
	}
	for range 10 {
		tick()
	}
	if n := testutil.ToFloat64(r.runs); n != 2 {
		t.Fatalf("%v releases on an idle server, want no more than 2", n)
	}
}
